"""Score generations made anywhere: JSONL predictions (+ references) in, metric values out.

Predictions: one JSON object per line, ``{"id": ..., "candidates": [str, ...]}``, optionally
with ``"references"``; or references in a second file, ``{"id": ..., "references": [...]}``,
joined by id. A references row may carry ``"reference_modes"`` (a mode label or null per
reference) and a predictions row ``"candidate_modes"`` (one per candidate): then
``modes_covered`` and ``mode_recall`` (:mod:`harness.metrics.modes`) are scored too.

Metric names are stable: ``top1/``, ``mean/``, ``oracle/`` + ``bleu``, ``chrf`` (sacreBLEU)
or a COCO caption metric (:mod:`harness.metrics.coco`: ``bleu_1`` … ``bleu_4``, ``meteor``,
``rouge_l``, ``cider_d``, ``spice``, ``spider``), and the diversity metrics of
:mod:`harness.metrics.diversity`. A metric that cannot run on this machine (SPICE offline,
Java missing) is reported as "n/a" with its reason, never as a number.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from harness.errors import MCLBenchError
from harness.metrics import coco
from harness.metrics import diversity as dv
from harness.metrics import text as tx
from harness.metrics.bootstrap import bootstrap_ci, decompositions
from harness.metrics.catalogue import (
    DIVERSITY,
    FLAVOURS,
    METRICS,
    MODE_COVERAGE,
    PTB_DIVERSITY,
    SEMANTIC_FLAVOURS,
    MetricValues,
    metric_info,
)
from harness.metrics.modes import mode_coverage
from harness.metrics.ngrams import TOKENIZERS
from harness.semantic import sbert_metrics

SACREBLEU = ("bleu", "chrf")


MAX_LINE_BYTES = 64 << 20  # one input's candidates and references; a bigger line is a broken file


class ScoreInputError(MCLBenchError, ValueError):
    pass


def read_jsonl(path: str | Path) -> list[dict]:
    path = Path(path)
    if not path.is_file():
        raise ScoreInputError(f"{path}: no such file")
    rows = []
    with open(path, "rb") as f:
        offset = 0
        for number, raw in enumerate(iter(lambda: f.readline(MAX_LINE_BYTES + 1), b""), 1):
            if len(raw) > MAX_LINE_BYTES:
                raise ScoreInputError(f"{path}:{number}: line longer than {MAX_LINE_BYTES >> 20} MiB; "
                                      "expected one JSON object per line")
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise ScoreInputError(f"{path}:{number}: not UTF-8 (byte {offset + exc.start} of the "
                                      "file); re-save it as UTF-8") from None
            offset += len(raw)
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ScoreInputError(f"{path}:{number}: not valid JSON ({exc.msg})") from None
            if not isinstance(row, dict) or "id" not in row:
                raise ScoreInputError(f'{path}:{number}: expected an object with an "id"')
            if isinstance(row["id"], bool) or not isinstance(row["id"], str | int | float):
                raise ScoreInputError(f'{path}:{number}: "id" must be a string or a number, '
                                      f"got {json.dumps(row['id'])[:40]}")
            rows.append(row)
    return rows


@dataclass
class ScoreInputs:
    """What :func:`load` read, in the order of the references (or predictions) file."""

    ids: list
    candidates: list[list[str]]
    references: list[list[str] | None]
    reference_modes: list[list[str | None]] | None = None  # where every row has them
    candidate_modes: list[list[str | None]] | None = None


def load(predictions: str | Path, references: str | Path | None = None) -> ScoreInputs:
    """The ids, candidates, references (and mode labels, where given) of a predictions file
    (and a references file)."""
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
    pred_rows = [by_id[i] for i in ids]
    return ScoreInputs(ids, [r["candidates"] for r in pred_rows], [r.get("references") for r in refs_rows],
                       _column(refs_rows, "reference_modes", references or predictions),
                       _column(pred_rows, "candidate_modes", predictions))


def _column(rows: list[dict], name: str, path) -> list | None:
    """``row[name]`` of every row, None when no row has it; some rows only: an error."""
    have = [name in r for r in rows]
    if not any(have):
        return None
    if not all(have):
        raise ScoreInputError(f'{path}: id {rows[have.index(False)]["id"]!r} has no "{name}" '
                              "(give it for every row or for none)")
    return [r[name] for r in rows]


def score(ids, candidates, references, metrics: list[str] | None = None, reference_modes=None,
          candidate_modes=None, tokenize: str = "13a") -> tuple[dict[str, float | None], dict[str, str]]:
    """Metric values (None where a metric cannot run here) and ``{metric: reason}`` for those.

    ``metrics``: names from the catalogue — a quality metric (``bleu``: all its flavours) or
    one flavour of it (``max/bleu``), or a diversity metric — default: all (the mode metrics
    where ``reference_modes`` are given: a label or None per reference; ``candidate_modes``,
    one per candidate, else a candidate's mode is its best-matched reference's). ``tokenize``:
    sacreBLEU's tokenisation of BLEU and the 13a-based diversity metrics (default 13a; the
    COCO metrics always read PTB tokens)."""
    if tokenize not in TOKENIZERS:
        raise ScoreInputError(f"unknown tokenisation {tokenize!r}; choose one of {', '.join(TOKENIZERS)}")
    flavoured = [m for m in metrics or [] if "/" in m]
    unknown = [m for m in metrics or [] if m.split("/", 1)[-1] not in METRICS
               or ("/" in m and not _has_flavour(m))]
    if unknown:
        raise ScoreInputError(f"unknown metric {unknown[0]!r}; available: {', '.join(METRICS)} "
                              f"(a quality metric also as {'/, '.join(FLAVOURS)}/<name>)")
    wanted = list(dict.fromkeys(m.split("/", 1)[-1] for m in metrics)) if metrics else [
        m for m in METRICS if m not in MODE_COVERAGE or reference_modes is not None]
    if reference_modes is None and any(m in MODE_COVERAGE for m in wanted):
        raise ScoreInputError("modes_covered and mode_recall need a mode label per reference "
                              '("reference_modes" in every references row)')
    try:
        tx.check_inputs(candidates, [r if r is not None else [] for r in references], ids)
    except tx.MetricInputError as exc:
        raise ScoreInputError(str(exc)) from None
    out: dict[str, float | None] = {}
    coco_wanted = [m for m in wanted if m in coco.COCO]
    ptb_diversity = any(m in PTB_DIVERSITY for m in wanted)
    # The COCO family in a thread: its METEOR JVM (the longest job, ~1.2 cores) takes the
    # other core. A second Python process was measured slower (35.2 vs 33.4 s on 5k inputs):
    # three CPU-bound consumers on two cores slow the JVM more than they save.
    with ThreadPoolExecutor(1) as pool:
        coco_job = pool.submit(coco.coco_flavours, candidates, references, coco_wanted, ptb_diversity)
        out.update(tx.quality_flavours(candidates, references, [m for m in wanted if m in SACREBLEU],
                                       tokenize))
        div = dv.diversity(candidates, references, tokenize) if any(m in DIVERSITY for m in wanted) else {}
        wants_sbert = bool({"sbert_sim", "sbert_diversity"} & set(wanted))
        semantic = sbert_metrics(candidates, references) if wants_sbert else MetricValues()
        values = coco_job.result()
        missing = dict(values.unavailable)
        div = {**div, **{k: values[k] for k in PTB_DIVERSITY if k in values}}
    for name in ("top1/sbert_sim", "max/sbert_sim", "sbert_diversity"):
        if name.split("/", 1)[-1] in wanted:
            out[name] = semantic.get(name)
            if name in semantic.unavailable:
                missing[name.split("/", 1)[-1]] = semantic.unavailable[name]
    for name in coco_wanted:
        for flavour in FLAVOURS:
            key = f"{flavour}/{name}"
            out[key] = values.get(key)
    out.update({k: div.get(k) for k in wanted if k in DIVERSITY and (k in div or k in missing)})
    if any(m in MODE_COVERAGE for m in wanted):
        try:
            modes = mode_coverage(candidates, references, reference_modes, candidate_modes, tokenize)
        except ValueError as exc:
            raise ScoreInputError(f"reference_modes / candidate_modes: {exc}") from None
        missing.update(modes.unavailable)
        out.update({k: modes.get(k) for k in MODE_COVERAGE if k in wanted})
    if flavoured:  # only the flavours asked for, where a flavour was named
        keep = set(flavoured) | {m for m in metrics if "/" not in m}
        out = {k: v for k, v in out.items() if k in keep or k.split("/", 1)[-1] in keep}
    return out, {k: v for k, v in missing.items() if k in wanted}


def _has_flavour(name: str) -> bool:
    flavour, base = name.split("/", 1)
    if base == "sbert_sim":
        return flavour in SEMANTIC_FLAVOURS
    return flavour in FLAVOURS and base not in DIVERSITY and base != "sbert_diversity"


def intervals(candidates, references, values: dict[str, float], n_resamples: int,
              seed: int = 0, tokenize: str = "13a") -> dict[str, tuple[float, float]]:
    """95 % bootstrap intervals over inputs for every metric in ``values`` that decomposes."""
    parts = decompositions(candidates, references, [m for m in SACREBLEU if f"top1/{m}" in values],
                           tokenize)
    coco_wanted = [m for m in coco.COCO if values.get(f"top1/{m}") is not None]
    parts.update(coco.coco_parts(candidates, references, coco_wanted)[0] if coco_wanted else {})
    return {k: bootstrap_ci(*parts[k], n_resamples=n_resamples, seed=seed)
            for k in values if k in parts}


def render(values: dict[str, float | None], fmt: str, signatures: dict[str, str],
           ci: dict[str, tuple[float, float]] | None = None, missing: dict[str, str] | None = None) -> str:
    ci, missing = ci or {}, missing or {}
    if fmt == "json":
        out = dict(values)
        for k, (low, high) in ci.items():
            out[f"{k}/ci95_low"], out[f"{k}/ci95_high"] = low, high
        return json.dumps(out, indent=2) + "\n"
    if fmt == "csv":
        rows = [f"{k},{'n/a' if v is None else f'{v:.6f}'},{ci[k][0] if k in ci else ''},"
                f"{ci[k][1] if k in ci else ''}\n" for k, v in values.items()]
        return "metric,value,ci95_low,ci95_high\n" + "".join(rows)
    lines = ["| metric | value | 95 % CI | |", "|---|---:|---:|---|"]
    for k, v in values.items():
        info = metric_info(k)
        interval = f"{ci[k][0]:.4f}–{ci[k][1]:.4f}" if k in ci else ("n/a" if ci else "")
        shown = "n/a" if v is None else f"{v:.4f}"
        lines.append(f"| {k} {'↑' if info.higher_is_better else '↓'} | {shown} | {interval} | "
                     f"{info.description} |")
    lines += ["", *(f"<sub>{k}: {s}</sub>" for k, s in signatures.items())]
    if any(k.split("/")[-1] in coco.COCO for k in values):
        lines.append("<sub>COCO metrics: pycocoevalcap on PTB-tokenised, lower-cased text without "
                     "punctuation; values on its 0–1 scale (CIDEr-D 0–10)</sub>")
    lines += [f"<sub>{k}: n/a — {reason}</sub>" for k, reason in missing.items()]
    if ci:
        lines.append("<sub>95 % CI: percentile bootstrap over inputs; n/a: the metric does not "
                     "decompose over inputs (vocab, pairwise_bleu, loo_bleu, METEOR's corpus "
                     "flavours)</sub>")
    return "\n".join(lines) + "\n"
