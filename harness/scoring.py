"""Score generations made anywhere: JSONL predictions (+ references) in, metric values out.

Predictions: one JSON object per line, ``{"id": ..., "candidates": [str, ...]}``, optionally
with ``"references"``; or references in a second file, ``{"id": ..., "references": [...]}``,
joined by id. Metric names are stable: ``top1/``, ``mean/``, ``oracle/`` + ``bleu``,
``chrf`` (sacreBLEU), and the diversity metrics of :mod:`harness.metrics.diversity`.
"""

from __future__ import annotations

import json
from pathlib import Path

from harness.errors import MCLBenchError
from harness.metrics import diversity as dv
from harness.metrics import text as tx
from harness.task import MetricInfo

QUALITY = {"bleu": "sacreBLEU corpus BLEU", "chrf": "sacreBLEU chrF"}
DIVERSITY = {
    "mbleu_4": MetricInfo(False, "each candidate's BLEU-4 vs. the other N-1 (lower = more diverse)"),
    "pairwise_bleu": MetricInfo(False, "corpus BLEU over ordered candidate pairs (lower = more diverse)"),
    "loo_bleu": MetricInfo(True, "leave-one-out multi-reference BLEU"),
    "refs_covered": MetricInfo(True, "distinct references best-matched by some candidate"),
    "div_1": MetricInfo(True, "distinct unigrams / tokens over the N candidates"),
    "div_2": MetricInfo(True, "distinct bigrams / tokens over the N candidates"),
    "vocab": MetricInfo(True, "distinct tokens over all candidates"),
    "unique": MetricInfo(True, "distinct candidates / N"),
}
METRICS = [*QUALITY, *DIVERSITY]


class ScoreInputError(MCLBenchError, ValueError):
    pass


def metric_info(name: str) -> MetricInfo:
    base = name.split("/", 1)[-1]
    if base in QUALITY:
        return MetricInfo(True, f"{QUALITY[base]}, {name.split('/')[0]} flavour")
    return DIVERSITY[base]


def read_jsonl(path: str | Path) -> list[dict]:
    path = Path(path)
    if not path.is_file():
        raise ScoreInputError(f"{path}: no such file")
    rows = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ScoreInputError(f"{path}:{number}: not valid JSON ({exc.msg})") from None
        if not isinstance(row, dict) or "id" not in row:
            raise ScoreInputError(f'{path}:{number}: expected an object with an "id"')
        rows.append(row)
    return rows


def load(predictions: str | Path, references: str | Path | None = None):
    """``(ids, candidates, references)`` in the order of the references (or predictions)."""
    preds = read_jsonl(predictions)
    by_id = {}
    for row in preds:
        if row["id"] in by_id:
            raise ScoreInputError(f"{predictions}: id {row['id']!r} appears twice")
        if "candidates" not in row:
            raise ScoreInputError(f'{predictions}: id {row["id"]!r} has no "candidates"')
        by_id[row["id"]] = row
    if references is None:
        missing = [r["id"] for r in preds if "references" not in r]
        if missing:
            raise ScoreInputError(f'{predictions}: id {missing[0]!r} has no "references"; '
                                  "add them or pass --references")
        refs_rows = preds
    else:
        refs_rows = read_jsonl(references)
        absent = [r["id"] for r in refs_rows if r["id"] not in by_id]
        if absent:
            raise ScoreInputError(f"{references}: id {absent[0]!r} has no prediction in {predictions}")
        extra = set(by_id) - {r["id"] for r in refs_rows}
        if extra:
            raise ScoreInputError(f"{predictions}: id {sorted(extra)[0]!r} has no references in {references}")
    ids = [r["id"] for r in refs_rows]
    cands = [by_id[i]["candidates"] for i in ids]
    refs = [r.get("references") for r in refs_rows]
    return ids, cands, refs


def score(ids, candidates, references, metrics: list[str] | None = None) -> dict[str, float]:
    unknown = [m for m in metrics or [] if m not in METRICS]
    if unknown:
        raise ScoreInputError(f"unknown metric {unknown[0]!r}; available: {', '.join(METRICS)}")
    wanted = metrics or METRICS
    try:
        tx.check_inputs(candidates, [r if r is not None else [] for r in references], ids)
    except tx.MetricInputError as exc:
        raise ScoreInputError(str(exc)) from None
    out = tx.quality_flavours(candidates, references, [m for m in wanted if m in QUALITY])
    div = dv.diversity(candidates, references) if any(m in DIVERSITY for m in wanted) else {}
    out.update({k: v for k, v in div.items() if k in wanted})
    return out


def intervals(candidates, references, values: dict[str, float], n_resamples: int,
              seed: int = 0) -> dict[str, tuple[float, float]]:
    """95 % bootstrap intervals over inputs for every metric in ``values`` that decomposes."""
    from harness.metrics.bootstrap import bootstrap_ci, decompositions

    parts = decompositions(candidates, references, [m for m in QUALITY if f"top1/{m}" in values])
    return {k: bootstrap_ci(*parts[k], n_resamples=n_resamples, seed=seed)
            for k in values if k in parts}


def render(values: dict[str, float], fmt: str, signatures: dict[str, str],
           ci: dict[str, tuple[float, float]] | None = None) -> str:
    ci = ci or {}
    if fmt == "json":
        out = dict(values)
        for k, (low, high) in ci.items():
            out[f"{k}/ci95_low"], out[f"{k}/ci95_high"] = low, high
        return json.dumps(out, indent=2) + "\n"
    if fmt == "csv":
        rows = [f"{k},{v:.6f},{ci[k][0] if k in ci else ''},{ci[k][1] if k in ci else ''}\n"
                for k, v in values.items()]
        return "metric,value,ci95_low,ci95_high\n" + "".join(rows)
    lines = ["| metric | value | 95 % CI | |", "|---|---:|---:|---|"]
    for k, v in values.items():
        info = metric_info(k)
        interval = f"{ci[k][0]:.4f}–{ci[k][1]:.4f}" if k in ci else ("n/a" if ci else "")
        lines.append(f"| {k} {'↑' if info.higher_is_better else '↓'} | {v:.4f} | {interval} | "
                     f"{info.description} |")
    lines += ["", *(f"<sub>{k}: {s}</sub>" for k, s in signatures.items())]
    if ci:
        lines.append("<sub>95 % CI: percentile bootstrap over inputs; n/a: the metric does not "
                     "decompose over inputs (vocab, pairwise_bleu, loo_bleu)</sub>")
    return "\n".join(lines) + "\n"
