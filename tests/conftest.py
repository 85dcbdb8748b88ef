import os
import subprocess
import sys

import pytest

os.environ.setdefault("MCLBENCH_PROGRESS", "0")


def _share_the_cores() -> None:
    """Under pytest-xdist each worker (and the runs it starts) gets its share of the CPUs: two
    workers with OpenMP's default of all cores each run 10x slower than one, not twice as fast."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if workers > 1:
        threads = str(max(1, (os.cpu_count() or 1) // workers))
        os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = threads
        import torch

        torch.set_num_threads(int(threads))


_share_the_cores()

# A Markov task and trainer small enough for seconds-long end-to-end runs.
TINY_SETS = [
    "task.num_train=512", "task.num_val=256", "task.num_test=8", "task.hidden_size=32",
    "task.num_layers=1", "task.num_heads=2", "method.steps=40", "method.batch_size=16",
]

# Two tiny tasks and two methods as a run file's head (tests of publishing and of Ray).
TINY_TWO_TASKS = """
tasks:
  markov: {num_train: 512, num_val: 256, num_test: 8, hidden_size: 32, num_layers: 1, num_heads: 2}
  translation: {num_test: 6, max_new_tokens: 8}
methods:
  lora_mcl: {num_hypotheses: 2, rank: 2}
  lora_mle: {rank: 4}
"""


@pytest.fixture
def tiny_sets():
    return [arg for s in TINY_SETS for arg in ("--set", s)]


@pytest.fixture
def run_dirs(tmp_path, monkeypatch):
    """Output and cache folders in tmp; MLflow's default store in tmp too."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return tmp_path / "out", tmp_path / "cache"


def install_example(package, target) -> dict[str, str]:
    """pip-install an example package into ``target`` (not this environment's site-packages);
    returns the environment whose PYTHONPATH finds it."""
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                    "--target", str(target), str(package)], check=True, capture_output=True, timeout=300)
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(target), os.environ.get("PYTHONPATH", "")])}


def run_in(folder, args: list[str]) -> None:
    """``mclbench <args>`` (asserted to succeed) with ``folder`` as the working directory, for
    module-scoped fixtures, which cannot use ``monkeypatch.chdir``."""
    from harness.cli import main

    cwd = os.getcwd()
    try:
        os.chdir(folder)
        assert main(args) == 0
    finally:
        os.chdir(cwd)
