"""MLflow server mode: cells from several `mclbench run` processes (as on several machines)
land in one tracking server on 127.0.0.1, each cell once, with metrics and artifacts."""

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import TINY_SETS

MLFLOW = Path(sys.executable).with_name("mlflow")
pytestmark = pytest.mark.skipif(
    not MLFLOW.exists() or shutil.which("curl") is None,
    reason="the MLflow server is the `distributed` extra: pip install 'mclbench[distributed]'")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(tmp_path):
    port = free_port()
    proc = subprocess.Popen([str(MLFLOW), "server", "--host", "127.0.0.1", "--port", str(port),
                             "--backend-store-uri", f"sqlite:///{tmp_path / 'server.db'}",
                             "--artifacts-destination", str(tmp_path / "artifacts"), "--workers", "1"],
                            cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    for _ in range(120):
        ok = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", f"{url}/health"],
                            capture_output=True, text=True).stdout
        if ok == "200":
            break
        time.sleep(0.5)
    else:
        proc.kill()
        pytest.fail("the MLflow server did not start in 60 s")
    yield url
    proc.terminate()
    proc.wait(timeout=30)


def run(workdir: Path, url: str, seeds: str):
    workdir.mkdir()
    args = [sys.executable, "-m", "harness.cli", "run", "--tasks", "markov",
            "--methods", "lora_mcl,lora_mle", "--seeds", seeds, "--output", "out", "--no-plots"]
    for s in TINY_SETS:
        args += ["--set", s]
    # one shared cache, as workers of one sweep would have; each its own folder and ledger
    args += ["--cache-dir", str(workdir.parent / "cache")]
    return subprocess.Popen(args, cwd=workdir, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "MLFLOW_TRACKING_URI": url, "MCLBENCH_PROGRESS": "0"})


@pytest.mark.slow
def test_every_cell_of_every_worker_lands_once(server, tmp_path):
    import mlflow

    workers = [run(tmp_path / "worker0", server, "0"), run(tmp_path / "worker1", server, "1")]
    for w in workers:
        _, err = w.communicate(timeout=600)
        assert w.returncode == 0, err[-3000:]
    # a third worker re-runs seed 0 from a folder with no local ledger: the server is asked
    third = run(tmp_path / "worker2", server, "0")
    _, err = third.communicate(timeout=600)
    assert third.returncode == 0, err[-3000:]

    client = mlflow.MlflowClient(server)
    exp = client.get_experiment_by_name("mclbench")
    runs = client.search_runs([exp.experiment_id], max_results=100)
    labels = sorted(r.info.run_name for r in runs)
    assert labels == ["markov/lora_mcl/seed0", "markov/lora_mcl/seed1",
                      "markov/lora_mle/seed0", "markov/lora_mle/seed1"]
    for r in runs:
        assert "markov_tv" in r.data.metrics and r.info.status == "FINISHED"
        assert r.data.tags["mclbench.score_key"]
        names = {a.path for a in client.list_artifacts(r.info.run_id)}
        assert {"candidates.jsonl", "scores.json", "details.json"} <= names
    mcl = next(r for r in runs if r.info.run_name == "markov/lora_mcl/seed0")
    shares = client.get_metric_history(mcl.info.run_id, "train/winner_share_0")
    log = json.loads((tmp_path / "worker0" / "out" / "cells" / "markov" / "lora_mcl" / "seed0"
                      / "train_log.json").read_text())  # the server's history is the cell's log
    want = [(step, counts[0] / sum(counts)) for step, counts in zip(log["step"], log["winner_counts"],
                                                                    strict=True)]
    got = sorted((m.step, m.value) for m in shares)
    assert [s for s, _ in got] == [s for s, _ in want] and len(want) > 1
    assert [v for _, v in got] == pytest.approx([v for _, v in want])
