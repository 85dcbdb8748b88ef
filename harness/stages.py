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
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors.numpy import load_file, save_file

from harness.devices import to_device
from harness.files import write_json_atomic
from harness.method import Method
from harness.task import Example, Task

PROBES = "probes.safetensors"  # what the task measured of the model (Task.probe)
COST = "cost.json"  # what the method spent (Method.cost)
TRAIN_LOG = "train_log.json"  # the trainer's log, kept with what it produced


def place(model, device: str, accelerator=None):
    """``model`` where the stage runs: on ``device`` in process, on the process's own device
    under ``accelerate launch``."""
    return model.to(accelerator.device) if accelerator is not None else to_device(model, device)


def train_to(directory: Path, method: Method, task: Task, backbone_dir: Path, seed: int,
             work_dir: Path, device: str, accelerator=None) -> None:
    """The train stage: the method trains on the cached backbone and writes its state into
    ``directory`` (``work_dir`` keeps its checkpoints across interruptions). With an
    ``accelerator`` every process of the launch calls this and the main one writes."""
    backbone = place(task.load_backbone(backbone_dir), device, accelerator)
    method.train(backbone, task, seed, directory, work_dir, accelerator=accelerator)


def decode_to(directory: Path, method: Method, task: Task, backbone_dir: Path, train_dir: Path | None,
              seed: int, device: str, accelerator=None) -> None:
    """The decode stage: every test input decoded, then :func:`record_decode`. The model is
    loaded from the artifacts even right after training, so that a fresh run and a cached run
    decode exactly the same weights. With an ``accelerator`` each process decodes every N-th
    input and the main one gathers them in input order and writes."""
    model = place(method.load(place(task.load_backbone(backbone_dir), device, accelerator), train_dir),
                  device, accelerator)
    examples = task.test_examples()
    mine = examples if accelerator is None else examples[accelerator.process_index::accelerator.num_processes]
    torch.manual_seed(seed)
    candidates = method.decode(model, task, mine, seed) if mine else []
    if accelerator is not None:
        from accelerate.utils import gather_object

        by_id = dict(gather_object([[e.id, c] for e, c in zip(mine, candidates, strict=True)]))
        if not accelerator.is_main_process:
            return
        candidates = [by_id[e.id] for e in examples]
    record_decode(directory, method, model, task, examples, candidates, train_dir)


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


@dataclass(frozen=True)
class Measured:
    """What the decode stage measured of the model besides the candidates."""

    probes: dict[str, np.ndarray]  # the task's probes (Task.probe), by name
    cost: dict[str, float]  # the method's costs (Method.cost), by metric


def read_measured(directory: Path) -> Measured:
    """The :class:`Measured` of a decode folder."""
    return Measured(read_probes(directory), json.loads((directory / COST).read_text()))


def read_probes(directory: Path) -> dict:
    """The probes kept in a decode folder or a published cell (none where the model had none,
    or the cell was published before cells kept them)."""
    return load_file(str(directory / PROBES)) if (directory / PROBES).is_file() else {}


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
