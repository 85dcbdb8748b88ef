"""Score generations made anywhere: JSONL predictions (+ references) in, metric values out.

Predictions: one JSON object per line, ``{"id": ..., "candidates": [str, ...]}``, optionally
with ``"references"``; or references in a second file, ``{"id": ..., "references": [...]}``,
joined by id. A references row may carry ``"reference_modes"`` (a mode label or null per
reference) and a predictions row ``"candidate_modes"`` (one per candidate): then
``modes_covered`` and ``mode_recall`` (:mod:`harness.metrics.modes`) are scored too.

Metric names are those of :mod:`harness.metrics.registry` (``docs/metrics.md``): a quality
metric by its base name (``bleu``: every reduction, ``max@n/`` for n ≤ N included) or one
reduction (``max/bleu``, the paper's oracle), and the set metrics by name. A metric that
cannot run on this machine (SPICE offline, Java missing) is reported as "n/a" with its
reason, never as a number.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from harness.errors import MCLBenchError
from harness.metrics import registry
from harness.metrics import text as tx
from harness.metrics.bootstrap import bootstrap_ci
from harness.metrics.ngrams import TOKENIZERS

MAX_LINE_BYTES = 64 << 20  # one input's candidates and references; a bigger line is a broken file


class ScoreInputError(MCLBenchError, ValueError):
    pass


def read_jsonl(path: str | Path) -> list[dict]:
    path = Path(path)
    if path.is_dir():
        raise ScoreInputError(f"{path} is a folder; pass a JSONL file (one JSON object per line)")
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
            if isinstance(row, list):
                raise ScoreInputError(f"{path}:{number}: a JSON array; mclbench reads JSON Lines, one object "
                                      "per line (e.g. jq -c '.[]' FILE > FILE.jsonl)")
            if not isinstance(row, dict) or "id" not in row:
                raise ScoreInputError(f'{path}:{number}: expected an object with an "id"')
            if isinstance(row["id"], bool) or not isinstance(row["id"], str | int | float):
                raise ScoreInputError(f'{path}:{number}: "id" must be a string or a number, '
                                      f"got {json.dumps(row['id'])[:40]}")
            rows.append(row)
    return rows


@dataclass
class Predictions:
    """What :func:`load` read, in the order of the references (or predictions) file."""

    ids: list
    candidates: list[list[str]]
    references: list[list[str] | None]
    reference_modes: list[list[str | None]] | None = None  # where every row has them
    candidate_modes: list[list[str | None]] | None = None


def load(predictions: str | Path, references: str | Path | None = None) -> Predictions:
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
        inline = [r["id"] for r in preds if "references" in r]
        if inline:
            raise ScoreInputError(f'{predictions}: id {inline[0]!r} has "references" and --references is '
                                  "also given: keep one of the two")
        refs_rows = read_jsonl(references)
        absent = [r["id"] for r in refs_rows if r["id"] not in by_id]
        if absent:
            raise ScoreInputError(f"{references}: id {absent[0]!r} has no prediction in {predictions}")
        extra = set(by_id) - {r["id"] for r in refs_rows}
        if extra:
            raise ScoreInputError(f"{predictions}: id {sorted(extra)[0]!r} has no references in {references}")
    ids = [r["id"] for r in refs_rows]
    pred_rows = [by_id[i] for i in ids]
    out = Predictions(ids, [r["candidates"] for r in pred_rows], [r.get("references") for r in refs_rows],
                      _column(refs_rows, "reference_modes", references or predictions),
                      _column(pred_rows, "candidate_modes", predictions))
    for name, labels, sizes, path in (("reference_modes", out.reference_modes, out.references,
                                       references or predictions),
                                      ("candidate_modes", out.candidate_modes, out.candidates, predictions)):
        for i, row, items in zip(ids, labels, sizes, strict=True) if labels is not None else ():
            _check_labels(path, i, name, row, items)
    return out


def _check_labels(path, id_, name: str, labels, items) -> None:
    """A list of one label (a string or null) per reference / candidate, or a one-line error."""
    what = "reference" if name == "reference_modes" else "candidate"
    if not isinstance(labels, list) or any(x is not None and not isinstance(x, str) for x in labels):
        raise ScoreInputError(f'{path}: id {id_!r}: "{name}" must be a list of labels (strings or null), one '
                              f"per {what}; got {json.dumps(labels)[:60]}")
    if isinstance(items, list) and len(labels) != len(items):
        raise ScoreInputError(f'{path}: id {id_!r}: "{name}" has {len(labels)} labels for {len(items)} '
                              f"{what}s; give one per {what}")


def _column(rows: list[dict], name: str, path) -> list | None:
    """``row[name]`` of every row, None when no row has it; some rows only: an error."""
    have = [name in r for r in rows]
    if not any(have):
        return None
    if not all(have):
        raise ScoreInputError(f'{path}: id {rows[have.index(False)]["id"]!r} has no "{name}" '
                              "(give it for every row or for none)")
    return [r[name] for r in rows]


def resolve_names(names: list[str]) -> tuple[list[str], list[str]]:
    """``names`` with renamed reductions mapped to today's (``oracle/bleu`` → ``oracle_corpus/bleu``),
    and a one-line note for each renamed one."""
    out, notes = [], []
    for name in names:
        reduction, base = registry.split(name)
        if reduction in registry.RENAMED:
            new = f"{registry.RENAMED[reduction]}/{base}"
            notes.append(f"{name} is now {new} (the corpus score of each input's best pick); the paper's "
                         f"oracle is max/{base}")
            name = new
        out.append(name)
    return out, notes


def evaluate(ids, candidates, references, metrics: list[str] | None = None, reference_modes=None,
             candidate_modes=None,
             tokenize: str = "13a") -> tuple[dict[str, float | None], registry.Evaluation]:
    """``(values, evaluation)``: the value of every name asked for (None where a metric cannot
    run here; the registry's ``evaluation`` has the reasons and the per-input parts).

    ``metrics``: registered names — a quality metric (``bleu``: all its reductions) or one
    reduction of it (``max/bleu``), or a set metric — asked for by name, each must be computable
    on these inputs (else a one-line error); default: every text metric the inputs allow (the
    mode metrics where ``reference_modes`` are given: a label or None per reference;
    ``candidate_modes``, one per candidate, else a candidate's mode is its best-matched
    reference's). ``tokenize``: sacreBLEU's tokenisation of BLEU and the 13a-based metrics
    (default 13a; the COCO metrics always read PTB tokens)."""
    if tokenize not in TOKENIZERS:
        raise ScoreInputError(f"unknown tokenisation {tokenize!r}; choose one of {', '.join(TOKENIZERS)}")
    try:
        names = list(metrics) if metrics else [m.name for m in registry.load().values() if m.kind != "probe"]
        registry.bases(names)  # unknown names first: the message names them
        tx.check_inputs(candidates, [r if r is not None else [] for r in references], ids)
        inputs = registry.ScoreInputs(candidates, references, tokenize, reference_modes, candidate_modes)
        done = registry.evaluate(names, inputs, strict=bool(metrics))
    except (tx.MetricInputError, registry.MetricNameError) as exc:
        raise ScoreInputError(str(exc)) from None
    except ValueError as exc:  # mode labels that do not fit the references
        raise ScoreInputError(f"reference_modes / candidate_modes: {exc}") from None
    n = len(candidates[0])
    values: dict[str, float | None] = {}
    for name in names:
        metric = registry.spec(name)
        if metric.name in done.skipped:
            continue
        shown = [name] if "/" in name else metric.names(n)
        values.update({k: done.values.get(k) for k in shown})
    return values, done


def score(ids, candidates, references, metrics: list[str] | None = None, reference_modes=None,
          candidate_modes=None, tokenize: str = "13a") -> tuple[dict[str, float | None], dict[str, str]]:
    """Metric values (None where a metric cannot run here) and ``{metric: reason}`` for those
    (see :func:`evaluate`)."""
    values, done = evaluate(ids, candidates, references, metrics, reference_modes, candidate_modes, tokenize)
    return values, done.unavailable


def intervals(done: registry.Evaluation, values: dict[str, float | None], n_resamples: int,
              seed: int = 0) -> dict[str, tuple[float, float]]:
    """95 % bootstrap intervals over inputs for every metric in ``values`` that decomposes."""
    return {k: bootstrap_ci(*done.parts[k], n_resamples=n_resamples, seed=seed)
            for k in values if k in done.parts and values[k] is not None}


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
        higher, description, _ = registry.info(k)
        interval = f"{ci[k][0]:.4f}–{ci[k][1]:.4f}" if k in ci else ("n/a" if ci else "")
        shown = "n/a" if v is None else f"{v:.4f}"
        lines.append(f"| {k} {'↑' if higher else '↓'} | {shown} | {interval} | {description} |")
    lines += ["", *(f"<sub>{k}: {s}</sub>" for k, s in signatures.items())]
    if any(registry.spec(k).group == "jvm" for k in values):
        lines.append("<sub>COCO metrics: pycocoevalcap on PTB-tokenised, lower-cased text without "
                     "punctuation; values on its 0–1 scale (CIDEr-D 0–10)</sub>")
    lines += [f"<sub>{k}: n/a — {reason}</sub>" for k, reason in missing.items()]
    if ci:
        lines.append("<sub>95 % CI: percentile bootstrap over inputs; n/a: the metric does not "
                     "decompose over inputs (see docs/metrics.md)</sub>")
    return "\n".join(lines) + "\n"
