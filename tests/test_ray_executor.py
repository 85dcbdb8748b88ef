"""`mclbench run --executor ray` on a local Ray instance: a 2 tasks × 2 methods × 2 seeds grid,
one worker killed mid-training and retried, and the same table as the sequential run."""

import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from tests.conftest import TINY_TWO_TASKS

pytest.importorskip("ray", reason="Ray is the `distributed` extra: pip install 'mclbench[distributed]'")

GRID = TINY_TWO_TASKS + """per_task:
  markov: {method: {steps: 600, batch_size: 16}}   # long enough to be killed after a checkpoint
  translation: {method: {steps: 2, batch_size: 4}}
seeds: [0, 1]
"""


def mclbench(args, cwd, env=None):
    return subprocess.Popen([sys.executable, "-m", "harness.cli", *args], cwd=cwd,
                            env={**os.environ, "MCLBENCH_PROGRESS": "0", **(env or {})},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def kill_first_worker_after_a_checkpoint(cache, killed: list, stop: threading.Event):
    """SIGKILL the Ray worker process as soon as any training has written a checkpoint."""
    while not stop.is_set():
        if any(cache.glob("train/*.partial/checkpoint.pt")):
            pids = subprocess.run(["pgrep", "-f", "ray::compute_group"], capture_output=True,
                                  text=True).stdout.split()
            if pids:
                os.kill(int(pids[0]), signal.SIGKILL)
                killed.append(int(pids[0]))
                return
        time.sleep(0.02)


@pytest.mark.slow
def test_ray_grid_survives_a_killed_worker_and_equals_the_sequential_table(tmp_path):
    (tmp_path / "grid.yaml").write_text(GRID)
    common = ["run", "--config", "grid.yaml", "--no-tracking", "--no-plots"]
    killed, stop = [], threading.Event()
    watcher = threading.Thread(target=kill_first_worker_after_a_checkpoint,
                               args=(tmp_path / "ray_cache", killed, stop), daemon=True)
    watcher.start()
    ray_run = mclbench([*common, "--executor", "ray", "--ray-cpus", "1", "--output", "ray_out",
                        "--cache-dir", "ray_cache"], tmp_path)
    out, err = ray_run.communicate(timeout=900)
    stop.set()
    assert ray_run.returncode == 0, err[-3000:]
    assert killed, "no worker was killed: the training ended before its first checkpoint"

    # the same grid, sequentially, with the one thread each Ray task had
    seq = mclbench([*common, "--output", "seq_out", "--cache-dir", "seq_cache"], tmp_path,
                   env={"OMP_NUM_THREADS": "1"})
    _, err = seq.communicate(timeout=900)
    assert seq.returncode == 0, err[-3000:]
    ray_scores = (tmp_path / "ray_out" / "scores.csv").read_text()
    assert ray_scores == (tmp_path / "seq_out" / "scores.csv").read_text()
    assert ray_scores.count("\n") > 8 * 5  # 8 cells, every metric
    for task in ("markov", "translation"):
        table = (tmp_path / "ray_out" / task / "leaderboard.md").read_text().split("<sub>")[0]
        assert table == (tmp_path / "seq_out" / task / "leaderboard.md").read_text().split("<sub>")[0]

    # a re-run on Ray finds every cell cached: nothing is recomputed, nothing changes
    before = {p: p.stat().st_mtime_ns for p in (tmp_path / "ray_cache").rglob("MANIFEST.json")}
    again = mclbench([*common, "--executor", "ray", "--output", "ray_out", "--cache-dir", "ray_cache"],
                     tmp_path)
    _, err = again.communicate(timeout=600)
    assert again.returncode == 0, err[-3000:]
    assert {p: p.stat().st_mtime_ns for p in (tmp_path / "ray_cache").rglob("MANIFEST.json")} == before
