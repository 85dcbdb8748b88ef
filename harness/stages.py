"""What each cached stage computes, given what it needs (no cache, no grid, no screen).

The runner decides *whether* a stage runs (its key is missing from the cache) and hands
these functions the folder to fill; their source is part of every key of the stages that
run them (:mod:`harness.fingerprint`), so editing one recomputes what it produced.
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
from harness.metrics import significance
from harness.metrics.likelihood import nll_flavours
from harness.scoring import intervals
from harness.task import Example, Task

BOOTSTRAP_RESAMPLES = 1000


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


def score_to(directory: Path, task: Task, examples: list[Example], candidates: list[list[str]],
             measured: dict, seed: int) -> None:
    """``scores.json`` (the task's metrics, their bootstrap half-widths, the method's costs)
    and ``details.json`` (what the task keeps beside them): a pure function of the decode."""
    probes = measured["probes"]
    values, details = task.score(examples, candidates, probes)
    if "reference_nll" in probes:  # every task with references and a model: the same two numbers
        values.update(nll_flavours(probes["reference_nll"], probes["reference_owner"]))
    values.update(bootstrap_half_widths(task, examples, candidates, values, seed))
    values.update(measured["cost"])
    write_json_atomic(directory / "scores.json", values)
    write_json_atomic(directory / "details.json", details)


def best_of_n_to(directory: Path, task: Task, method: Method, examples: list[Example],
                 candidates: list[list[str]], n_max: int) -> None:
    """``best_of_n.json``: the task's oracle metric of the first n candidates, n = 1..n_max."""
    ns = list(range(1, n_max + 1))
    values = [task.oracle_score(examples, [c[:n] for c in candidates]) for n in ns]
    write_json_atomic(directory / "best_of_n.json", {
        "metric": task.best_of_n_metric, "n": ns, "value": values,
        "decode": method.decode_spec(), "candidates_per_input": len(candidates[0])})


def bootstrap_half_widths(task: Task, examples: list[Example], candidates: list[list[str]],
                          values: dict[str, float], seed: int) -> dict[str, float]:
    """``ci95/<metric>``: half the width of the 95 % bootstrap interval over test inputs."""
    wanted = {k: values[k] for k in task.bootstrap_metrics if values.get(k) is not None}
    if not wanted:
        return {}
    refs = [e.references for e in examples]
    return {f"ci95/{k}": (high - low) / 2
            for k, (low, high) in intervals(candidates, refs, wanted, BOOTSTRAP_RESAMPLES, seed,
                                            task.tokenize).items()}


def significance_to(directory: Path, columns: dict[str, bool], cells: dict[str, dict[int, Path]],
                    examples: list[Example], tokenize: str = "13a") -> None:
    """``significance.json``: for each column (``{metric: higher_is_better}``) that decomposes
    over inputs, every method (row) against the column's best, by the paired bootstrap over
    inputs pooled over seeds (:mod:`harness.metrics.significance`). ``cells[row][seed]``: the
    decode folder of that row's cell; only the seeds every row has take part, and a column's
    rows are those its metric applies to (``mbleu_4`` needs N ≥ 2)."""
    seeds = sorted(set.intersection(*(set(by_seed) for by_seed in cells.values())))
    refs = [e.references for e in examples]
    parts: dict[str, dict[str, list]] = {}  # metric -> row -> per-seed decompositions
    for row, by_seed in cells.items():
        for seed in seeds:
            probes = read_measured(by_seed[seed])["probes"]
            found = significance.input_rows(
                read_candidates(by_seed[seed] / "candidates.jsonl", examples), refs, list(columns),
                probes.get("reference_nll"), probes.get("reference_owner"), tokenize)
            for metric, part in found.items():
                parts.setdefault(metric, {}).setdefault(row, []).append(part)
    tests = []
    for metric, by_row in parts.items():
        complete = {row: p for row, p in by_row.items() if len(p) == len(seeds)}
        if len(complete) < 2:
            continue
        aggregate = next(iter(complete.values()))[0][1]  # the same function for every row
        stacked = {row: np.stack([rows for rows, _ in p], axis=1) for row, p in complete.items()}
        for row, result in significance.against_best(stacked, aggregate, columns[metric]).items():
            tests.append({"metric": metric, "method": row, **result})
    write_json_atomic(directory / "significance.json", {"seeds": seeds, "tests": tests})


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
