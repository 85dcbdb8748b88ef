"""Keep the result tables quoted in README.md and docs/*.md equal to results/.

A block in a page::

    <!-- table: results task=translation metrics=top1/bleu,oracle/bleu,mbleu_4 -->
    ...
    <!-- /table -->

holds exactly ``tables.render("results", "md", task=..., metrics=[...], footer=False)``;
a block ``<!-- summary: results results/pretrained/x -->`` … ``<!-- /summary -->``
holds :func:`summary` of those run folders; a block
``<!-- examples: results task=photo_captioning seed=0 inputs=1,2 -->`` …
``<!-- /examples -->`` holds those test inputs (0-based positions) of the run: the input's
photo when it is an image file, then the references and every method's candidates, from
``cells/<task>/<method>/seed<seed>/candidates.jsonl``. ``python -m tools.docs``
rewrites every block from the run directories (with the generated reference pages);
``--check`` only reports the stale ones (the test suite runs it).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from harness import tables
from harness.view import IMAGE_TYPES

BLOCK = re.compile(r"(<!-- table: (\S+) task=(\S+)(?: metrics=(\S+))? -->\n)(.*?)(<!-- /table -->)", re.S)
SUMMARY = re.compile(r"(<!-- summary: ([^>]*?) -->\n)(.*?)(<!-- /summary -->)", re.S)
EXAMPLES = re.compile(
    r"(<!-- examples: (\S+) task=(\S+) seed=(\d+) inputs=([\d,]+) -->\n)(.*?)(<!-- /examples -->)", re.S)


def blocks(text: str) -> list[tuple[str, str, list[str] | None]]:
    """``(run dir, task, metrics)`` of every block, in order."""
    return [(m[2], m[3], m[4].split(",") if m[4] else None) for m in BLOCK.finditer(text)]


def sync(readme: Path, check: bool = False, root: Path | None = None) -> list[str]:
    """Rewrite (or with ``check``, only compare) every block; returns the stale ones. The
    blocks name run folders relative to ``root`` (default: the page's folder)."""
    root = readme.parent if root is None else root
    text = readme.read_text()
    stale = []

    def fill(m: re.Match) -> str:
        run_dir, task, metrics = m[2], m[3], m[4].split(",") if m[4] else None
        table = tables.render(root / run_dir, "md", task=task, metrics=metrics, footer=False)
        table = table.split("\n", 2)[2]  # drop the "### task (seeds)" heading and blank line
        if table != m[5]:
            stale.append(f"{run_dir} task={task}")
        return m[1] + table + m[6]

    def fill_examples(m: re.Match) -> str:
        run_dir, task, seed, inputs = m[2], m[3], int(m[4]), [int(i) for i in m[5].split(",")]
        body = examples(root / run_dir, task, seed, inputs)
        if body != m[6]:
            stale.append(f"{run_dir} task={task} examples")
        return m[1] + body + m[7]

    def fill_summary(m: re.Match) -> str:
        body = summary(root, m[2].split())
        if body != m[3]:
            stale.append(f"summary of {m[2]}")
        return m[1] + body + m[4]

    new = SUMMARY.sub(fill_summary, EXAMPLES.sub(fill_examples, BLOCK.sub(fill, text)))
    if not check and new != text:
        readme.write_text(new)
    return stale


def examples(run_dir: Path, task: str, seed: int, inputs: list[int]) -> str:
    """Markdown of the chosen test inputs: photo, references, each method's candidates."""
    methods = json.loads((run_dir / "run.json").read_text())["methods"][task]
    records = {}
    for method in methods:
        path = run_dir / "cells" / task / method / f"seed{seed}" / "candidates.jsonl"
        if path.is_file():
            records[method] = path.read_text().splitlines()
    out = []
    for i in inputs:
        first = json.loads(next(iter(records.values()))[i])
        photo = first.get("file", "")
        is_image = Path(photo).suffix.lower() in IMAGE_TYPES
        shown = f' <img src="{photo}" height="120" alt="{first["id"]}">' if is_image else ""
        rows = [f"| reference | {' · '.join(first['references'])} |"]
        rows += [f"| {m} | {' · '.join(json.loads(lines[i])['candidates'])} |"
                 for m, lines in records.items()]
        out.append(f"**{first['id']}**{shown}\n\n| | captions |\n|---|---|\n" + "\n".join(rows) + "\n\n")
    return "".join(out)


MCL = "lora_mcl"


def _standing(tdf, tests, metric: str, higher: bool) -> str:
    """LoRA-MCL's seed mean of ``metric``, its rank, and the best other row (a dagger where
    LoRA-MCL is not significantly worse than the column's best)."""
    means = tdf[tdf["metric"] == metric].groupby("method", sort=False)["value"].mean()
    if MCL not in means.index:
        return "–"
    order = means.sort_values(ascending=not higher)
    rank = list(order.index).index(MCL) + 1
    ours = f"{means[MCL]:#.4g}"
    if rank == 1:
        runner = order.index[1] if len(order) > 1 else None
        nxt = f" · next: {runner} {order.iloc[1]:#.4g}" if runner else ""
        return f"**{ours}** (best of {len(order)}){nxt}"
    row = tests[(tests["metric"] == metric) & (tests["method"] == MCL)]
    dagger = " †" if len(row) and row["p_value"].iloc[0] >= tables.ALPHA else ""
    return f"{ours}{dagger} ({rank} of {len(order)}) · best: {order.index[0]} {order.iloc[0]:#.4g}"


def summary(root: Path, run_dirs: list[str]) -> str:
    """One row per task of each run folder: LoRA-MCL against the other rows on the paper's
    oracle quality (``max/``; Markov: ``markov_tv``), the task's diversity axis and the oracle NLL."""
    rows = ["| task (leaderboard) | base · seeds | oracle quality | diversity | oracle NLL ↓ |",
            "|---|---|---|---|---|"]
    for run_dir in run_dirs:
        df, meta = tables.load(root / run_dir)
        tests = tables.load_significance(root / run_dir)
        for task in df["task"].unique():
            tdf, plots = df[df["task"] == task], meta["plots"][task]
            higher = {m["name"]: m["higher_is_better"] for m in meta["metrics"][task]}
            quality, diversity = plots["quality_diversity"]
            if plots.get("best_of_n"):
                quality = "max/" + plots["best_of_n"].split("/", 1)[1]
            base = (meta["tasks"].get(task) or {}).get("backbone") or "trained here"
            cells = [f"[{task}]({run_dir}/{task}/leaderboard.md)", f"{base} · {len(tdf['seed'].unique())}"]
            for metric in (quality, diversity, "oracle_nll"):
                arrow = "↑" if higher.get(metric) else "↓"
                shown = _standing(tdf, tests[tests["task"] == task], metric, bool(higher.get(metric)))
                cells.append(shown if metric == "oracle_nll" else f"`{metric}` {arrow} {shown}")
            rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows) + "\n"

