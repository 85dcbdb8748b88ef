"""Every user mistake ends in one line, ``mclbench: error: …``, exit status 2, and leaves a
published results folder byte for byte as it was.

``CASES`` is the table in docs/cli.md's "When something goes wrong": (name, files to write,
arguments, expected message part). ``python tests/test_bad_input.py`` prints it with the
messages a run gives today.
"""

from __future__ import annotations

import errno
import hashlib
from pathlib import Path

import pytest
from conftest import TINY_SETS, run_in

from harness.cli import main

SETS = [a for s in TINY_SETS for a in ("--set", s)]
RUN = ["run", "--tasks", "markov", "--methods", "lora_mcl,lora_mle", "--seeds", "0",
       "--output", "out", "--cache-dir", "cache", "--no-tracking", "--no-plots", *SETS]
UNSEEDED = [a for a in RUN if a not in ("--seeds", "0")]  # seeds from the run file
NOT_UTF8 = "tasks: [markov]\n# caf\xe9\n".encode("latin-1")
TASK_FILE = "name: {name}\ninput: text\ndata: {{test: test.jsonl}}\n"
TASK_RUN = ["run", "--task-file", "t.yaml", "--methods", "lora_mle", "--output", "o_task",
            "--cache-dir", "cache", "--no-tracking", "--no-plots", "--set", "method.steps=1"]
ONE_REF = ('{"id": "a", "source": "a dog", "references": ["ein Hund"]}\n'
           '{"id": "b", "source": "a cat", "references": ["eine Katze"]}\n')

CASES = [
    # (name, {file: content}, argv, part of the one-line message)
    ("empty --seeds", {}, [*RUN, "--seeds", ","], "no seed selected"),
    ("seeds: [] in the run file", {"run.yaml": "seeds: []\n"}, [*UNSEEDED, "--config", "run.yaml"],
     "no seed selected"),
    ("empty method list", {"run.yaml": "methods: []\n"},
     ["run", "--config", "run.yaml", "--tasks", "markov", "--output", "out"], "no method selected"),
    ("subset re-run into a published folder", {}, [*RUN, "--methods", "lora_mle"],
     "holds results this run does not include (markov/lora_mcl/seed0); rerun with them, choose "
     "another --output, or pass --overwrite"),
    ("duplicate seed", {}, [*RUN, "--seeds", "0,0"], "--seeds: '0' is given twice"),
    ("duplicate method", {}, [*RUN, "--methods", "lora_mle,lora_mle"],
     "--methods: 'lora_mle' is given twice"),
    ("duplicate key in the run file", {"run.yaml": "seeds: [0]\nseeds: [1]\n"},
     [*RUN, "--config", "run.yaml"], "key 'seeds' is given twice"),
    ("--output is a file", {"afile": "x"}, [*RUN, "--output", "afile"], "is a file; choose a folder"),
    ("--output under a file", {"afile": "x"}, [*RUN, "--output", "afile/out"], "lies under a file"),
    ("--cache-dir is a file", {"afile": "x"}, [*RUN, "--output", "o2", "--cache-dir", "afile"],
     "--cache-dir"),
    ("--output not writable", {}, [*RUN, "--output", "/proc/mclbench-out"],
     "--output '/proc/mclbench-out': cannot create folders in /proc"),
    ("non-UTF-8 run file", {"run.yaml": NOT_UTF8}, [*RUN, "--config", "run.yaml"],
     "run.yaml: not UTF-8 text (byte 21"),
    ("lr = 0", {}, [*RUN, "--set", "method.lr=0"], "lr must be > 0, got 0.0"),
    ("lr = NaN", {}, [*RUN, "--set", "method.lr=.nan"], "expected a finite number"),
    ("steps = 0", {}, [*RUN, "--set", "method.steps=0"], "steps must be > 0"),
    ("batch_size = 0", {}, [*RUN, "--set", "method.batch_size=0"], "batch_size must be > 0"),
    ("negative size", {}, [*RUN, "--set", "task.num_test=-1"], "num_test: must be >= 0, got -1"),
    ("backbone folder missing", {},
     ["run", "--tasks", "translation", "--methods", "beam", "--output", "out",
      "--set", "task.backbone=./no/such/model"], "backbone './no/such/model': no such folder"),
    ("target_modules match nothing", {}, [*RUN, "--set", "method.target_modules=[nope]"],
     "target_modules ['nope'] match no linear layer of GPTNeoForCausalLM"),
    ("--set key typo", {}, [*RUN, "--set", "method.rnak=2"], "(did you mean 'rank'?); valid:"),
    ("per_task key typo", {"run.yaml": "per_task: {markov: {method: {stpes: 3}}}\n"},
     [*RUN, "--config", "run.yaml"],
     "per_task.markov.method: unknown parameter 'stpes' (did you mean 'steps'?)"),
    ("per_task method key typo", {"run.yaml": "per_task: {markov: {lora_mle: {rnak: 3}}}\n"},
     [*RUN, "--config", "run.yaml"], "per_task.markov.lora_mle: unknown parameter 'rnak'"),
    ("score: id not a string or number",
     {"p.jsonl": '{"id": [1], "candidates": ["a"], "references": ["a"]}\n'},
     ["score", "--predictions", "p.jsonl"], '"id" must be a string or a number'),
    ("score: huge line", {"p.jsonl": '{"id": 1, "candidates": ["' + "a" * (65 << 20) + '"]}\n'},
     ["score", "--predictions", "p.jsonl"], "line longer than 64 MiB"),
    ("score: non-UTF-8 predictions", {"p.jsonl": b'{"id": 1, "candidates": ["caf\xe9"]}\n'},
     ["score", "--predictions", "p.jsonl"], "p.jsonl:1: not UTF-8 (byte 29 of the file)"),
    ("score --bootstrap 0", {}, ["score", "--predictions", "p.jsonl", "--bootstrap", "0"],
     "argument --bootstrap: must be >= 1, got 0"),
    ("view a folder that is no run", {"notes/a.txt": "mine"}, ["view", "notes"],
     "notes/scores.csv not found: pass the --output directory"),
    ("table --metrics typo", {}, ["table", "out", "--metrics", "markov_tvv"], "has no metric 'markov_tvv'"),
    ("cache clear without --yes", {}, ["cache", "clear", "--cache-dir", "cache"], "add --yes to confirm"),
    # names that become paths and LaTeX cells
    ("variant name with a path", {"run.yaml": "variants: {'x/../lora_mcl': {method: lora_mle}}\n"},
     [*RUN, "--config", "run.yaml"], "variant name 'x/../lora_mcl': use letters, digits and _ only"),
    ("variant name with LaTeX", {"run.yaml": "variants: {'a%b&c': {method: lora_mle}}\n"},
     [*RUN, "--config", "run.yaml"], "variant name 'a%b&c': use letters, digits and _ only"),
    ("output: '' in the run file", {"run.yaml": "output: ''\n"},
     ["run", "--config", "run.yaml", "--tasks", "markov", "--methods", "lora_mle"], "output is empty"),
    ("--output a folder mclbench did not write", {"mine/notes.txt": "my notes"}, [*RUN, "--output", "mine"],
     "mine is not empty and mclbench did not write it (notes.txt, ...)"),
    # task files: checked before any stage
    ("task file: empty test data", {"t.yaml": TASK_FILE.format(name="t_empty"), "test.jsonl": ""},
     [*TASK_RUN], "task 't_empty': "),
    ("task file: the name of a built-in task", {"t.yaml": TASK_FILE.format(name="translation"),
                                                "test.jsonl": ONE_REF},
     [*TASK_RUN], "'translation' is the name of a task already registered"),
    ("task file: a metric its data cannot give",
     {"t.yaml": TASK_FILE.format(name="t_loo") + "metrics: [bleu, loo_bleu]\n", "test.jsonl": ONE_REF},
     [*TASK_RUN], "metric loo_bleu needs the same number (>= 2) of references for every input"),
    ("task file: corrupt parquet",
     {"t.yaml": TASK_FILE.format(name="t_pq").replace("test.jsonl", "test.parquet"),
      "test.parquet": b"PAR1 this is not parquet"},
     [*TASK_RUN], "test.parquet: cannot be read as parquet (Parquet magic bytes not found"),
    # mclbench score: input it used to misread or drop without a word
    ("score: a string of reference_modes",
     {"p.jsonl": '{"id": 1, "candidates": ["a", "b"], "references": ["a"], "reference_modes": "du"}\n'},
     ["score", "--predictions", "p.jsonl"], '"reference_modes" must be a list of labels'),
    ("score: candidate_modes of the wrong length",
     {"p.jsonl": '{"id": 1, "candidates": ["a", "b"], "references": ["a"], "reference_modes": ["du"], '
                 '"candidate_modes": ["du"]}\n'},
     ["score", "--predictions", "p.jsonl"], '"candidate_modes" has 1 labels for 2 candidates'),
    ("score: a metric needing N >= 2 with N = 1",
     {"p.jsonl": '{"id": 1, "candidates": ["a"], "references": ["a"]}\n'},
     ["score", "--predictions", "p.jsonl", "--metrics", "mbleu_4"], "mbleu_4 needs at least 2 candidates"),
    ("score: inline references and --references",
     {"p.jsonl": '{"id": 1, "candidates": ["a"], "references": ["a"]}\n',
      "r.jsonl": '{"id": 1, "references": ["b"]}\n'},
     ["score", "--predictions", "p.jsonl", "--references", "r.jsonl"], 'has "references" and --references'),
    ("score: --metrics ''", {"p.jsonl": '{"id": 1, "candidates": ["a"], "references": ["a"]}\n'},
     ["score", "--predictions", "p.jsonl", "--metrics", ""], "--metrics names no metric"),
    ("score: a JSON array", {"p.json": '[{"id": 1, "candidates": ["a"], "references": ["a"]}]\n'},
     ["score", "--predictions", "p.json"], "a JSON array; mclbench reads JSON Lines"),
    ("score: a folder", {"pdir/x.jsonl": "{}\n"}, ["score", "--predictions", "pdir"],
     "pdir is a folder; pass a JSONL file"),
]


def _digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    """A finished tiny run: ``out/`` (the published folder) and ``cache/``."""
    root = tmp_path_factory.mktemp("published")
    run_in(root, RUN)
    return root


def _write(where: Path, files: dict) -> None:
    for name, content in files.items():
        path = where / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content) if isinstance(content, bytes) else path.write_text(content)


@pytest.mark.parametrize("name,files,argv,message", CASES, ids=[c[0] for c in CASES])
def test_user_mistake_is_one_line_exit_2_and_touches_nothing(published, tmp_path, monkeypatch, capsys,
                                                           name, files, argv, message):
    import shutil

    shutil.copytree(published, tmp_path, dirs_exist_ok=True)
    monkeypatch.chdir(tmp_path)
    _write(tmp_path, files)
    before = _digest(tmp_path / "out")
    capsys.readouterr()
    code = _main(argv)
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, err
    assert len(lines) == 1 and lines[0].startswith("mclbench: error: "), err
    assert message in lines[0], lines[0]
    assert _digest(tmp_path / "out") == before


def _main(argv: list[str]) -> int:
    """``main``'s status, also where argparse exits."""
    try:
        return main(argv)
    except SystemExit as exc:
        return exc.code


@pytest.mark.slow
def test_disk_full_names_the_path_and_keeps_the_published_folder(published, tmp_path, monkeypatch, capsys):
    """ENOSPC while an artifact is written: one line naming the cache folder; nothing lost."""
    import shutil

    from harness import cache

    shutil.copytree(published, tmp_path, dirs_exist_ok=True)
    monkeypatch.chdir(tmp_path)
    before = _digest(tmp_path / "out")

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(cache, "write_json_atomic", full)
    code = main([*RUN, "--cache-dir", "fresh-cache"])
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("mclbench: error")]
    assert code == 2 and len(lines) == 1
    assert "No space left on device" in lines[0] and "fresh-cache" in lines[0], lines[0]
    assert _digest(tmp_path / "out") == before


def test_target_modules_are_checked_before_the_backbone_stage(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main([*RUN, "--set", "method.target_modules=[nope]"]) == 2
    assert not (tmp_path / "cache").exists() and not (tmp_path / "out").exists()


@pytest.mark.slow
def test_overwrite_replaces_the_table_and_a_superset_keeps_it(published, tmp_path, monkeypatch):
    import shutil

    import pandas as pd

    shutil.copytree(published, tmp_path, dirs_exist_ok=True)
    monkeypatch.chdir(tmp_path)
    assert main([*RUN, "--methods", "lora_mle", "--overwrite"]) == 0
    assert set(pd.read_csv("out/scores.csv")["method"]) == {"lora_mle"}
    assert main(RUN) == 0  # more cells than published: nothing dropped, no flag needed
    assert set(pd.read_csv("out/scores.csv")["method"]) == {"lora_mcl", "lora_mle"}


if __name__ == "__main__":  # the README table: each case and the message a run gives now
    import contextlib
    import io
    import os
    import tempfile

    print("| mistake | exit | message |\n|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        os.chdir(tmp)
        with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
            main(RUN)
        for name, files, argv, _ in CASES:
            _write(Path(tmp), files)
            err = io.StringIO()
            with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
                code = _main(argv)
            message = err.getvalue().strip().replace("|", "\\|")
            print(f"| {name} | {code} | `` {message} `` |")
            for f in files:
                Path(f).unlink()
                if Path(f).parent != Path("."):
                    Path(f).parent.rmdir()
