"""Nothing stale, nothing lost: code-aware cache keys, concurrent runs on one cache, damaged
checkpoints, a failing METEOR JVM, cache housekeeping."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch
from conftest import TINY_SETS

from harness import checkpoints
from harness.cache import Cache
from harness.cli import main

REPO = Path(__file__).resolve().parents[1]

PLUGIN = '''
from dataclasses import dataclass

from harness.method import Method
from harness.registry import register_method


@dataclass
class EchoConfig:
    pass


@register_method("echo_reference")
class EchoReference(Method):
    """Returns each input's first reference (a plugin outside the project)."""

    Config = EchoConfig

    def load(self, backbone, train_dir):
        return backbone

    def decode_spec(self):
        return {"decoder": "echo"}

    def decode(self, model, task, examples, seed):
        return [[e.references[0]] for e in examples]
'''


def _plugin_run(folder: Path, *args: str) -> subprocess.CompletedProcess:
    code = (f"import sys; sys.path.insert(0, {str(folder)!r}); import echo_plugin; "
            "from harness.cli import main; sys.exit(main(sys.argv[1:]))")
    argv = [sys.executable, "-c", code, "run", "--tasks", "translation", "--methods", "echo_reference",
            "--set", "task.num_test=4", "--output", "o", "--cache-dir", "c", "--no-tracking",
            "--no-plots", *args]
    env = {**os.environ, "MCLBENCH_PROGRESS": "0", "PYTHONPATH": str(REPO)}
    return subprocess.run(argv, cwd=folder, env=env, capture_output=True, text=True, timeout=300)


def _manifests(cache: Path, stage: str) -> dict[str, int]:
    return {p.parent.name: p.stat().st_mtime_ns for p in (cache / stage).glob("*/MANIFEST.json")}


@pytest.mark.slow
def test_editing_a_plugins_decode_recomputes_it_and_nothing_else_does(tmp_path):
    (tmp_path / "echo_plugin.py").write_text(PLUGIN)
    first = _plugin_run(tmp_path)
    assert first.returncode == 0, first.stderr
    assert "(1 cells, 1 computed, 0 cached)" in first.stderr
    decodes, bleu = _manifests(tmp_path / "c", "decode"), pd.read_csv(tmp_path / "o" / "scores.csv")

    unchanged = _plugin_run(tmp_path)  # same code: served from the cache, nothing rewritten
    assert unchanged.returncode == 0 and "(1 cells, 0 computed, 1 cached)" in unchanged.stderr
    assert _manifests(tmp_path / "c", "decode") == decodes

    (tmp_path / "echo_plugin.py").write_text(PLUGIN.replace("e.references[0]]", "e.references[0].upper()]"))
    edited = _plugin_run(tmp_path)
    assert edited.returncode == 0 and "(1 cells, 1 computed, 0 cached)" in edited.stderr, edited.stderr
    after = _manifests(tmp_path / "c", "decode")
    assert len(after) == 2 and set(decodes) < set(after)  # a new decode; the old one untouched
    new = pd.read_csv(tmp_path / "o" / "scores.csv")
    top1 = lambda df: df[df.metric == "top1/bleu"]["value"].item()  # noqa: E731
    assert top1(bleu) == pytest.approx(100.0) and top1(new) < 50  # upper-cased: re-scored


@pytest.mark.slow
def test_two_identical_runs_on_one_cache_both_finish_with_identical_scores(tmp_path):
    sets = [a for s in TINY_SETS if not s.startswith("method.steps") for a in ("--set", s)]
    args = ["run", "--tasks", "markov", "--methods", "lora_mle", "--cache-dir", "c", "--no-tracking",
            "--no-plots", *sets, "--set", "method.steps=300"]
    env = {**os.environ, "MCLBENCH_PROGRESS": "0", "OMP_NUM_THREADS": "1"}

    def start(out: str) -> subprocess.Popen:
        return subprocess.Popen([sys.executable, "-m", "harness.cli", *args, "--output", out], cwd=tmp_path,
                                env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    first = start("o1")
    time.sleep(1)
    second = start("o2")
    for proc in (first, second):
        _, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err
    scores = [(tmp_path / out / "scores.csv").read_text() for out in ("o1", "o2")]
    assert scores[0] == scores[1]
    assert len(_manifests(tmp_path / "c", "train")) == 1  # computed once, reused by the other
    left = [p for p in (tmp_path / "c" / "train").iterdir() if ".tmp-" in p.name or p.suffix == ".partial"]
    assert not left


def test_damaged_checkpoint_falls_back_to_the_previous_one(tmp_path, caplog):
    path = tmp_path / "checkpoint.pt"
    checkpoints.save(path, {"step": 2, "w": torch.ones(3)})
    checkpoints.save(path, {"step": 4, "w": torch.full((3,), 2.0)})
    assert checkpoints.load(path)["step"] == 4
    path.write_bytes(path.read_bytes()[:-20])  # truncated by a crash or a full disk
    assert checkpoints.load(path)["step"] == 2
    assert "is damaged (its bytes do not match its digest); discarding it" in caplog.text
    checkpoints.save(path, {"step": 6})
    (tmp_path / "checkpoint.prev.pt").write_bytes(b"garbage")
    path.write_bytes(b"garbage")
    assert checkpoints.load(path) is None  # nothing intact: training starts afresh


def test_training_resumes_exactly_past_a_damaged_checkpoint(tmp_path):
    """Interrupted after step 5 with checkpoints at 2 and 4; the one at 4 is damaged: training
    resumes from 2 and ends with the adapters of an uninterrupted run."""
    from harness.config import build
    from methods.lora.fast import FastMultiLoRAModel
    from methods.lora.model import MultiLoRAConfig
    from methods.lora.trainer import TrainSettings, train_adapters
    from tasks.markov import MarkovConfig, MarkovTask

    task = MarkovTask(build(MarkovConfig, {"num_train": 64, "num_val": 8, "num_test": 4, "hidden_size": 16,
                                           "num_layers": 1, "num_heads": 2}, "task"))
    settings = TrainSettings(steps=6, batch_size=8, lr=1e-2, checkpoint_every=2)

    def trained(work: Path, stop_at: int | None = None):
        work.mkdir(exist_ok=True)
        torch.manual_seed(0)
        model = FastMultiLoRAModel(task.build_backbone(0), MultiLoRAConfig(num_hypotheses=2, rank=2))

        def objective(nll, step):
            if step == stop_at:
                raise KeyboardInterrupt
            return nll.mean()

        train_adapters(model, task.training_set(), settings, objective, seed=0, work_dir=work)
        return {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}

    reference = trained(tmp_path / "ref")
    work = tmp_path / "interrupted"
    with pytest.raises(KeyboardInterrupt):
        trained(work, stop_at=5)
    damaged = work / "checkpoint.pt"
    assert torch.load(damaged, weights_only=True)["step"] == 4
    damaged.write_bytes(b"\0" * 64 + damaged.read_bytes()[64:])
    resumed = trained(work)
    assert all(torch.equal(resumed[n], reference[n]) for n in reference)


def _java() -> str | None:
    return shutil.which("java")


@pytest.mark.skipif(_java() is None, reason="no Java: METEOR cannot run here at all")
def test_a_failing_meteor_jvm_makes_meteor_na_with_its_stderr_and_keeps_the_rest(tmp_path, monkeypatch):
    from harness import scoring

    fake = tmp_path / "bin" / "java"
    fake.parent.mkdir()
    fake.write_text(f'#!/bin/sh\ncase "$*" in *meteor*) echo "Error: Could not reserve enough space '
                    f'for object heap" >&2; exit 1;; esac\nexec {_java()} "$@"\n')
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake.parent}{os.pathsep}{os.environ['PATH']}")
    cands = [["a man rides a horse", "a dog runs"], ["two cats sleep", "a cat sleeps on a sofa"]]
    refs = [["a man is riding a horse"], ["a cat sleeps on the sofa", "two cats are sleeping"]]
    values, missing = scoring.score(["a", "b"], cands, refs, ["bleu_4", "meteor", "rouge_l", "bleu"])
    assert "Could not reserve enough space for object heap" in missing["meteor"]
    assert "exited with status 1" in missing["meteor"]
    assert values["top1/meteor"] is None
    kept = [f"{f}/{m}" for f in ("top1", "oracle_corpus") for m in ("bleu_4", "rouge_l", "bleu")]
    assert all(values[k] is not None for k in kept)


def test_cache_gc_removes_leftovers_and_keeps_artifacts(tmp_path, capsys):
    cache = Cache(tmp_path)
    key = "a" * 64
    cache.get_or_compute("decode", key, lambda d: (d / "x.txt").write_text("x"))
    leftovers = [tmp_path / "decode" / f".{key}.tmp-1-abc",
                 tmp_path / "decode" / f".{'b' * 64}.corrupt-1-x"]
    for folder in leftovers:
        folder.mkdir()
        (folder / "half").write_text("h")
    (tmp_path / "decode" / f"{'c' * 64}").mkdir()  # an artifact without its manifest: broken
    (tmp_path / "translation_base").mkdir()  # not the cache's: never touched
    assert main(["cache", "ls", "--cache-dir", str(tmp_path)]) == 0
    listing = capsys.readouterr().out
    assert "decode" in listing and "2" in listing.split("decode")[1].split()[:3]
    assert main(["cache", "gc", "--cache-dir", str(tmp_path)]) == 0
    assert not any(p.exists() for p in leftovers) and not (tmp_path / "decode" / ("c" * 64)).exists()
    assert cache.get("decode", key) is not None and (tmp_path / "translation_base").is_dir()
    assert main(["cache", "clear", "--cache-dir", str(tmp_path), "--yes"]) == 0
    assert cache.get("decode", key) is None and (tmp_path / "translation_base").is_dir()


def test_a_killed_runs_temporary_folder_is_removed_when_the_key_is_next_computed(tmp_path):
    cache = Cache(tmp_path)
    key = "d" * 64
    stale = tmp_path / "decode" / f".{key}.tmp-999-dead"
    stale.mkdir(parents=True)
    cache.get_or_compute("decode", key, lambda d: (d / "x.txt").write_text("x"))
    assert not stale.exists() and cache.get("decode", key) is not None


@pytest.mark.slow
def test_scores_come_back_without_training_when_train_artifacts_are_gone(run_dirs, tiny_sets, capsys):
    """Scoring is a pure function of the decode artifact (candidates + probes + costs): with
    every train artifact deleted, a re-run trains nothing and publishes the same scores."""
    out, cache = run_dirs
    args = ["run", "--tasks", "markov", "--methods", "lora_mcl,lora_mle", "--seeds", "0",
            "--output", str(out), "--cache-dir", str(cache), "--no-tracking", *tiny_sets]
    assert main(args) == 0
    scores = (out / "scores.csv").read_text()
    shutil.rmtree(cache / "train")
    shutil.rmtree(cache / "score")  # and every score: they are recomputed from the decodes
    capsys.readouterr()
    assert main(args) == 0
    assert "(2 cells, 2 computed, 0 cached)" in capsys.readouterr().err
    assert not (cache / "train").exists()  # nothing trained
    assert (out / "scores.csv").read_text() == scores
    # the training log is kept with the decode it led to
    assert (out / "cells" / "markov" / "lora_mcl" / "seed0" / "train_log.json").is_file()


def test_the_decode_key_covers_the_decode_code_and_not_the_scoring_code():
    """Editing how candidates are scored or tested re-scores them; it does not decode again."""
    from harness import fingerprint, score_stages, stages

    def covered(module):
        roots = frozenset(fingerprint.PROJECT_PACKAGES)
        return {name for name, _ in fingerprint._module_digest(module.__name__, roots)}

    decode, score = covered(stages), covered(score_stages)
    assert not {m for m in decode if m.startswith("harness.metrics")}
    assert "harness.scoring" not in decode
    assert {"harness.stages", "harness.metrics.registry", "harness.metrics.significance",
            "harness.metrics.bootstrap"} <= score
    # the registered metrics' modules join the score key per task (test_metric_registry edits one)


def test_a_module_edited_after_its_import_gets_a_key_no_later_run_meets(tmp_path, monkeypatch):
    """A long run while someone edits the code: the process runs the source it imported, so the
    edited file's digest must not become the key of what the old code computed."""
    import hashlib
    import importlib

    from harness import fingerprint

    source = tmp_path / "edited_plugin.py"
    source.write_text("VALUE = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    module = importlib.import_module("edited_plugin")
    roots = frozenset({"edited_plugin"})
    fingerprint._module_digest.cache_clear()
    assert dict(fingerprint._module_digest("edited_plugin", roots)) == {
        "edited_plugin": hashlib.sha256(b"VALUE = 1\n").hexdigest()}

    source.write_text("VALUE = 2\n")
    os.utime(source, (time.time() + 1, time.time() + 1))  # later than the import, whatever the clock's grain
    fingerprint._module_digest.cache_clear()
    with pytest.warns(UserWarning, match="changed after this process imported it"):
        first = dict(fingerprint._module_digest("edited_plugin", roots))["edited_plugin"]
    fingerprint._module_digest.cache_clear()
    with pytest.warns(UserWarning):
        second = dict(fingerprint._module_digest("edited_plugin", roots))["edited_plugin"]
    assert first != second and first.startswith("changed since import")  # one-off: never met again

    time.sleep(1.1)  # past the file's (future) mtime, then import it again: its digest is its source's
    importlib.reload(module)
    fingerprint._module_digest.cache_clear()
    assert dict(fingerprint._module_digest("edited_plugin", roots))["edited_plugin"] == \
        hashlib.sha256(b"VALUE = 2\n").hexdigest()
    sys.modules.pop("edited_plugin")
    fingerprint._module_digest.cache_clear()
