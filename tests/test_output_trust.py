"""Nothing silently wrong, nothing of the user's lost: the output folder's manifest and lock,
published files restored when damaged and refused by readers when edited, text sanitised once
before it reaches a JVM, LaTeX escaped, SIGTERM in one line."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from conftest import TINY_SETS, run_in
from test_bad_input import _digest

from harness.cli import main
from harness.manifest import MANIFEST
from harness.metrics import coco, registry

ROOT = Path(__file__).resolve().parents[1]
SETS = [a for s in TINY_SETS for a in ("--set", s)]
RUN = ["run", "--tasks", "markov", "--methods", "lora_mcl,lora_mle", "--seeds", "0",
       "--output", "out", "--cache-dir", "cache", "--no-tracking", *SETS]


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    """A finished tiny run with its figures: ``out/`` and ``cache/``."""
    root = tmp_path_factory.mktemp("published")
    run_in(root, RUN)
    return root


@pytest.fixture
def copy(published, tmp_path, monkeypatch):
    shutil.copytree(published, tmp_path, dirs_exist_ok=True)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return tmp_path


def _error(capsys) -> str:
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("mclbench: error")]
    assert len(lines) == 1, lines
    return lines[0]


@pytest.mark.slow
def test_the_manifest_lists_every_published_file(copy):
    files = json.loads((copy / "out" / MANIFEST).read_text())["files"]
    on_disk = {k for k in _digest(copy / "out") if not k.startswith(".")}
    assert set(files) == on_disk and "scores.csv" in files and any(k.endswith(".png") for k in files)


@pytest.mark.slow
def test_a_rerun_restores_damaged_and_missing_published_files(copy, capsys):
    out = copy / "out"
    before = _digest(out)
    (out / "leaderboard.md").write_text("")
    plot = next((out / "markov" / "plots").glob("*.png"))
    plot.unlink()
    (out / "markov" / "leaderboard.tex").write_text("truncated")
    assert main(RUN) == 0
    err = capsys.readouterr().err
    assert "restored 3 damaged or missing published file(s)" in err, err
    after = _digest(out)
    assert after == before  # every file back, byte for byte
    capsys.readouterr()
    assert main(RUN) == 0 and "restored" not in capsys.readouterr().err  # nothing more to do
    assert _digest(out) == before


@pytest.mark.slow
def test_files_mclbench_did_not_write_are_kept(copy, capsys):
    out = copy / "out"
    mine = out / "cells" / "lab" / "plate1" / "seed7" / "img001.tif"
    mine.parent.mkdir(parents=True)
    mine.write_bytes(b"\x49\x49\x2a\x00 a user's image")
    notes = out / "markov" / "my_notes.md"
    notes.write_text("mine")
    # a run with fewer rows replaces the table (--overwrite) and prunes lora_mcl's cell: only that
    assert main([*RUN, "--methods", "lora_mle", "--overwrite"]) == 0
    assert mine.read_bytes() == b"\x49\x49\x2a\x00 a user's image" and notes.read_text() == "mine"
    assert not (out / "cells" / "markov" / "lora_mcl").exists()
    assert (out / "cells" / "markov" / "lora_mle" / "seed0" / "candidates.jsonl").is_file()


@pytest.mark.slow
def test_a_folder_mclbench_did_not_write_is_refused_and_kept(copy, capsys):
    foreign = copy / "theirs"
    img = foreign / "cells" / "lab" / "plate1" / "seed7" / "img001.tif"
    img.parent.mkdir(parents=True)
    img.write_bytes(b"tif")
    (foreign / "run.json").write_text('{"mine": true}')
    before = _digest(foreign)
    assert main([*RUN, "--output", "theirs"]) == 2
    assert "theirs is not empty and mclbench did not write it" in _error(capsys)
    assert _digest(foreign) == before
    assert main([*RUN, "--output", "theirs", "--overwrite"]) == 0  # taken over: nothing of theirs deleted
    assert img.read_bytes() == b"tif" and json.loads((foreign / "run.json").read_text())["command"]


@pytest.mark.slow
def test_readers_refuse_damaged_published_files(copy, capsys):
    out = copy / "out"
    scores = (out / "scores.csv").read_text()
    (out / "scores.csv").write_text(scores[: len(scores) // 2])  # truncated mid-line
    assert main(["table", "out"]) == 2
    assert "out/scores.csv is not the file mclbench published" in _error(capsys)
    (out / MANIFEST).unlink()  # without the manifest: the shape still tells
    assert main(["table", "out"]) == 2 and "ends in the middle of a line" in _error(capsys)
    lines = scores.splitlines(keepends=True)
    (out / "scores.csv").write_text("".join([*lines, lines[1]]))  # a duplicated row: no fake seed
    assert main(["table", "out"]) == 2 and "appears twice" in _error(capsys)


@pytest.mark.slow
def test_compare_refuses_edited_candidates(copy, capsys):
    path = copy / "out" / "cells" / "markov" / "lora_mle" / "seed0" / "candidates.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    rows[0]["candidates"] = ["edited"]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert main(["compare", "out", "--task", "markov", "--metric", "unique", "lora_mcl", "lora_mle"]) == 2
    assert "candidates.jsonl is not the file mclbench published" in _error(capsys)


@pytest.mark.slow
def test_two_runs_into_one_output_never_drop_rows_silently(tmp_path):
    env = {**os.environ, "MCLBENCH_PROGRESS": "0"}
    env.pop("MLFLOW_TRACKING_URI", None)
    base = [sys.executable, "-m", "harness.cli", "run", "--tasks", "markov", "--seeds", "0",
            "--output", "out", "--no-tracking", "--no-plots", *SETS]
    grids = {"lora_mle": "c1", "lora_mcl": "c2"}  # two different grids, two caches, one output
    procs = {}
    for method, cache in grids.items():
        procs[method] = subprocess.Popen([*base, "--methods", method, "--cache-dir", cache], cwd=tmp_path,
                                         env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(1)  # started 1 s apart
    done = {m: (p.wait(timeout=600), p.communicate()[1]) for m, p in procs.items()}
    published = set(pd.read_csv(tmp_path / "out" / "scores.csv")["method"])
    ran = {m for m, (code, _) in done.items() if code == 0}
    # refused while the first publishes (the lock), or after it (the guard against dropping its rows)
    why = ("another mclbench run is publishing into this folder", "holds results this run does not include")
    refused = {m for m, (code, err) in done.items() if code == 2 and any(w in err for w in why)}
    assert ran | refused == set(grids) and len(ran) == 1, done
    assert published == ran
    for method in ran:
        assert (tmp_path / "out" / "cells" / "markov" / method / "seed0" / "candidates.jsonl").is_file()


@pytest.mark.slow
def test_sigterm_is_one_line_and_the_run_resumes(tmp_path):
    env = {**os.environ, "MCLBENCH_PROGRESS": "0"}
    env.pop("MLFLOW_TRACKING_URI", None)
    sets = [a for s in TINY_SETS if s != "method.steps=40" for a in ("--set", s)]
    # a checkpoint every 200 steps; 600 steps leave the cell two checkpoints from done when its
    # first checkpoint appears, however fast the machine, so the signal lands inside a resumable stage
    run = [a if a != "lora_mcl,lora_mle" else "lora_mcl" for a in RUN[:-len(SETS)]]
    args = [sys.executable, "-m", "harness.cli", *run, *sets, "--set", "method.steps=600", "--no-plots"]
    proc = subprocess.Popen(args, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    deadline = time.time() + 120
    while time.time() < deadline and not list((tmp_path / "cache").glob("train/*.partial/*")):
        time.sleep(0.05)
    time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err
    last = err.strip().splitlines()[-1]
    assert last.startswith("mclbench: terminated (SIGTERM); finished stages are cached"), err
    again = subprocess.run(args, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr
    assert "resuming from the checkpoint at step" in again.stderr


@pytest.mark.skipif(bool(coco.unavailable(["meteor"])), reason="no Java here")
@pytest.mark.parametrize("brk", list(coco.JAVA_LINE_BREAKS))
def test_a_line_break_inside_a_text_changes_no_coco_score(brk):
    cands = [["a dog runs on the grass", "a cat"], ["a red car", "a blue car"],
             ["two men talk", "people chat"]]
    refs = [["a dog runs on the grass"], ["a red car parked"], ["two men talking"]]
    broken = [["a dog runs on the grass", f"a{brk}cat"], *cands[1:]]
    names = ["cider_d", "rouge_l", "meteor", "bleu_4"]
    assert registry.score(broken, refs, names) == registry.score(cands, refs, names)


@pytest.mark.skipif(bool(coco.unavailable(["meteor"])), reason="no Java here")
def test_meteors_field_separator_inside_a_text_is_removed():
    # the COCO path sends PTB tokens ("|||" -> "| | |"); METEOR's own line protocol is kept safe too
    meteor = coco.Meteor()
    try:
        with_bars = meteor.stats(["a dog ||| runs", "a red car"], [["a dog ||| runs"], ["a red\rcar"]])
        plain = meteor.stats(["a dog runs", "a red car"], [["a dog runs"], ["a red car"]])
    finally:
        meteor.close()
    assert with_bars == plain


def test_latex_escapes_what_it_prints():
    from harness.tables import _latex_escape

    assert _latex_escape("a%b&c_d#e$f{g}~^\\") == (r"a\%b\&c\_d\#e\$f\{g\}\textasciitilde{}"
                                                    r"\textasciicircum{}\textbackslash{}")


def test_cache_clear_reports_only_what_it_freed(tmp_path, monkeypatch, capsys):
    """On a cache it cannot delete from (simulated: root may delete anywhere), clear says so."""
    from harness import cache as cache_module

    entry = tmp_path / "cache" / "score" / ("a" * 64)
    entry.mkdir(parents=True)
    (entry / "scores.json").write_text("{}" * 100)
    monkeypatch.setattr(cache_module, "_remove", lambda path: None)  # every deletion fails
    assert main(["cache", "clear", "--yes", "--cache-dir", str(tmp_path / "cache")]) == 2
    captured = capsys.readouterr()
    assert "freed 0 B" in captured.out
    assert "1 cache entries could not be removed" in captured.err and entry.is_dir()


def test_a_folder_from_before_the_manifest_adopts_only_its_own_tasks(tmp_path):
    """A run folder written before the manifest existed is adopted by its shape: its top files
    and the folders of the tasks in its scores.csv, never another run published inside it."""
    from harness.manifest import _legacy

    (tmp_path / "run.json").write_text(json.dumps({"command": "mclbench run"}))
    (tmp_path / "scores.csv").write_text("task,method,seed,metric,value\nmarkov,lora_mcl,0,unique,1\n")
    for folder in ("markov", "study"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "leaderboard.md").write_text("| table |\n")
    (tmp_path / "study" / "run.json").write_text(json.dumps({"command": "mclbench run"}))
    adopted = _legacy(tmp_path)
    assert "markov/leaderboard.md" in adopted and "scores.csv" in adopted
    assert not any(rel.startswith("study/") for rel in adopted)
