"""What the stages after decoding compute — scores, the best-of-N curve, the significance
tests — as pure functions of decode folders (no model, no cache, no grid, no screen).

Their source (and what it imports: the metrics) is part of the keys of these stages only,
not of the decode stage's (:mod:`harness.fingerprint`): a change to how candidates are
scored or tested re-scores them without decoding again.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from harness.cache import write_json_atomic
from harness.method import Method
from harness.metrics import significance
from harness.metrics.likelihood import nll_flavours
from harness.scoring import intervals
from harness.stages import read_candidates, read_measured
from harness.task import Example, Task

BOOTSTRAP_RESAMPLES = 1000


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
