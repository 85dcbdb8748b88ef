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


def test_readme_tables_equal_the_published_run():
    """Every `<!-- table: ... -->` block is what `mclbench table` renders from results/ now."""
    from tools.readme import blocks, sync

    text = (ROOT / "README.md").read_text()
    assert sync(check=True) == []
    quoted = {task for run_dir, task, _ in blocks(text) if run_dir == "results"}
    assert quoted == set(pd.read_csv(ROOT / "results" / "scores.csv")["task"])  # every published task


def test_readme_shows_the_published_figures():
    text = (ROOT / "README.md").read_text()
    images = re.findall(r"!\[[^\]]*\]\((results/[^)]+\.(?:png|svg))\)", text)
    assert images, "README shows no figure from results/"
    for path in images:
        assert (ROOT / path).is_file(), path
    for task in set(pd.read_csv(ROOT / "results" / "scores.csv")["task"]):
        assert (ROOT / "results" / task / "plots" / "quality_diversity.png").is_file(), task
    for photo in re.findall(r'<img src="([^"]+)"', text):
        assert (ROOT / photo).is_file(), photo


def test_sync_detects_a_changed_number(tmp_path):
    from tools.readme import sync

    readme = tmp_path / "README.md"
    text = (ROOT / "README.md").read_text()
    (tmp_path / "results").symlink_to(ROOT / "results")
    m = re.search(r"(<!-- table: results task=translation.*?-->\n(?:.*\n)*?)(\| \w+ \| )(\d+\.\d{4})", text)
    assert m, "no translation table block"
    changed = text[:m.start(3)] + "99.9999" + text[m.end(3):]
    readme.write_text(changed)
    assert sync(readme, check=True) == ["results task=translation"]
    assert sync(readme) == ["results task=translation"] and sync(readme, check=True) == []


def test_sync_detects_a_changed_example(tmp_path):
    """The photo examples block is what the published candidates say."""
    from tools.readme import sync

    readme = tmp_path / "README.md"
    (tmp_path / "results").symlink_to(ROOT / "results")
    text = (ROOT / "README.md").read_text()
    m = re.search(r"<!-- examples: results task=photo_captioning.*?-->\n(?:.*\n)*?\| lora_mcl \| ", text)
    assert m, "no photo examples block with LoRA-MCL's candidates"
    readme.write_text(text[:m.end()] + "made up · " + text[m.end():])
    assert sync(readme, check=True) == ["results task=photo_captioning examples"]
