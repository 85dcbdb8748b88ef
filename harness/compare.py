"""``mclbench compare DIR --task T --metric M A B [--also DIR2 ...]``: the paired bootstrap test
of two rows of a published run, from the candidates it keeps
(``DIR/cells/<task>/<method>/seed<k>/``), its seeds pooled with those of other folders of the
same configuration (a study run one seed per command).

The same test as the leaderboard's dagger (:mod:`harness.metrics.significance`): the seeds
both rows have, the same resample of input positions in every seed, the statistic the mean
over seeds; the mode columns read the labels each cell keeps in ``inputs.json``, the NLL
columns the model's probes it keeps in ``probes.safetensors`` (a folder published before they
were kept has its NLL columns tested only in ``significance.csv``, against the column's best).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from harness import manifest, tables
from harness.errors import MCLBenchError
from harness.metrics import registry, significance
from harness.metrics.bootstrap import paired_bootstrap
from harness.score_stages import INPUTS
from harness.stages import PROBES, read_probes


class CompareError(MCLBenchError, ValueError):
    pass


def _read_cell(path: Path, tokenize: str) -> tuple[list[str], registry.ScoreInputs]:
    """A cell's input ids and what its metrics read: the candidates and references of
    ``candidates.jsonl``, the mode labels of ``inputs.json`` beside it (where the task has them)."""
    ids, candidates, references = [], [], []
    with open(path) as f:
        for line in f:
            row = json.loads(line)
            ids.append(row["id"])
            candidates.append(row["candidates"])
            references.append(row["references"])
    labels = {}
    probes = read_probes(path.parent)
    records = path.parent / INPUTS
    if records.is_file():
        rows = json.loads(records.read_text())
        if [r["id"] for r in rows] != ids:
            raise CompareError(f"{records} lists other inputs than {path.name} beside it")
        labels = {name: [r[name] for r in rows] for name in ("reference_modes", "candidate_modes")
                  if all(name in r for r in rows)}
    return ids, registry.ScoreInputs(candidates, references, tokenize, **labels, probes=probes)


def _seeds(folder: Path) -> dict[int, Path]:
    return {int(p.parent.name[len("seed"):]): p for p in folder.glob("seed*/candidates.jsonl")}


def compare(run_dir: str | Path, task: str, metric: str, a: str, b: str,
            n_resamples: int = significance.RESAMPLES, seed: int = 0,
            also: Sequence[str | Path] = ()) -> dict:
    """``{"task", "metric", "a", "b", "seeds", "inputs", "inputs_with_value" (where both rows have
    a value in every seed), "value_a", "value_b", "delta" (a − b), "p_value" (one-sided, of the
    observed sign), "resamples", "higher_is_better"}``. ``also``: more folders of the same
    configuration with other seeds (one seed per run, say), whose cells join ``run_dir``'s."""
    run_dir = Path(run_dir)
    meta = _meta(run_dir)
    rows_seeds = _pooled_cells(run_dir, [Path(d) for d in also], task, (a, b), meta)
    seeds = sorted(set(rows_seeds[a]) & set(rows_seeds[b]))
    if not seeds:
        raise CompareError(f"{task}: {a} and {b} share no seed "
                           f"({sorted(rows_seeds[a])} vs {sorted(rows_seeds[b])})")
    higher = _direction(meta, task, metric)
    cells_compared = {m: [rows_seeds[m][s] for s in seeds] for m in (a, b)}
    _check_testable(metric, run_dir, [p for paths in cells_compared.values() for p in paths])
    stacked, aggregate, inputs = _stack_rows(task, metric, cells_compared, tables.task_tokenize(meta, task))
    statistic = significance.over_seeds(aggregate)
    test = paired_bootstrap(stacked[a], stacked[b], statistic, n_resamples, seed)
    # a mode column has no value on inputs without a labelled reference: say on how many it does
    defined = np.logical_and(*(np.isfinite(stacked[m].reshape(inputs, -1)).all(axis=1) for m in (a, b)))
    return {"task": task, "metric": metric, "a": a, "b": b, "seeds": seeds, "inputs": inputs,
            "inputs_with_value": int(defined.sum()),
            "value_a": statistic(stacked[a]), "value_b": statistic(stacked[b]), "delta": test["delta"],
            "p_value": test["p_value"], "resamples": n_resamples, "higher_is_better": higher}


# what run.json must agree on for two folders' seeds to be one study
_SAME_RUN = ("tasks", "methods", "variants", "metrics", "notes")


def _cells(run_dir: Path, task: str, methods: Sequence[str], meta: dict) -> dict[str, dict[int, Path]]:
    """Each method's ``candidates.jsonl`` per seed in ``run_dir`` (the seeds its run.json names),
    checked against the folder's manifest."""
    cells = run_dir / "cells" / task
    if not cells.is_dir():
        have = sorted(p.name for p in (run_dir / "cells").glob("*")) if (run_dir / "cells").is_dir() else []
        raise CompareError(f"{cells}: no such folder; tasks in {run_dir}: {', '.join(have) or 'none'} "
                           "(pass the --output folder of a finished `mclbench run`)")
    rows_seeds = {}
    for method in methods:
        found = _seeds(cells / method)
        if not found:
            have = ", ".join(sorted(p.name for p in cells.iterdir() if p.is_dir()))
            raise CompareError(f"{task}: no cells of method {method!r} in {run_dir}; it has {have}")
        published = set(meta.get("seeds", found))
        rows_seeds[method] = {s: path for s, path in found.items() if s in published}
    manifest.verify(run_dir)  # the candidates as published, not edited since
    return rows_seeds


def _pooled_cells(run_dir: Path, also: list[Path], task: str, methods: Sequence[str],
                  meta: dict) -> dict[str, dict[int, Path]]:
    """``_cells`` of ``run_dir`` joined by those of each folder in ``also``, which must have been
    run with the same configuration and hold other seeds."""
    rows_seeds = _cells(run_dir, task, methods, meta)
    for other in also:
        other_meta = _meta(other)
        other_cells = _cells(other, task, methods, other_meta)  # first: a folder that is no run says so
        differs = [k for k in _SAME_RUN if other_meta.get(k) != meta.get(k)]
        if differs:
            raise CompareError(f"{other} was run with another configuration than {run_dir} (it differs in "
                               f"{', '.join(differs)} of run.json); only seeds of one configuration pool")
        for method, found in other_cells.items():
            shared = sorted(set(found) & set(rows_seeds[method]))
            if shared:
                raise CompareError(f"{other} holds {method} seed(s) {shared} that another folder holds too; "
                                   "--also takes folders of other seeds")
            rows_seeds[method] = {**rows_seeds[method], **found}
    return rows_seeds


def _stack_rows(task: str, metric: str, cells: dict[str, list[Path]], tokenize: str):
    """Each method's per-input rows of ``metric``, seeds stacked on axis 1 (``cells``: method →
    its ``candidates.jsonl`` per seed), the metric's aggregate, and the number of inputs."""
    stacked, aggregate, inputs = {}, None, None
    for method, paths in cells.items():
        per_seed = []
        for path in paths:
            ids, score_inputs = _read_cell(path, tokenize)
            if inputs is not None and ids != inputs:
                raise CompareError(f"{task}: {path} scored other inputs than the first cell compared")
            inputs = ids
            done = registry.evaluate([metric], score_inputs)
            if metric not in done.parts:
                name = registry.split(metric)[1]
                why = done.unavailable.get(name) or done.skipped.get(name) or "no value"
                raise CompareError(f"{metric} cannot be computed on these candidates: {why}")
            rows, aggregate = done.parts[metric]
            per_seed.append(rows)
        stacked[method] = np.stack(per_seed, axis=1)
    return stacked, aggregate, len(inputs)


def _check_testable(metric: str, run_dir: Path, cells: list[Path]) -> None:
    """CompareError unless ``metric`` decomposes over inputs and the compared cells (their
    ``candidates.jsonl``) keep what it reads."""
    try:
        metric_spec = registry.spec(metric)
    except registry.MetricNameError as exc:
        raise CompareError(str(exc)) from None
    if metric_spec.kind == "probe":
        lacking = [p.parent for p in cells if not (p.parent / PROBES).is_file()]
        if lacking:
            raise CompareError(f"{metric} is measured with the model, and {lacking[0]} keeps no probes "
                               f"(published before cells kept them); its test against the column's best "
                               f"is in {run_dir / 'significance.csv'}")
    if not metric_spec.decomposes(metric):
        decomposing = [m.name for m in registry.load().values() if m.kind == "set" and m.per_input]
        raise CompareError(f"{metric} does not decompose over inputs, so it has no paired test; "
                           "decomposable: every reduction of a quality metric (METEOR: max/ only), "
                           f"{', '.join(decomposing)}")


def _meta(run_dir: Path) -> dict:
    try:
        return json.loads((run_dir / "run.json").read_text())
    except (OSError, ValueError):
        return {}


def _direction(meta: dict, task: str, metric: str) -> bool | None:
    info = {m["name"]: m for m in meta.get("metrics", {}).get(task, [])}
    if not info:
        return None
    if metric not in info:
        raise CompareError(f"task {task!r} has no metric {metric!r}; it has {', '.join(info)}")
    return info[metric]["higher_is_better"]


def render(result: dict) -> str:
    """The test as a few lines of text."""
    a, b, delta, p = result["a"], result["b"], result["delta"], result["p_value"]
    higher = result["higher_is_better"]
    width = max(len(a), len(b))
    counted = result["inputs_with_value"]
    with_value = "" if counted == result["inputs"] else f" ({counted} with a value)"
    lines = [f"{result['task']}, {result['metric']}{'' if higher is None else (' ↑' if higher else ' ↓')}: "
             f"mean over seeds {', '.join(map(str, result['seeds']))}, {result['inputs']} inputs{with_value}",
             f"  {a:<{width}}  {result['value_a']:.4f}", f"  {b:<{width}}  {result['value_b']:.4f}",
             f"  {a} − {b} = {delta:+.4f}; paired bootstrap ({result['resamples']} resamples of the inputs, "
             f"the same in every seed): one-sided p = {p:.4f}"]
    significant = p < significance.ALPHA
    level = f"p < {significance.ALPHA}" if significant else f"p ≥ {significance.ALPHA}"
    if delta == 0:
        verdict = "no difference"
    elif higher is None:  # a column without a direction (a bound): only whether they differ
        verdict = f"the difference is {'' if significant else 'not '}significant ({level})"
    else:
        better = a if (delta > 0) == higher else b
        verdict = f"{better} is {'' if significant else 'not '}significantly better ({level})"
    return "\n".join([*lines, f"  {verdict}"]) + "\n"
