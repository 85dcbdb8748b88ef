"""What the decode stage computes, and how the later stages read what it wrote (no cache,
no grid, no screen); the later stages are in :mod:`harness.score_stages`.

The runner decides *whether* a stage runs (its key is missing from the cache) and hands
these functions the folder to fill; their source is part of every key of the stages that
run them (:mod:`harness.fingerprint`), so editing one recomputes what it produced. This
module imports no metric: editing how candidates are scored or tested re-scores them
without decoding again.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import torch
from safetensors.numpy import load_file, save_file

from harness.cache import write_json_atomic
from harness.method import Method
from harness.task import Example, Task

PROBES = "probes.safetensors"  # what the task measured of the model (Task.probe)
COST = "cost.json"  # what the method spent (Method.cost)
TRAIN_LOG = "train_log.json"  # the trainer's log, kept with what it produced


def decode_to(directory: Path, method: Method, model, task: Task, examples: list[Example],
              seed: int, train_dir: Path | None) -> None:
    """Decode every test input, then :func:`record_decode`."""
    torch.manual_seed(seed)
    record_decode(directory, method, model, task, examples, method.decode(model, task, examples, seed),
                  train_dir)


def record_decode(directory: Path, method: Method, model, task: Task, examples: list[Example],
                  candidates: list[list[str]], train_dir: Path | None) -> None:
    """Everything the score stage needs, so that it never loads a model: the candidates
    (``candidates.jsonl``), the task's probes of the model (arrays, ``probes.safetensors``),
    the method's costs (``cost.json``) and the training log (``train_log.json``)."""
    write_candidates(directory, examples, candidates)
    probes = task.probe(model, examples)
    if probes:
        save_file({k: np.ascontiguousarray(v) for k, v in probes.items()}, str(directory / PROBES))
    write_json_atomic(directory / COST, method.cost(model, task))
    if train_dir is not None and (train_dir / TRAIN_LOG).is_file():
        shutil.copyfile(train_dir / TRAIN_LOG, directory / TRAIN_LOG)


def read_measured(directory: Path) -> dict:
    """``{"probes": {name: array}, "cost": {metric: value}}`` of a decode folder."""
    probes = load_file(str(directory / PROBES)) if (directory / PROBES).is_file() else {}
    return {"probes": probes, "cost": json.loads((directory / COST).read_text())}


def write_candidates(directory: Path, examples: list[Example], candidates: list[list[str]]) -> None:
    """One record per input: id, candidates, references and, for an input read from a file
    (a photo, a clip), that file's path (relative to the working folder when under it), so
    the report and README can show the input."""
    with open(directory / "candidates.jsonl", "w") as f:
        for ex, cands in zip(examples, candidates, strict=True):
            record = {"id": ex.id, "candidates": cands, "references": ex.references}
            if isinstance(ex.source, Path):
                record["file"] = _shown_path(ex.source)
            f.write(json.dumps(record) + "\n")


def _shown_path(path: Path) -> str:
    try:
        return path.resolve().relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return str(path)


def read_candidates(path: Path, examples: list[Example]) -> list[list[str]]:
    by_id = {}
    with open(path) as f:
        for line in f:
            rec = json.loads(line)
            by_id[rec["id"]] = rec["candidates"]
    return [by_id[e.id] for e in examples]
