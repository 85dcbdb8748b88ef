"""Several processes (CPU cores or GPUs) for one stage, with ``accelerate``.

``mclbench run --processes N [--accelerate-config FILE]``: the runner stays one process and
the cache's only writer; each train or decode stage it has to compute is handed to

    accelerate launch --multi_gpu --num_processes N -m harness.distributed JOB.json

(or ``--config_file FILE``: DDP, FSDP or DeepSpeed settings and mixed precision, as
``accelerate config`` writes them; gradient accumulation is ``method.grad_accum_steps``).
Every process rebuilds the cell from the job, training runs under ``accelerator.prepare``
(see the LoRA trainer, ``methods.lora.trainer``) and decoding takes every N-th test input;
the main process gathers the candidates in input order and writes the stage's folder. Without
a GPU the processes run on the CPU (``gloo``).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

from harness.errors import MCLBenchError


class LaunchError(MCLBenchError, RuntimeError):
    pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(job: dict, num_processes: int, config_file: str | None = None) -> None:
    """Run ``job`` (a stage of one cell) under ``accelerate launch`` and wait for it."""
    with tempfile.NamedTemporaryFile("w", suffix=".json", prefix="mclbench-job-", delete=False) as f:
        json.dump(job, f)
    cmd = [sys.executable, "-m", "accelerate.commands.launch"]
    if config_file:
        cmd += ["--config_file", config_file, "--num_processes", str(num_processes)]
    else:  # torchrun; the processes use the CPU where there is no GPU
        cmd += ["--multi_gpu", "--num_processes", str(num_processes), "--num_machines", "1",
                "--mixed_precision", "no", "--dynamo_backend", "no"]
    # a fresh rendezvous port per launch: back-to-back launches on the default 29500 can
    # find it still taken and abort
    cmd += ["--main_process_port", str(free_port())]
    cmd += ["-m", "harness.distributed", f.name]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True)
    finally:
        Path(f.name).unlink(missing_ok=True)
    if done.returncode != 0:
        lines = [ln for ln in done.stderr.splitlines() if "Warning" not in ln]
        raise LaunchError(f"{job['stage']} of {job['label']} failed in `accelerate launch` "
                          f"({num_processes} processes):\n" + "\n".join(lines)[-6000:])


def run_job(job: dict) -> None:
    """One process's part of a job (every process of the launch calls this): the job's cell
    alone is built, and its stage runs through the same function as in process."""
    import torch
    from accelerate import Accelerator

    from harness import stages
    from harness.config import RunSpec
    from harness.plan import best_of_n_variant, resolve

    # gradient accumulation is the trainer's own (method.grad_accum_steps), not accelerate's
    accelerator = Accelerator(cpu=not torch.cuda.is_available(), gradient_accumulation_steps=1)
    spec = RunSpec(**job["spec"])
    [cell] = resolve(spec.only(job["task"], job["method"], job["seed"]), check_backbones=False)
    if job["best_of_n"]:
        cell = best_of_n_variant(cell, spec.best_of_n, spec.seeds[0])
    backbone_dir = Path(job["backbone_dir"])
    if job["stage"] == "train":
        stages.train_to(Path(job["out_dir"]), cell.method, cell.task, backbone_dir, cell.seed,
                        Path(job["work_dir"]), spec.device, accelerator)
    else:
        train_dir = Path(job["train_dir"]) if job["train_dir"] else None
        stages.decode_to(Path(job["out_dir"]), cell.method, cell.task, backbone_dir, train_dir,
                         cell.seed, spec.device, accelerator)
    accelerator.wait_for_everyone()


if __name__ == "__main__":
    run_job(json.loads(Path(sys.argv[1]).read_text()))
    # Every process is past the final barrier and the main one has written the stage. Leave
    # without tearing the process group down: that teardown races with rank 0's exit (which
    # takes the rendezvous store with it) and aborted a process now and then ("terminate
    # called without an active exception") after all the work was done.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
