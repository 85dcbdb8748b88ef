"""Figures quoted in README.md are the ones in results/ (written by real CLI runs)."""

import re
from pathlib import Path

import pandas as pd
import pytest

from harness.tables import format_value

ROOT = Path(__file__).resolve().parents[1]


def quoted_tables():
    text = (ROOT / "README.md").read_text()
    for block in re.findall(r"<!-- results:(\w+).*?-->\n(.*?)<!-- /results:\1 -->", text, re.S):
        task, table = block
        lines = [ln for ln in table.strip().splitlines() if ln.startswith("|")]
        header = [c.strip().split(" ")[0] for c in lines[0].strip("|").split("|")]
        for line in lines[2:]:
            cells = [c.strip() for c in line.strip("|").split("|")]
            yield task, dict(zip(header, cells, strict=True))


ROWS = list(quoted_tables())


def test_readme_quotes_results():
    assert ROWS, "README has no <!-- results:... --> table"


@pytest.mark.parametrize("task,row", ROWS, ids=[f"{t}-{r['setting']}-{r['method']}" for t, r in ROWS])
def test_readme_numbers_equal_results(task, row):
    scores = pd.read_csv(ROOT / "results" / task / row["setting"] / "scores.csv")
    scores = scores[scores["method"] == row["method"]].groupby("metric")["value"].mean()
    for metric, shown in row.items():
        if metric in ("setting", "method"):
            continue
        if shown == "–":
            assert metric not in scores.index
        else:
            assert format_value(scores[metric], 0.0) == shown, (metric, shown)
