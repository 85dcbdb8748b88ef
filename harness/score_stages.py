"""What the stages after decoding compute — scores, the best-of-N curve, the significance
tests — as pure functions of decode folders (no model, no cache, no grid, no screen).

Their source (and what it imports: the metrics) is part of the keys of these stages only,
not of the decode stage's (:mod:`harness.fingerprint`): a change to how candidates are
scored or tested re-scores them without decoding again.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from harness.files import write_json_atomic
from harness.method import Method
from harness.metrics import registry, significance
from harness.metrics.bootstrap import bootstrap_ci
from harness.metrics.ngrams import TOKENIZERS
from harness.stages import Measured, read_candidates, read_measured
from harness.task import Example, MetricInfo, Task

BOOTSTRAP_RESAMPLES = 1000


def probe_metrics() -> list[str]:
    """The registered metrics read from the model's probes (oracle / top-1 NLL), reported by
    every task whose probes have them."""
    return [m.name for m in registry.load().values() if m.kind == "probe"]


def reported_metrics(task: Task) -> dict[str, MetricInfo]:
    """The columns a task reports, in order: each reported name of its registered metrics
    (``max@n/`` left to scores.csv), the probe metrics, then its own metrics."""
    out = {}
    for name in [*task.metric_names(), *probe_metrics()]:
        metric = registry.spec(name)
        for shown in ([name] if "/" in name else metric.names()):
            out[shown] = MetricInfo(*registry.info(shown, task.tokenize))
    return out | dict(task.own_metrics)


def check_metrics(task: Task, examples: list[Example]) -> None:
    """ValueError (one line) for a task whose metrics cannot be scored on its test data (an
    unknown tokenisation; a declared metric whose needs the references do not meet, e.g.
    ``loo_bleu`` on inputs with one reference), before any stage runs."""
    if task.tokenize not in TOKENIZERS:
        raise ValueError(f"tokenize must be one of {', '.join(TOKENIZERS)}, got {task.tokenize!r}")
    labels = task.mode_labels(examples, [[e.references[0]] for e in examples]) or (None, None)
    data = registry.ScoreInputs([["", ""]] * len(examples), [e.references for e in examples], task.tokenize,
                                labels[0], probes={"reference_nll": None})  # N and probes: the method's
    for name in task.metric_names():
        reason = data.unmet(registry.spec(name).needs)
        if reason is not None:
            raise ValueError(f"metric {name} {reason}, which its test data does not give; leave it out "
                             "of the task's metrics")


def metric_modules(task: Task) -> list[str]:
    """The modules that define the task's registered metrics: what the score stage's key covers
    of the metric code (an edit to any other metric re-scores nothing of this task)."""
    names = [*task.metric_names(), *probe_metrics()]
    return sorted({registry.spec(n).module for n in names} | {registry.__name__})


def notes(task: Task) -> list[str]:
    """The task's footer lines and each registered metric's signature (once per line)."""
    refs = [e.references for e in task.test_examples()]
    lines = [*task.notes()]
    for name in registry.bases(task.metric_names()):
        signature = registry.spec(name).signature
        if signature is not None and signature(refs, task.tokenize) not in lines:
            lines.append(signature(refs, task.tokenize))
    return lines


def evaluate(task: Task, examples: list[Example], candidates: list[list[str]], probes: dict,
             names: list[str] | None = None, labels: tuple | None = None) -> registry.Evaluation:
    """The task's registered metrics (or ``names``) on these candidates, through the registry;
    ``labels``: the task's :meth:`~harness.task.Task.mode_labels` of them, where already known."""
    if labels is None:
        labels = task.mode_labels(examples, candidates) or (None, None)
    inputs = registry.ScoreInputs(candidates, [e.references for e in examples], task.tokenize, *labels,
                                  probes=probes)
    return registry.evaluate(names if names is not None else [*task.metric_names(), *probe_metrics()], inputs)


def score_to(directory: Path, task: Task, examples: list[Example], candidates: list[list[str]],
             measured: Measured, seed: int) -> None:
    """``scores.json`` (the task's metrics — every reduction, ``max@n/`` included —, their
    bootstrap half-widths, the method's costs) and ``details.json`` (what the task keeps beside
    them, and the metrics that could not run here): a pure function of the decode."""
    probes = measured.probes
    labels = task.mode_labels(examples, candidates) or (None, None)
    done = evaluate(task, examples, candidates, probes, labels=labels)
    own, details = task.score(examples, candidates, probes)
    values = {**done.values, **own}
    unavailable = {**details.get("unavailable", {}), **done.unavailable}
    if unavailable:
        details["unavailable"] = unavailable
    for name in task.bootstrap_metrics:  # ci95/<metric>: half the width of the 95 % interval
        if name in done.parts:
            low, high = bootstrap_ci(*done.parts[name], n_resamples=BOOTSTRAP_RESAMPLES, seed=seed)
            values[f"ci95/{name}"] = (high - low) / 2
    values.update(measured.cost)
    write_json_atomic(directory / "scores.json", values)
    write_json_atomic(directory / "details.json", details)
    write_json_atomic(directory / INPUTS, input_records(examples, labels))


INPUTS = "inputs.json"  # what the explorer (harness.view) shows beside each input's candidates


def input_records(examples: list[Example], labels: tuple) -> list[dict]:
    """Per input: its id, its source where it is text (token ids joined by spaces) and the mode
    labels the mode metrics read (``labels``: ``reference_modes`` and ``candidate_modes``,
    each None where the task has none)."""
    out = []
    for i, ex in enumerate(examples):
        source = ex.source.tolist() if hasattr(ex.source, "tolist") else ex.source
        if isinstance(source, list | tuple):
            source = " ".join(map(str, source))
        record = {"id": ex.id, "source": source if isinstance(source, str) else None}
        for name, rows in zip(("reference_modes", "candidate_modes"), labels, strict=True):
            if rows is not None:
                record[name] = list(rows[i])
        out.append(record)
    return out


def curve_metric(task: Task) -> str | None:
    """What the best-of-N curve shows: ``max@n/<metric>`` (``min@n/`` where lower is better)."""
    m = task.best_of_n_metric
    return None if m is None else f"{registry.spec(m).best}@n/{m}"


def best_of_n_to(directory: Path, task: Task, method: Method, examples: list[Example],
                 candidates: list[list[str]], n_max: int) -> None:
    """``best_of_n.json``: the task's ``max@n/<metric>`` of the first n candidates, n = 1..n_max,
    from one scoring of the candidates."""
    ns = list(range(1, n_max + 1))
    done = evaluate(task, examples, candidates, {}, [task.best_of_n_metric])
    shown = curve_metric(task)
    values = [done.values.get(shown.replace("@n/", f"@{n}/"), float("nan")) for n in ns]
    write_json_atomic(directory / "best_of_n.json", {
        "metric": shown, "n": ns, "value": values,
        "decode": method.decode_spec(), "candidates_per_input": len(candidates[0])})


def significance_to(directory: Path, task: Task, columns: dict[str, bool], cells: dict[str, dict[int, Path]],
                    examples: list[Example]) -> None:
    """``significance.json``: for each column (``{metric: higher_is_better}``) that decomposes
    over inputs, every method (row) against the column's best, by the paired bootstrap over
    inputs pooled over seeds (:mod:`harness.metrics.significance`). ``cells[row][seed]``: the
    decode folder of that row's cell; only the seeds every row has take part, and a column's
    rows are those its metric applies to (``mbleu_4`` needs N ≥ 2)."""
    seeds = sorted(set.intersection(*(set(by_seed) for by_seed in cells.values())))
    names = [m for m in columns if m not in task.own_metrics and registry.spec(m).decomposes(m)]
    parts: dict[str, dict[str, list]] = {}  # metric -> row -> per-seed decompositions
    for row, by_seed in cells.items():
        for seed in seeds:
            probes = read_measured(by_seed[seed]).probes
            found = evaluate(task, examples, read_candidates(by_seed[seed] / "candidates.jsonl", examples),
                             probes, names).parts
            for metric in names:
                if metric in found:
                    parts.setdefault(metric, {}).setdefault(row, []).append(found[metric])
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
