"""Leaderboard number formatting, and the significance mark."""

import io
import json
import math

import pandas as pd

from harness import tables
from harness.tables import format_value


def test_format_value():
    assert format_value(16384.0, 0.0) == "16384"
    assert format_value(0.52971, 0.0) == "0.5297"
    assert format_value(0.0090, 0.0028) == "0.0090 ± 0.0028"
    assert format_value(2.0, 0.5) == "2.0000 ± 0.5000"
    assert format_value(0.5, math.nan) == "0.5000"


def test_the_dagger_marks_rows_not_significantly_worse_than_the_bold_one(tmp_path):
    scores = [("t", m, 0, "q", v) for m, v in (("a", 3.0), ("b", 2.0), ("c", 1.0), ("d", 3.0))]
    pd.DataFrame(scores, columns=["task", "method", "seed", "metric", "value"]).to_csv(
        tmp_path / "scores.csv", index=False)
    (tmp_path / "run.json").write_text(json.dumps(
        {"metrics": {"t": [{"name": "q", "higher_is_better": True, "description": ""}]}}))
    tests = [("t", "q", "a", "a", 0.0, None), ("t", "q", "b", "a", 1.0, 0.2),
             ("t", "q", "c", "a", 2.0, 0.01), ("t", "q", "d", "a", 0.0, 1.0)]
    pd.DataFrame(tests, columns=["task", "metric", "method", "best", "delta", "p_value"]).to_csv(
        tmp_path / "significance.csv", index=False)
    md = tables.render(tmp_path, "md")
    rows = {line.split("|")[1].strip(): line.split("|")[2].strip() for line in md.splitlines()
            if line.startswith("| ") and not line.startswith("| method")}
    # a: the best (bold); b: p = 0.2, not significantly worse (†); c: p = 0.01, worse (no mark);
    # d: equal to the best, bold (no dagger beside the bold)
    assert rows == {"a": "**3**", "b": "2 †", "c": "1", "d": "**3**"}
    assert tables.LEGEND in md and "no test on" not in md
    assert r"2 $^\dagger$" in tables.render(tmp_path, "latex")
    csv = pd.read_csv(io.StringIO(tables.render(tmp_path, "csv"))).set_index("method")
    assert csv["p_value"].fillna(-1).to_dict() == {"a": -1, "b": 0.2, "c": 0.01, "d": 1.0}  # -1: the best
    assert set(csv["best"]) == {"a"}


def test_a_ranked_column_without_a_test_is_named_under_the_legend(tmp_path):
    """No dagger can appear in a column the test did not run on: the footer says so, or a reader
    takes every unmarked value there for significantly worse."""
    scores = [("t", m, 0, metric, v) for m, v in (("a", 3.0), ("b", 2.0)) for metric in ("q", "r", "s")]
    pd.DataFrame(scores, columns=["task", "method", "seed", "metric", "value"]).to_csv(
        tmp_path / "scores.csv", index=False)
    info = [{"name": "q", "higher_is_better": True, "description": ""},
            {"name": "r", "higher_is_better": False, "description": ""},
            {"name": "s", "higher_is_better": None, "description": ""}]  # no direction: nothing to rank
    (tmp_path / "run.json").write_text(json.dumps({"metrics": {"t": info}}))
    pd.DataFrame([("t", "q", "a", "a", 0.0, None), ("t", "q", "b", "a", 1.0, 0.2)],
                 columns=["task", "metric", "method", "best", "delta", "p_value"]).to_csv(
        tmp_path / "significance.csv", index=False)
    footer = tables.render(tmp_path, "md").split("<sub>", 1)[1]
    assert "t: no test on r (bold only" in footer
