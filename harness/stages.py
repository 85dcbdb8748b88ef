"""What each cached stage computes, given what it needs (no cache, no grid, no screen).

The runner decides *whether* a stage runs (its key is missing from the cache) and hands
these functions the folder to fill; their source is part of every key of the stages that
run them (:mod:`harness.fingerprint`), so editing one recomputes what it produced.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from harness.cache import write_json_atomic
from harness.method import Method
from harness.scoring import intervals
from harness.task import Example, Task

BOOTSTRAP_RESAMPLES = 1000


def decode_to(directory: Path, method: Method, model, task: Task, examples: list[Example],
              seed: int) -> None:
    """``candidates.jsonl``: the method's N candidates for every test input."""
    torch.manual_seed(seed)
    write_candidates(directory, examples, method.decode(model, task, examples, seed))


def score_to(directory: Path, task: Task, method: Method, model, examples: list[Example],
             candidates: list[list[str]], seed: int) -> None:
    """``scores.json`` (the task's metrics, their bootstrap half-widths, the method's costs)
    and ``details.json`` (what the task keeps beside them)."""
    values, details = task.score(model, examples, candidates)
    values.update(bootstrap_half_widths(task, examples, candidates, values, seed))
    values.update(method.cost(model, task))
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
            for k, (low, high) in intervals(candidates, refs, wanted, BOOTSTRAP_RESAMPLES, seed).items()}


def write_candidates(directory: Path, examples: list[Example], candidates: list[list[str]]) -> None:
    with open(directory / "candidates.jsonl", "w") as f:
        for ex, cands in zip(examples, candidates, strict=True):
            f.write(json.dumps({"id": ex.id, "candidates": cands, "references": ex.references}) + "\n")


def read_candidates(path: Path, examples: list[Example]) -> list[list[str]]:
    by_id = {}
    with open(path) as f:
        for line in f:
            rec = json.loads(line)
            by_id[rec["id"]] = rec["candidates"]
    return [by_id[e.id] for e in examples]
