"""Ray as an optional executor of a run's grid (``mclbench run ... --executor ray``).

The content-addressed cache is the only shared state: a Ray task computes the missing
stages of its cells into the cache, and the driver then reads every cell from it exactly
as a sequential run would (same tables, same files). So a task may run on any node that
sees the cache folder, a retried task (a worker killed, a node lost) recomputes only what
is missing — training resumes from its last checkpoint — and a sweep stopped half-way
resumes with the cells already cached.

Cells that share a trained adapter (LoRA-MLE, beam, diverse beam, nucleus: one train key)
form one Ray task, run in order, so no two workers train the same adapter at once.
Install with ``pip install 'mclbench[distributed]'``.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass

from harness.cache import cache_location
from harness.config import ConfigError, RunSpec
from harness.progress import progress


@dataclass
class RayOptions:
    address: str | None = None  # None: start a local Ray instance; "auto" or ray://...: join a cluster
    num_cpus: float = 1.0  # per task; torch in the task uses this many threads
    num_gpus: float = 0.0  # per task
    memory_gb: float | None = None  # per task, for Ray's scheduler (None: not declared)
    max_retries: int = 3  # per task, for a dead worker or an exception


def cell_groups(runner, cells) -> list[list[int]]:
    """Indices of the cells, grouped so that cells sharing a train artifact are one task."""
    groups: dict[str, list[int]] = {}
    for i, cell in enumerate(cells):
        groups.setdefault(runner.keys(cell)["train"] or f"cell {i}", []).append(i)
    return list(groups.values())


def compute_group(spec: dict, indices: list[int], threads: int) -> list[int]:
    """Ray task body: compute the cells ``indices`` of the grid of ``spec`` into the cache."""
    import torch

    from harness.plan import resolve
    from harness.runner import Runner

    os.environ.setdefault("MCLBENCH_PROGRESS", "0")  # a worker's bars would interleave
    torch.set_num_threads(max(1, threads))  # never more threads than the CPUs Ray gave us
    runner = Runner(RunSpec(**spec), tracking=False)
    cells = resolve(runner.spec, check_backbones=False)
    for i in indices:
        runner.compute(cells[i])
    return indices


def ray_executor(options: RayOptions):
    """An executor for :meth:`harness.runner.Runner.run` that runs the grid as Ray tasks."""

    def run(runner, cells) -> None:
        try:
            import ray
        except ImportError:
            raise ConfigError("--executor ray needs Ray: pip install 'mclbench[distributed]'") from None
        spec = dataclasses.asdict(runner.spec)
        spec["cache_dir"] = cache_location(runner.spec.cache_dir)  # workers' cwd differs
        started = not ray.is_initialized()
        if started:
            ray.init(address=options.address, include_dashboard=False, log_to_driver=False,
                     configure_logging=False)
        try:
            task = ray.remote(compute_group).options(
                num_cpus=options.num_cpus, num_gpus=options.num_gpus,
                memory=int(options.memory_gb * 2**30) if options.memory_gb else None,
                max_retries=options.max_retries, retry_exceptions=True)
            groups = cell_groups(runner, cells)
            pending = [task.remote(spec, group, int(options.num_cpus)) for group in groups]
            bar = progress(total=len(cells), desc="ray cells", unit="cell")
            while pending:
                done, pending = ray.wait(pending, num_returns=1)
                bar.update(len(ray.get(done[0])))  # re-raises a task's error after its retries
            bar.close()
        finally:
            if started:
                ray.shutdown()

    return run
