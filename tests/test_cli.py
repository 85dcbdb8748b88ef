"""End to end through the CLI on a tiny Markov task: outputs, reuse, resume, errors, MLflow."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from conftest import TINY_SETS

from harness.cli import main

REPO = Path(__file__).resolve().parents[1]


def run(out, cache, tiny_sets, *extra):
    return main(["run", "--tasks", "markov", "--methods", "lora_mcl,lora_mle", "--seeds", "0",
                 "--output", str(out), "--cache-dir", str(cache), *tiny_sets, *extra])


def artifacts(cache: Path) -> dict[str, float]:
    return {str(p.relative_to(cache)): p.stat().st_mtime_ns
            for p in cache.rglob("MANIFEST.json")}


@pytest.mark.slow
def test_run_writes_tidy_scores_and_leaderboard_then_reuses_everything(run_dirs, tiny_sets, capsys):
    out, cache = run_dirs
    assert run(out, cache, tiny_sets) == 0
    scores = pd.read_csv(out / "scores.csv")
    assert list(scores.columns) == ["task", "method", "seed", "metric", "value"]
    assert set(scores["method"]) == {"lora_mcl", "lora_mle"}
    per_method = scores.groupby("method")["metric"].apply(set)
    assert "markov_tv_mixture" in per_method["lora_mle"]
    assert "markov_tv_mixture" not in per_method["lora_mcl"]  # defined for K = 1 only
    assert {"winner_share_0", "winner_share_1"} <= per_method["lora_mcl"]
    board = (out / "leaderboard.md").read_text()
    assert "| lora_mcl |" in board and "markov_tv ↓" in board and "commit" in board
    stages = artifacts(cache)
    assert {k.split("/")[0] for k in stages} == {"backbone", "train", "decode", "score", "significance"}

    capsys.readouterr()
    published = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    assert run(out, cache, tiny_sets) == 0  # second run: every stage reused, nothing rewritten
    assert artifacts(cache) == stages
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == published

    assert main(["table", str(out), "--format", "latex"]) == 0
    latex = capsys.readouterr().out
    assert r"\begin{tabular}" in latex and r"markov\_tv $\downarrow$" in latex
    assert main(["table", str(out), "--format", "csv"]) == 0
    assert capsys.readouterr().out.startswith("task,method,metric,mean,std,seeds")


@pytest.mark.slow
def test_mlflow_logs_each_cell_once(run_dirs, tiny_sets, monkeypatch):
    import mlflow

    out, cache = run_dirs
    uri = f"sqlite:///{out.parent / 'store.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    assert run(out, cache, tiny_sets) == 0
    assert run(out, cache, tiny_sets) == 0
    client = mlflow.MlflowClient(uri)
    runs = client.search_runs([client.get_experiment_by_name("mclbench").experiment_id])
    assert sorted(r.info.run_name for r in runs) == ["markov/lora_mcl/seed0", "markov/lora_mle/seed0"]
    mcl = next(r for r in runs if r.info.run_name.endswith("lora_mcl/seed0"))
    assert mcl.data.params["method.num_hypotheses"] == "2"
    assert "markov_tv" in mcl.data.metrics and "train/winner_share_1" in mcl.data.metrics
    scores = pd.read_csv(out / "scores.csv")
    want = scores[(scores.method == "lora_mcl") & (scores.metric == "markov_tv")]["value"].item()
    assert mcl.data.metrics["markov_tv"] == pytest.approx(want)


@pytest.mark.slow
def test_mlflow_takes_the_best_of_n_reductions(run_dirs, monkeypatch):
    import mlflow

    out, cache = run_dirs
    uri = f"sqlite:///{out.parent / 'store.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    assert main(["run", "--tasks", "translation", "--methods", "beam", "--seeds", "0", "--output", str(out),
                 "--cache-dir", str(cache), "--no-plots", "--set", "task.num_test=4",
                 "--set", "task.num_train=16", "--set", "task.max_new_tokens=6", "--set", "method.steps=1",
                 "--set", "method.batch_size=4", "--set", "beam.num_candidates=2"]) == 0
    client = mlflow.MlflowClient(uri)
    (logged,) = client.search_runs([client.get_experiment_by_name("mclbench").experiment_id])
    scores = pd.read_csv(out / "scores.csv").set_index("metric")["value"]
    assert logged.data.metrics["max_at_2/bleu"] == pytest.approx(scores["max@2/bleu"])
    assert logged.data.metrics["max/bleu"] == pytest.approx(scores["max/bleu"])


@pytest.mark.slow
def test_default_mlflow_store_is_local_sqlite(run_dirs, tiny_sets):
    out, cache = run_dirs
    assert run(out, cache, tiny_sets) == 0
    assert (Path("mlruns") / "mlflow.db").is_file()


def _cli(*args, cwd, threads=None, **kw):
    env = {**os.environ, "MCLBENCH_PROGRESS": "0"}
    if threads:  # two runs side by side on 2 cores: avoid OpenMP oversubscription
        env["OMP_NUM_THREADS"] = str(threads)
    return subprocess.Popen([sys.executable, "-m", "harness.cli", *args], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


@pytest.mark.parametrize("args,msg", [
    (["--methods", "lora_mlc"], "unknown method 'lora_mlc'; did you mean"),
    (["--tasks", "markow"], "unknown task 'markow'; did you mean 'markov'"),
    (["--set", "method.rnak=4"], "no selected method (lora_mcl) has a parameter 'rnak'"),
    (["--set", "task.num_states=two"], "task 'markov'.num_states: expected an integer"),
    (["--config", "bad.yaml"], "bad.yaml: not valid YAML at line 2"),
])
def test_bad_input_gives_one_line_error(tmp_path, args, msg):
    (tmp_path / "bad.yaml").write_text("tasks: [markov]\nmethods: {lora_mcl: [}\n")
    base = ["run", "--tasks", "markov", "--methods", "lora_mcl", "--output", "o"]
    p = _cli(*base, *args, cwd=tmp_path)
    stdout, stderr = p.communicate(timeout=120)
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    assert p.returncode == 2 and len(lines) == 1, stderr
    assert lines[0].startswith("mclbench: error: ") and msg in lines[0], lines[0]


@pytest.mark.slow
def test_kill_9_mid_training_then_resume_gives_identical_scores(tmp_path):
    sets = [a for s in TINY_SETS if not s.startswith("method.steps") for a in ("--set", s)]
    sets += ["--set", "method.steps=600"]
    args = ["run", "--tasks", "markov", "--methods", "lora_mcl", "--output", "o",
            "--cache-dir", "c", "--no-tracking", *sets]
    ref, killed = tmp_path / "ref", tmp_path / "killed"
    ref.mkdir()
    killed.mkdir()
    p = _cli(*args, cwd=killed, threads=1, start_new_session=True)
    deadline = time.time() + 240
    while not list((killed / "c" / "train").glob("*.partial/checkpoint.pt")):
        assert p.poll() is None and time.time() < deadline, "no checkpoint was written"
        time.sleep(0.2)
    os.killpg(p.pid, signal.SIGKILL)
    p.wait()
    assert not (killed / "o" / "scores.csv").exists()
    assert not list((killed / "c" / "train").glob("*/MANIFEST.json"))
    resumed = _cli(*args, cwd=killed, threads=1)
    reference = _cli(*args, cwd=ref, threads=1)
    for proc in (resumed, reference):
        _, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err
    assert (killed / "o" / "scores.csv").read_text() == (ref / "o" / "scores.csv").read_text()


def test_an_error_message_that_starts_with_a_newline_still_says_what_is_wrong():
    from harness.cli import error_line

    line = error_line(ImportError("\nAutoImageProcessor requires the Torchvision library\nsee the docs"))
    assert line.startswith("ImportError: AutoImageProcessor requires the Torchvision library")
    assert "\n" not in line
