"""TER, the worked example of docs/adding-a-metric.md: one file in a package of its own
(examples/mclbench-ter), registered through the ``mclbench.metrics`` entry point. Installed, it
equals sacreBLEU's TER and — with no other edit — it is in `mclbench metrics`, `mclbench score`,
a task file's table by name, the significance rows and the evaluate module."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sacrebleu
from conftest import install_example
from test_text_metrics import CANDS, REFS

from harness.metrics.text import reference_streams

PACKAGE = Path(__file__).resolve().parents[1] / "examples" / "mclbench-ter"


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """The example pip-installed into a folder of its own (not this environment's site-packages)."""
    return {**install_example(PACKAGE, tmp_path_factory.mktemp("site")), "MCLBENCH_PROGRESS": "0"}


def mclbench(args, env, cwd):
    done = subprocess.run([sys.executable, "-m", "harness.cli", *args], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_not_registered_without_the_package(tmp_path):
    listed = [line.split()[0] for line in mclbench(["metrics"], os.environ, tmp_path).splitlines()]
    assert "bleu" in listed and "ter" not in listed


def test_ter_equals_sacrebleu_corpus_and_sentence_ter(installed, tmp_path):
    preds = tmp_path / "p.jsonl"
    preds.write_text("".join(json.dumps({"id": i, "candidates": c, "references": r}) + "\n"
                             for i, (c, r) in enumerate(zip(CANDS, REFS, strict=True))))
    assert "sacreBLEU TER" in mclbench(["metrics"], installed, tmp_path)
    args = ["score", "--predictions", str(preds), "--metrics", "ter", "--format", "json"]
    values = json.loads(mclbench(args, installed, tmp_path))
    first = [c[0] for c in CANDS]
    assert values["top1/ter"] == pytest.approx(sacrebleu.corpus_ter(first, reference_streams(REFS)).score,
                                               abs=1e-9)
    sentence = np.array([[sacrebleu.sentence_ter(c, r).score for c in cands]
                         for cands, r in zip(CANDS, REFS, strict=True)])
    assert values["min/ter"] == pytest.approx(sentence.min(1).mean(), abs=1e-9)  # lower is better: min
    n = len(CANDS[0])
    assert values[f"min@{n}/ter"] == values["min/ter"] and "max/ter" not in values
    assert values["min@1/ter"] == pytest.approx(sentence[:, 0].mean(), abs=1e-9)
    best = [c[int(np.argmin(s))] for c, s in zip(CANDS, sentence, strict=True)]
    assert values["oracle_corpus/ter"] == pytest.approx(
        sacrebleu.corpus_ter(best, reference_streams(REFS)).score, abs=1e-9)
    module = ("from mclbench.evaluate_modules.multi_candidate_metrics.multi_candidate_metrics import "
              "MultiCandidateMetrics as M; print('ter' in M.metric_names)")
    found = subprocess.run([sys.executable, "-c", module], env=installed, capture_output=True, text=True)
    assert found.stdout.strip() == "True", found.stderr[-1000:]


@pytest.mark.slow
def test_a_task_file_names_it_and_its_table_and_significance_rows_have_it(installed, tmp_path):
    rows = [{"id": str(i), "source": " ".join(r[0].split()[:4]), "references": r} for i, r in enumerate(REFS)]
    (tmp_path / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "toy_ter.yaml").write_text(
        "name: toy_ter\ninput: text\ndata: {test: test.jsonl}\nmetrics: [bleu, ter]\n")
    mclbench(["run", "--task-file", "toy_ter.yaml", "--methods", "lora_mle,beam", "--seeds", "0,1",
              "--output", "out", "--cache-dir", "cache", "--no-tracking", "--no-plots",
              "--set", "task.max_new_tokens=8", "--set", "task.num_train=32", "--set", "method.steps=2",
              "--set", "method.batch_size=4", "--set", "beam.num_candidates=2"], installed, tmp_path)
    board = (tmp_path / "out" / "toy_ter" / "leaderboard.md").read_text()
    assert "min/ter ↓" in board and "top1/ter ↓" in board and "sacreBLEU ter: nrefs" in board
    tests = pd.read_csv(tmp_path / "out" / "significance.csv")
    assert {"top1/ter", "min/ter", "mean/ter", "oracle_corpus/ter"} <= set(tests["metric"])
