"""``mclbench view DIR``: the explorer of a run folder, one self-contained page (``report.html``).

Per task: the leaderboard with its column groups (quality, diversity, coverage, likelihood,
cost) shown or hidden, sortable, the significance marks with their p-values on hover, and
the figures; per input: the source (text, the photo, an audio player), the references with
their mode labels, and every method's candidates, each with its sentence BLEU and the
reference it matches best (coloured by that reference's mode), duplicates marked; a scatter
of any per-input metric of method A against method B whose points open their input, with
filters; a seed switch, and a note where the seeds of a method disagree on an input.

The page is one file that works offline from ``file://``: the data is JSON inside the page
(every ``<``, ``>`` and ``&`` escaped, so a candidate cannot close the script), the script is
hand-written below and builds every text node with ``textContent`` (candidates and
references are data, never markup), figures and photos are inlined (photos downscaled to
160 px JPEG), clips inlined as their own compressed files. Inputs render a page at a time.

Per-input numbers come from the registry's own pieces: the ``bleu`` metric's sentence score
of each candidate (sacreBLEU, the task's tokenisation) and ``best_matches`` (the match
``refs_covered`` and ``modes_covered`` use); mode labels from each cell's ``inputs.json``.
"""

from __future__ import annotations

import base64
import html
import io
import json
import re
from pathlib import Path

from harness import manifest, tables
from harness.metrics import registry
from harness.metrics.diversity import best_matches
from harness.metrics.modes import modes_used
from harness.metrics.ngrams import NgramTable
from harness.score_stages import INPUTS
from harness.scoring import read_jsonl

GROUPS = ("quality", "diversity", "coverage", "likelihood", "cost")
_GROUP_PATTERNS = (
    ("cost", r"params|forward_passes|seconds|_time|memory"),
    ("likelihood", r"nll|perplexity"),
    ("coverage", r"covered|recall|loo_|share_|winner"),
    ("diversity", r"mbleu|pairwise|div_|unique|vocab|self_|sbert|distinct"),
)
IMAGE_SIZE = 160  # px, the longer side of an inlined photo
IMAGE_TYPES = (".jpg", ".jpeg", ".png", ".gif", ".webp")
AUDIO_TYPES = {".flac": "audio/flac", ".wav": "audio/wav", ".mp3": "audio/mpeg", ".ogg": "audio/ogg"}
PER_INPUT = ("max sentence BLEU", "refs covered", "modes covered", "unique candidates")


def column_group(metric: str) -> str:
    """Which of :data:`GROUPS` a leaderboard column belongs to (by its name)."""
    name = metric.rsplit("/", 1)[-1]
    return next((g for g, pattern in _GROUP_PATTERNS if re.search(pattern, name)), "quality")


def _image(path: Path) -> str | None:
    from PIL import Image

    try:
        with Image.open(path) as im:
            im = im.convert("RGB")
            im.thumbnail((IMAGE_SIZE, IMAGE_SIZE))
            buf = io.BytesIO()
            im.save(buf, "JPEG", quality=80)
    except OSError:
        return None
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode()


def _media(file: str | None, run_dir: Path) -> dict | None:
    """``{"kind": "image" | "audio", "src": data URI}`` of an input's file, where it is here."""
    if not file:
        return None
    path = next((p for p in (Path(file), run_dir / file, run_dir.parent / file) if p.is_file()), None)
    if path is None:
        return None
    suffix = path.suffix.lower()
    if suffix in AUDIO_TYPES:
        return {"kind": "audio", "src": f"data:{AUDIO_TYPES[suffix]};base64,"
                + base64.b64encode(path.read_bytes()).decode()}
    src = _image(path) if suffix in IMAGE_TYPES else None
    return {"kind": "image", "src": src} if src else None


def _per_input(cands: list[list[str]], refs: list[list[str]], modes: list | None, cand_modes: list | None,
               tokenize: str) -> tuple[list, dict[str, list]]:
    """Per candidate ``[sentence BLEU, best-matched reference]``; per input the explorer's metrics."""
    sentence = registry.spec("bleu").compute(registry.ScoreInputs(cands, refs, tokenize)).sentence
    table = NgramTable(tokenize)
    shown, metrics = [], {name: [] for name in PER_INPUT}
    for i, (row, rs) in enumerate(zip(cands, refs, strict=True)):
        best = best_matches(row, rs, table)
        shown.append([[round(float(s), 2), b] for s, b in zip(sentence[i], best, strict=True)])
        metrics["max sentence BLEU"].append(round(float(max(sentence[i])), 2))
        metrics["refs covered"].append(len(set(best)))
        wanted = {m for m in modes[i] if m is not None} if modes else set()
        used = modes_used(modes[i], best, cand_modes[i] if cand_modes else None) if wanted else set()
        metrics["modes covered"].append(len(wanted & used) if wanted else None)  # as modes_covered counts
        metrics["unique candidates"].append(len(set(row)))
    return shown, {k: v for k, v in metrics.items() if any(x is not None for x in v)}


def _cells(run_dir: Path, task: str, methods: list[str], seeds: list[int], tokenize: str) -> dict:
    """The inputs (from the first cell that has them) and per seed and method the candidates."""
    inputs: dict[str, dict] = {}
    order: list[str] = []
    runs: dict[str, dict] = {}
    for seed in seeds:
        for method in methods:
            folder = run_dir / "cells" / task / method / f"seed{seed}"
            if not (folder / "candidates.jsonl").is_file():
                continue
            records = read_jsonl(folder / "candidates.jsonl")
            extra = {r["id"]: r for r in json.loads((folder / INPUTS).read_text())} \
                if (folder / INPUTS).is_file() else {}
            for r in records:
                if r["id"] not in inputs:
                    order.append(r["id"])
                    e = extra.get(r["id"], {})
                    inputs[r["id"]] = {"id": r["id"], "source": e.get("source"), "file": r.get("file"),
                                       "references": r["references"], "modes": e.get("reference_modes")}
            by_id = {r["id"]: r for r in records}
            ids = [i for i in order if i in by_id]
            cands = [by_id[i]["candidates"] for i in ids]
            refs = [by_id[i]["references"] for i in ids]
            modes = [inputs[i]["modes"] for i in ids] if all(inputs[i]["modes"] for i in ids) else None
            cand_modes = [extra[i]["candidate_modes"] for i in ids] \
                if all("candidate_modes" in extra.get(i, {}) for i in ids) else None
            scored, per_input = _per_input(cands, refs, modes, cand_modes, tokenize)
            runs.setdefault(str(seed), {})[method] = {
                "ids": ids, "candidates": cands, "scored": scored, "metrics": per_input}
    return {"inputs": [inputs[i] for i in order], "runs": runs}


def _table(run_dir: Path, task: str, meta: dict) -> dict:
    """The leaderboard as data: columns (name, direction, description, group) and per method and
    column ``[mean, std, seeds, best, p]``."""
    import pandas as pd

    csv = run_dir / task / "leaderboard.csv"
    if not csv.is_file():
        return {"columns": [], "rows": {}}
    df = pd.read_csv(csv)
    declared = {m["name"]: m for m in meta.get("metrics", {}).get(task, [])}
    names = [n for n in declared if not n.startswith("ci95/")] or list(dict.fromkeys(df["metric"]))
    columns = [{"name": n, "higher": declared.get(n, {}).get("higher_is_better"),
                "description": declared.get(n, {}).get("description", ""), "group": column_group(n)}
               for n in names]
    columns.sort(key=lambda c: GROUPS.index(c["group"]))  # a group's columns side by side, under its header

    def number(x) -> float | None:  # JSON has no NaN: a missing value is null
        return None if pd.isna(x) else float(x)

    rows: dict[str, dict] = {}
    for r in df[df["metric"].isin(names)].itertuples():
        rows.setdefault(r.method, {})[r.metric] = [
            number(r.mean), number(r.std), int(r.seeds), None if pd.isna(r.best) else str(r.best),
            number(r.p_value)]
    return {"columns": columns, "rows": rows}


def _figures(task_dir: Path) -> list[dict]:
    return [{"name": p.stem, "src": "data:image/png;base64," + base64.b64encode(p.read_bytes()).decode()}
            for p in sorted((task_dir / "plots").glob("*.png"))]


def data(run_dir: str | Path, published: bool = True) -> dict:
    """Everything the page shows, as one JSON-ready dict."""
    run_dir = Path(run_dir)
    df, meta = tables.load(run_dir, published)
    out = {"title": str(meta.get("command", run_dir)), "provenance": tables.footer_lines(meta, list(
        df["task"].unique())), "alpha": tables.ALPHA, "tasks": []}
    for task in df["task"].unique():
        tdf = df[df["task"] == task]
        methods = list(dict.fromkeys(tdf["method"]))
        seeds = sorted(int(s) for s in tdf["seed"].unique())
        tokenize = tables.task_tokenize(meta, task)
        cells = _cells(run_dir, task, methods, seeds, tokenize)
        for record in cells["inputs"]:
            record["media"] = _media(record.pop("file"), run_dir)
        out["tasks"].append({"name": task, "methods": methods, "seeds": seeds, "tokenize": tokenize,
                             **_table(run_dir, task, meta), "figures": _figures(run_dir / task), **cells})
    return out


def _script_json(value) -> str:
    """JSON safe inside ``<script>``: no ``<``, ``>`` or ``&`` survives as itself."""
    text = json.dumps(value, ensure_ascii=False, allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def render(run_dir: str | Path, published: bool = True) -> str:
    """The explorer page of a run folder (``published``: see :func:`harness.tables.load`)."""
    payload = data(run_dir, published)
    title = html.escape(f"mclbench: {payload['title']}")
    return (f"<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}</title>"
            f"<style>{_asset('view.css')}</style></head><body><header><h1>{title}</h1><nav id=\"nav\"></nav>"
            f"</header><main id=\"main\"></main><footer id=\"provenance\"></footer>"
            f"<script type=\"application/json\" id=\"data\">{_script_json(payload)}</script>"
            f"<script>{_asset('view.js')}</script></body></html>\n")


def _asset(name: str) -> str:
    return (Path(__file__).parent / "view_assets" / name).read_text()


def write(run_dir: str | Path) -> Path:
    """``report.html`` in the run folder (added to what the folder's manifest lists)."""
    return manifest.add(run_dir, {"report.html": render(run_dir)})[0]
