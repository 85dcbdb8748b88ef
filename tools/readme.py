"""Keep the result tables quoted in README.md equal to results/.

A block in the README::

    <!-- table: results task=translation metrics=top1/bleu,oracle/bleu,mbleu_4 -->
    ...
    <!-- /table -->

holds exactly ``tables.render("results", "md", task=..., metrics=[...], footer=False)``;
a block ``<!-- examples: results task=photo_captioning seed=0 inputs=1,2 -->`` …
``<!-- /examples -->`` holds those test inputs (0-based positions) of the run: the input's
photo when it is an image file, then the references and every method's candidates, from
``cells/<task>/<method>/seed<seed>/candidates.jsonl``. ``python -m tools.readme``
rewrites every block from the run directories; ``--check`` only reports the stale ones
(the test suite runs it).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

from harness import tables
from harness.view import IMAGE_TYPES

ROOT = Path(__file__).resolve().parents[1]
BLOCK = re.compile(r"(<!-- table: (\S+) task=(\S+)(?: metrics=(\S+))? -->\n)(.*?)(<!-- /table -->)", re.S)
EXAMPLES = re.compile(
    r"(<!-- examples: (\S+) task=(\S+) seed=(\d+) inputs=([\d,]+) -->\n)(.*?)(<!-- /examples -->)", re.S)


def blocks(text: str) -> list[tuple[str, str, list[str] | None]]:
    """``(run dir, task, metrics)`` of every block, in order."""
    return [(m[2], m[3], m[4].split(",") if m[4] else None) for m in BLOCK.finditer(text)]


def sync(readme: Path = ROOT / "README.md", check: bool = False) -> list[str]:
    """Rewrite (or with ``check``, only compare) every block; returns the stale ones."""
    text = readme.read_text()
    stale = []

    def fill(m: re.Match) -> str:
        run_dir, task, metrics = m[2], m[3], m[4].split(",") if m[4] else None
        table = tables.render(readme.parent / run_dir, "md", task=task, metrics=metrics, footer=False)
        table = table.split("\n", 2)[2]  # drop the "### task (seeds)" heading and blank line
        if table != m[5]:
            stale.append(f"{run_dir} task={task}")
        return m[1] + table + m[6]

    def fill_examples(m: re.Match) -> str:
        run_dir, task, seed, inputs = m[2], m[3], int(m[4]), [int(i) for i in m[5].split(",")]
        body = examples(readme.parent / run_dir, task, seed, inputs)
        if body != m[6]:
            stale.append(f"{run_dir} task={task} examples")
        return m[1] + body + m[7]

    new = EXAMPLES.sub(fill_examples, BLOCK.sub(fill, text))
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


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tools.readme", description=__doc__.splitlines()[0])
    p.add_argument("--check", action="store_true", help="report stale blocks, change nothing")
    args = p.parse_args(argv)
    stale = sync(check=args.check)
    for block in stale:
        print(f"{'stale' if args.check else 'updated'}: {block}", file=sys.stderr)
    return 1 if stale and args.check else 0


if __name__ == "__main__":
    sys.exit(main())
