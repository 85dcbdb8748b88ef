"""Leaderboards from a run directory's tidy ``scores.csv``: Markdown, CSV or LaTeX.

One table per task: a row per method, a column per metric with its direction (↑ higher
is better, ↓ lower is better), mean ± std over seeds, the best value per column in bold.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

FORMATS = ("md", "csv", "latex")


def load(run_dir: str | Path) -> tuple[pd.DataFrame, dict]:
    run_dir = Path(run_dir)
    path = run_dir / "scores.csv"
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} not found: pass the --output directory of a finished `mclbench run`"
        )
    df = pd.read_csv(path)
    missing = {"task", "method", "seed", "metric", "value"} - set(df.columns)
    if missing:
        raise ValueError(f"{path}: missing columns {sorted(missing)}")
    meta_path = run_dir / "run.json"
    meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
    return df, meta


def summarise(df: pd.DataFrame, metric_info: dict) -> pd.DataFrame:
    """Per (method, metric): mean, std and number of seeds, methods in first-seen order."""
    g = df.groupby(["method", "metric"], sort=False)["value"]
    out = g.agg(["mean", "std", "count"]).reset_index()
    out = out[out["metric"].isin(list(metric_info))]  # the task's declared columns, in order
    rank = {m: i for i, m in enumerate(metric_info)}
    return out.sort_values("metric", key=lambda s: s.map(rank), kind="stable")


def _cells(summary: pd.DataFrame, metric_info: dict, methods: list[str],
           metrics: list[str]) -> tuple[dict, dict]:
    """Formatted values and which ones are the best of their column."""
    text, best = {}, {}
    for metric in metrics:
        sub = summary[summary["metric"] == metric].set_index("method")
        higher = metric_info.get(metric, {}).get("higher_is_better")
        means = sub["mean"].dropna()
        ranked = higher is not None and len(means) > 1
        target = (means.max() if higher else means.min()) if ranked else None
        for method in methods:
            if method not in sub.index or np.isnan(sub.loc[method, "mean"]):
                text[method, metric] = "–"
                continue
            mean, std, n = sub.loc[method, ["mean", "std", "count"]]
            text[method, metric] = format_value(mean, std if n > 1 else 0.0)
            best[method, metric] = target is not None and np.isclose(mean, target)
    return text, best


def format_value(mean: float, std: float) -> str:
    """4 decimals, or none for whole numbers (counts, parameters); ``± std`` when it is not 0."""
    whole = float(mean).is_integer() and float(std) == 0.0
    text = f"{mean:.0f}" if whole else f"{mean:.4f}"
    return text + (f" ± {std:.4f}" if std and not np.isnan(std) else "")


def _arrow(metric: str, metric_info: dict, up: str = " ↑", down: str = " ↓") -> str:
    higher = metric_info.get(metric, {}).get("higher_is_better")
    return "" if higher is None else (up if higher else down)


def render(run_dir: str | Path, fmt: str = "md") -> str:
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    df, meta = load(run_dir)
    if fmt == "csv":
        return summary_csv(df)
    blocks = []
    for task in df["task"].unique():
        info = {m["name"]: m for m in meta.get("metrics", {}).get(task, [])}
        tdf = df[df["task"] == task]
        summary = summarise(tdf, info)
        methods = list(dict.fromkeys(tdf["method"]))
        metrics = list(dict.fromkeys(summary["metric"]))
        seeds = sorted(tdf["seed"].unique().tolist())
        text, best = _cells(summary, info, methods, metrics)
        blocks.append((_markdown if fmt == "md" else _latex)(
            task, methods, metrics, text, best, info, seeds))
    footer = _footer(meta)
    return "\n\n".join(blocks) + ("\n\n" + footer if footer and fmt == "md" else "") + "\n"


def summary_csv(df: pd.DataFrame) -> str:
    g = df.groupby(["task", "method", "metric"], sort=False)["value"]
    out = g.agg(["mean", "std", "count"]).reset_index().rename(columns={"count": "seeds"})
    return out.to_csv(index=False)


def _markdown(task, methods, metrics, text, best, info, seeds) -> str:
    head = ["method", *[f"{m}{_arrow(m, info)}" for m in metrics]]
    lines = [f"### {task} (seeds: {', '.join(map(str, seeds))})", "",
             "| " + " | ".join(head) + " |", "|" + "|".join(["---"] + ["---:"] * len(metrics)) + "|"]
    for method in methods:
        vals = [f"**{text[method, m]}**" if best.get((method, m)) else text[method, m]
                for m in metrics]
        lines.append("| " + " | ".join([method, *vals]) + " |")
    return "\n".join(lines)


def _latex_escape(s: str) -> str:
    return s.replace("_", r"\_").replace("±", r"$\pm$").replace("–", "--")


def _latex(task, methods, metrics, text, best, info, seeds) -> str:
    arrows = {m: _arrow(m, info, r" $\uparrow$", r" $\downarrow$") for m in metrics}
    lines = [r"\begin{table}[t]", r"\centering", r"\begin{tabular}{l" + "r" * len(metrics) + "}",
             r"\toprule",
             " & ".join(["method", *[_latex_escape(m) + arrows[m] for m in metrics]]) + r" \\",
             r"\midrule"]
    for method in methods:
        vals = [rf"\textbf{{{_latex_escape(text[method, m])}}}" if best.get((method, m))
                else _latex_escape(text[method, m]) for m in metrics]
        lines.append(" & ".join([_latex_escape(method), *vals]) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}",
              rf"\caption{{{_latex_escape(task)}: mean $\pm$ std over seeds "
              rf"{', '.join(map(str, seeds))}.}}", r"\end{table}"]
    return "\n".join(lines)


def _footer(meta: dict) -> str:
    if not meta:
        return ""
    v = meta.get("versions", {})
    libs = ", ".join(f"{k} {val}" for k, val in v.items())
    notes = [f"<sub>{task}: {line}</sub>" for task, lines in meta.get("notes", {}).items() for line in lines]
    return "\n".join([*notes, (
        f"<sub>command: `{meta.get('command')}` · commit {meta.get('commit')} · "
        f"{meta.get('date')} · {meta.get('machine')} · compute {meta.get('compute_time_s')} s "
        f"(this invocation {meta.get('wall_time_s')} s) · "
        f"{libs}</sub>")])
