"""The metric registry: one definition per name, the reductions derived from each candidate's
score, the reference page generated from it, and cache keys that keep metric code out of every
stage before scoring (a metric edit re-scores, never retrains: shown on a real task in a copy
of the tree)."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from test_text_metrics import CANDS, REFS

from harness import fingerprint
from harness.metrics import registry
from harness.metrics import text as tx

ROOT = Path(__file__).resolve().parents[1]


def test_a_name_is_registered_once():
    with pytest.raises(ValueError, match="registered twice"):
        registry.register_metric("bleu", kind="candidate", higher_is_better=True, description="again")(
            lambda inputs: None)


def test_unknown_names_and_reductions_are_refused_in_one_line():
    with pytest.raises(registry.MetricNameError, match="unknown metric 'rouge'"):
        registry.spec("rouge")
    with pytest.raises(registry.MetricNameError, match="vocab has no reduction 'max'.*set metric"):
        registry.spec("max/vocab")
    with pytest.raises(registry.MetricNameError, match="sbert_sim has no reduction 'mean'; it has top1, max"):
        registry.spec("mean/sbert_sim")


def test_a_need_not_met_is_skipped_or_refused_when_asked_for():
    one = [[c[0]] for c in CANDS]
    inputs = registry.ScoreInputs(one, REFS)
    done = registry.evaluate(["mbleu_4", "unique"], inputs)
    assert "mbleu_4" not in done.values and done.skipped == {"mbleu_4": registry.NEEDS["two_candidates"]}
    with pytest.raises(registry.MetricNameError, match="mbleu_4 needs at least 2 candidates per input"):
        registry.evaluate(["mbleu_4"], registry.ScoreInputs(one, REFS), strict=True)


@pytest.fixture
def sentence_metric():
    """A candidate metric that is a mean of sentence scores (as CIDEr-D), registered for the test."""
    name = "test_overlap"

    def overlap(inputs):
        return registry.CandidateScores(np.array([[len(set(c.split()) & set(" ".join(r).split()))
                                                   for c in cands] for cands, r in
                                                  zip(inputs.candidates, inputs.references, strict=True)],
                                                 dtype=float))

    registry.register_metric(name, kind="candidate", higher_is_better=True,
                             description="shared words")(overlap)
    yield name
    registry.load().pop(name)


def test_max_at_n_is_max_at_n_and_top1_at_one(sentence_metric):
    n = len(CANDS[0])
    for name in ("bleu", "chrf", sentence_metric):
        values = registry.score(CANDS, REFS, [name])
        assert [f"max@{k}/{name}" for k in range(1, n + 1)] == [k for k in values if k.startswith("max@")]
        assert values[f"max@{n}/{name}"] == values[f"max/{name}"]
        assert values["max@1/" + name] <= values[f"max@{n}/{name}"]
    sentence = registry.score(CANDS, REFS, [sentence_metric])  # a mean of sentence scores
    assert sentence[f"max@1/{sentence_metric}"] == sentence[f"top1/{sentence_metric}"]
    assert sentence[f"oracle_corpus/{sentence_metric}"] == sentence[f"max/{sentence_metric}"]
    bleu = tx.quality_flavours(CANDS, REFS, ["bleu"])  # corpus BLEU: max@1 is the mean sentence BLEU
    first = [tx.sentence_bleu(c[0], r) for c, r in zip(CANDS, REFS, strict=True)]
    assert bleu["max@1/bleu"] == pytest.approx(np.mean(first))
    assert bleu["max@1/bleu"] != bleu["top1/bleu"]


def test_the_metrics_reference_is_current():
    page = ROOT / "docs" / "metrics.md"
    assert page.read_text() == registry.reference_markdown(), (
        "docs/metrics.md is stale: run `mclbench metrics --markdown > docs/metrics.md`")


def test_no_stage_before_scoring_covers_metric_code():
    from harness import stages
    from harness.registry import available

    roots = frozenset(fingerprint.PROJECT_PACKAGES)
    classes = [*available("task").values(), *available("method").values()]
    for obj in [stages, *classes]:
        modules = [m for mod in fingerprint._modules_of(obj) for m, _ in
                   fingerprint._module_digest(mod.__name__, roots)]
        assert not [m for m in modules if m.startswith(("harness.metrics", "harness.scoring"))], obj


def _copy_tree(dest: Path) -> Path:
    for package in ("harness", "methods", "tasks"):
        shutil.copytree(ROOT / package, dest / package, ignore=shutil.ignore_patterns("data", "__pycache__"))
    (dest / "tasks" / "data").symlink_to(ROOT / "tasks" / "data")
    return dest


def _run(tree: Path, out: Path, cache: Path) -> pd.DataFrame:
    code = ("import sys, harness; assert harness.__file__.startswith(sys.argv[1]), harness.__file__; "
            "from harness.cli import main; sys.exit(main(sys.argv[2:]))")
    args = [sys.executable, "-c", code, str(tree), "run", "--tasks", "translation", "--methods", "lora_mle",
            "--seeds", "0", "--output", str(out), "--cache-dir", str(cache), "--no-tracking", "--no-plots",
            "--set", "task.num_test=6", "--set", "task.max_new_tokens=8", "--set", "task.num_train=64",
            "--set", "method.steps=2", "--set", "method.batch_size=4"]
    env = {**os.environ, "MCLBENCH_PROGRESS": "0"}
    done = subprocess.run(args, cwd=tree, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    return pd.read_csv(out / "scores.csv")


def _manifests(cache: Path) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for p in cache.rglob("MANIFEST.json"):
        stage = p.relative_to(cache).parts[0]
        out.setdefault(stage, {})[str(p.relative_to(cache))] = p.stat().st_mtime_ns
    return out


@pytest.mark.slow
def test_editing_a_metric_rescores_without_training_or_decoding_again(tmp_path):
    tree, cache = _copy_tree(tmp_path / "tree"), tmp_path / "cache"
    first = _run(tree, tmp_path / "out1", cache)
    before = _manifests(cache)
    assert {"backbone", "train", "decode", "score"} <= set(before)
    module = tree / "harness" / "metrics" / "diversity.py"
    source = module.read_text()
    edited = source.replace('description="distinct candidates / N, mean over inputs"',
                            'description="distinct candidates over N, averaged over inputs"')
    assert edited != source
    module.write_text(edited)  # 1. the description only: re-scored, the same numbers
    second = _run(tree, tmp_path / "out2", cache)
    after = _manifests(cache)
    for stage in ("backbone", "train", "decode"):
        assert after[stage] == before[stage], f"the {stage} stage was recomputed"
    assert len(after["score"]) == len(before["score"]) + 1  # a new score artifact
    pd.testing.assert_frame_equal(first, second)
    line = "return np.asarray([len(set(c)) / len(c) for c in candidates], dtype=float)"
    computed = edited.replace(line, line.replace("/ len(c)", "/ len(c) / 2"))
    assert computed != edited
    module.write_text(computed)  # 2. the computation: re-scored, that number moves, no other
    third = _run(tree, tmp_path / "out3", cache)
    final = _manifests(cache)
    for stage in ("backbone", "train", "decode"):
        assert final[stage] == before[stage], f"the {stage} stage was recomputed"
    merged = first.merge(third, on=["task", "method", "seed", "metric"], suffixes=("_old", "_new"))
    assert len(merged) == len(first) == len(third)
    moved = merged[merged["value_old"] != merged["value_new"]]
    assert list(moved["metric"]) == ["unique"]
    assert moved["value_new"].iloc[0] == moved["value_old"].iloc[0] / 2
    json.loads((tmp_path / "out3" / "run.json").read_text())  # published as usual
