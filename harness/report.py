"""``mclbench report DIR``: one self-contained HTML page of a run directory.

Per task: the leaderboard, the figures (PNG inlined as data URIs, so the page is one file
that opens anywhere) and, per test input, every method's candidates next to the references
(first seed) and, for a photo input, the photo (inlined too), to read what the numbers
mean. No JavaScript, no external resources.
"""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path

from harness import manifest, tables

STYLE = """
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, sans-serif; margin: 2rem auto; max-width: 1200px; padding: 0 1rem;
  color: #222; overflow-wrap: anywhere; }
h1 { font-size: 1.6rem; } h2 { margin-top: 2.5rem; border-bottom: 1px solid #ccc; }
table.leaderboard { border-collapse: collapse; font-size: 12px; display: block; overflow-x: auto; }
table.leaderboard th, table.leaderboard td { padding: 3px 8px; border-bottom: 1px solid #eee;
  text-align: right; white-space: nowrap; }
table.leaderboard caption { text-align: left; font-weight: 600; padding-bottom: 4px; }
table.leaderboard tbody th { text-align: left; }
.provenance { font-size: 11px; color: #666; margin: 2px 0; overflow-wrap: anywhere; }
.figures { display: flex; flex-wrap: wrap; gap: 8px; align-items: flex-start; }
.figures img { max-width: calc(50% - 4px); height: auto; border: 1px solid #eee; }
details { margin: 4px 0; } summary { cursor: pointer; }
.example { display: grid; grid-template-columns: 9rem 1fr; gap: 2px 12px; font-size: 13px;
  padding: 6px 0 10px 1rem; }
.example .who { color: #555; } .example .ref { color: #0a5; }
.example img { grid-column: 1 / 3; max-width: 240px; height: auto; }
"""
IMAGE_TYPES = {".jpg": "jpeg", ".jpeg": "jpeg", ".png": "png", ".gif": "gif", ".webp": "webp"}


def _figures(task_dir: Path) -> str:
    images = []
    for png in sorted((task_dir / "plots").glob("*.png")):
        data = base64.b64encode(png.read_bytes()).decode()
        images.append(f'<img alt="{html.escape(png.stem)}" title="{html.escape(png.stem)}" '
                      f'src="data:image/png;base64,{data}">')
    return f'<div class="figures">{"".join(images)}</div>' if images else ""


def _candidates(cells: Path, methods: list[str], seed: int, limit: int) -> str:
    """Every method's candidates for the first ``limit`` inputs, as collapsible blocks."""
    per_method = {}
    for method in methods:
        path = cells / method / f"seed{seed}" / "candidates.jsonl"
        if path.is_file():
            per_method[method] = [json.loads(line) for line in path.read_text().splitlines()]
    if not per_method:
        return ""
    first = next(iter(per_method.values()))
    blocks = []
    for i, record in enumerate(first[:limit]):
        rows = [_photo(record.get("file"))]
        rows += [f'<span class="who ref">reference</span><span class="ref">{html.escape(str(r))}</span>'
                 for r in record.get("references") or []]
        for method, records in per_method.items():
            for j, cand in enumerate(records[i]["candidates"]):
                who = html.escape(method) if j == 0 else ""
                rows.append(f'<span class="who">{who}</span><span>{html.escape(str(cand))}</span>')
        blocks.append(f"<details{' open' if i == 0 else ''}><summary>input {html.escape(str(record['id']))}"
                      f"</summary><div class=\"example\">{''.join(rows)}</div></details>")
    more = len(first) - limit
    note = f"<p class='provenance'>… and {more} more inputs in cells/.</p>" if more > 0 else ""
    return "".join(blocks) + note


def _photo(file: str | None) -> str:
    """The input's image inlined, when the record names an image file that is here."""
    if not file or Path(file).suffix.lower() not in IMAGE_TYPES or not Path(file).is_file():
        return ""
    data = base64.b64encode(Path(file).read_bytes()).decode()
    return (f'<img alt="{html.escape(Path(file).name)}" '
            f'src="data:image/{IMAGE_TYPES[Path(file).suffix.lower()]};base64,{data}">')


def render(run_dir: str | Path, limit: int = 50, published: bool = True) -> str:
    """The report page (``published``: see :func:`harness.tables.load`)."""
    run_dir = Path(run_dir)
    df, meta = tables.load(run_dir, published)
    sections = []
    for task in df["task"].unique():
        tdf = df[df["task"] == task]
        methods = list(dict.fromkeys(tdf["method"]))
        seed = int(min(tdf["seed"]))
        table = tables.render(run_dir, "html", task=task, published=published)
        examples = _candidates(run_dir / "cells" / task, methods, seed, limit)
        sections.append(
            f'<section id="{html.escape(task)}"><h2>{html.escape(task)}</h2>{table}'
            f"{_figures(run_dir / task)}"
            + (f"<h3>Candidates, seed {seed} (first {limit} inputs)</h3>{examples}" if examples else "")
            + "</section>")
    toc = " · ".join(f'<a href="#{html.escape(t)}">{html.escape(t)}</a>' for t in df["task"].unique())
    title = f"mclbench report: {html.escape(str(meta.get('command', run_dir)))}"
    return (f"<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}</title>"
            f"<style>{STYLE}</style></head><body><h1>{title}</h1><p>{toc}</p>"
            f"{''.join(sections)}</body></html>\n")


def write(run_dir: str | Path, limit: int = 50) -> Path:
    """``report.html`` in the run folder (added to what the folder's manifest lists)."""
    return manifest.add(run_dir, {"report.html": render(run_dir, limit)})[0]
