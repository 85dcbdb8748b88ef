"""Leaderboards from a run directory's tidy ``scores.csv``: Markdown, CSV or LaTeX.

One table per task: a row per method, a column per metric with its direction (↑ higher
is better, ↓ lower is better), mean ± std over seeds, the best value per column in bold.
Where the scores hold ``ci95/<metric>`` (half the width of a 95 % bootstrap interval over
test inputs, see :func:`harness.score_stages.bootstrap_half_widths`) the cell also shows its
mean over seeds in brackets: the input-sampling uncertainty that a few seeds cannot show.
Where the run holds ``significance.csv`` (:mod:`harness.metrics.significance`), a cell that
is not significantly worse than its column's best (paired bootstrap over test inputs, pooled
over seeds, p ≥ 0.05, no correction for multiple comparisons) carries a dagger (†), and the
CSV leaderboard a ``p_value`` column (empty for the best and for columns that do not
decompose over inputs).
"""

from __future__ import annotations

import html
import json
from pathlib import Path

import numpy as np
import pandas as pd

from harness import manifest
from harness.metrics.significance import ALPHA

FORMATS = ("md", "csv", "latex", "html")
CI_PREFIX = "ci95/"
SIGNIFICANCE = "significance.csv"
DAGGER = "†"
LEGEND = (f"bold: the best of its column; {DAGGER}: not significantly worse than it (paired bootstrap "
          "over test inputs, 1000 resamples, the same resample in every seed, statistic = the mean over "
          f"seeds; one-sided p ≥ {ALPHA}, no correction for multiple comparisons; p-values in "
          "leaderboard.csv)")


KEY = ["task", "method", "seed", "metric"]


def load(run_dir: str | Path, published: bool = True) -> tuple[pd.DataFrame, dict]:
    """A run folder's scores and provenance, checked: the files as mclbench published them
    (:func:`harness.manifest.verify`; ``published`` False while publishing, before the
    manifest is written), a whole CSV of the right columns, one row per cell and metric. A
    damaged folder is an OutputError naming the file."""
    run_dir = Path(run_dir)
    path = run_dir / "scores.csv"
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} not found: pass the --output directory of a finished `mclbench run`"
        )
    if published:
        manifest.verify(run_dir)
    text = path.read_text()
    if text and not text.endswith("\n"):
        raise manifest.OutputError(f"{path} ends in the middle of a line: it was truncated; re-run the "
                                   "`mclbench run` that wrote it")
    try:
        df = pd.read_csv(path)
    except (ValueError, pd.errors.ParserError) as exc:
        raise manifest.OutputError(f"{path} is not a scores table ({str(exc).splitlines()[0]})") from None
    missing = {*KEY, "value"} - set(df.columns)
    if missing:
        raise manifest.OutputError(f"{path}: missing columns {sorted(missing)}")
    twice = df[df.duplicated(KEY)]
    if len(twice):
        row = twice.iloc[0]
        raise manifest.OutputError(f"{path}: {row['task']} / {row['method']} / seed {row['seed']} / "
                                   f"{row['metric']} appears twice; re-run the `mclbench run` that wrote it")
    meta_path = run_dir / "run.json"
    try:
        meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
    except ValueError:
        raise manifest.OutputError(f"{meta_path} is not valid JSON: it was damaged") from None
    return df, meta


def task_tokenize(meta: dict, task: str) -> str:
    """The sacreBLEU tokenisation a run scored ``task``'s BLEU-based metrics with (its
    ``run.json``; 13a, sacreBLEU's default, where the task's config has none)."""
    return (meta.get("tasks", {}).get(task) or {}).get("tokenize") or "13a"


def load_significance(run_dir: str | Path) -> pd.DataFrame:
    """``significance.csv`` of a run (task, metric, method, best, delta, p_value): empty when
    the run has none (written before significance tests, or by hand)."""
    path = Path(run_dir) / SIGNIFICANCE
    if not path.is_file():
        return pd.DataFrame(columns=["task", "metric", "method", "best", "delta", "p_value"])
    return pd.read_csv(path)


def p_values(tests: pd.DataFrame, task: str) -> dict[tuple[str, str], float]:
    """(method, metric) -> p-value against the column's best (not for the best itself)."""
    sub = tests[(tests["task"] == task) & tests["p_value"].notna()]
    return {(m, k): float(p) for m, k, p in zip(sub["method"], sub["metric"], sub["p_value"], strict=True)}


def summarise(df: pd.DataFrame, metric_info: dict) -> pd.DataFrame:
    """Per (method, metric): mean, std and number of seeds, methods in first-seen order."""
    g = df.groupby(["method", "metric"], sort=False)["value"]
    out = g.agg(["mean", "std", "count"]).reset_index()
    out = out[out["metric"].isin(list(metric_info))]  # the task's declared columns, in order
    rank = {m: i for i, m in enumerate(metric_info)}
    return out.sort_values("metric", key=lambda s: s.map(rank), kind="stable")


def _half_widths(df: pd.DataFrame) -> dict[tuple[str, str], float]:
    """(method, metric) -> mean over seeds of the bootstrap half-width, where scored."""
    ci = df[df["metric"].str.startswith(CI_PREFIX)]
    means = ci.groupby(["method", "metric"], sort=False)["value"].mean()
    return {(method, metric[len(CI_PREFIX):]): v for (method, metric), v in means.items()}


def _cells(summary: pd.DataFrame, metric_info: dict, methods: list[str], metrics: list[str],
           half_widths: dict, p: dict) -> tuple[dict, dict]:
    """Formatted values (a dagger where ``p``, against the column's best, is ≥ ALPHA and the
    value is not itself bold: a tie with the best) and which ones are the best of their column."""
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
            if (method, metric) in half_widths:
                text[method, metric] += f" [±{half_widths[method, metric]:.4f}]"
            best[method, metric] = target is not None and np.isclose(mean, target)
            if p.get((method, metric), 0.0) >= ALPHA and not best[method, metric]:  # bold says more
                text[method, metric] += f" {DAGGER}"
    return text, best


def format_value(mean: float, std: float) -> str:
    """4 decimals, or none for whole numbers (counts, parameters); ``± std`` when it is not 0."""
    whole = float(mean).is_integer() and float(std) == 0.0
    text = f"{mean:.0f}" if whole else f"{mean:.4f}"
    return text + (f" ± {std:.4f}" if std and not np.isnan(std) else "")


def _arrow(metric: str, metric_info: dict, up: str = " ↑", down: str = " ↓") -> str:
    higher = metric_info.get(metric, {}).get("higher_is_better")
    return "" if higher is None else (up if higher else down)


def render(run_dir: str | Path, fmt: str = "md", task: str | None = None,
           metrics: list[str] | None = None, footer: bool = True, published: bool = True) -> str:
    """The leaderboard of every task in ``run_dir`` (or of ``task`` only) in ``fmt``;
    ``metrics``: only these columns, in this order; ``footer``: the provenance lines;
    ``published``: see :func:`load`."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    df, meta = load(run_dir, published)
    if task is not None:
        if task not in set(df["task"]):
            have = ", ".join(df["task"].unique())
            raise ValueError(f"{run_dir}: no scores for task {task!r}; it has {have}")
        df = df[df["task"] == task]
    if fmt == "csv":
        if metrics is not None:
            unknown = sorted(set(metrics) - set(df["metric"]))
            if unknown:
                have = ", ".join(df["metric"].unique())
                raise ValueError(f"{run_dir}: no metric {unknown[0]!r}; it has {have}")
            df = df[df["metric"].isin(metrics)]
        return summary_csv(df, load_significance(run_dir))
    tests = load_significance(run_dir)
    blocks, untested = [], {}
    for name in df["task"].unique():
        info = {m["name"]: m for m in meta.get("metrics", {}).get(name, [])}
        tdf = df[df["task"] == name]
        if metrics is not None:
            unknown = [m for m in metrics if m not in info]
            if unknown:
                raise ValueError(f"{run_dir}: task {name!r} has no metric {unknown[0]!r}; "
                                 f"it has {', '.join(info)}")
            info = {m: info[m] for m in metrics}
        summary = summarise(tdf, info)
        methods = list(dict.fromkeys(tdf["method"]))
        columns = list(dict.fromkeys(summary["metric"]))
        seeds = sorted(tdf["seed"].unique().tolist())
        p = p_values(tests, name)
        text, best = _cells(summary, info, methods, columns, _half_widths(tdf), p)
        untested[name] = _untested(summary, info, columns, p)
        render_block = {"md": _markdown, "latex": _latex, "html": _html}[fmt]
        blocks.append(render_block(name, methods, columns, text, best, info, seeds))
    shown = _footer(fmt, meta, df, tests, untested) if footer else ""
    return "\n\n".join(blocks) + ("\n\n" + shown if shown else "") + "\n"


def _untested(summary: pd.DataFrame, info: dict, columns: list[str], p: dict) -> list[str]:
    """The ranked columns (a direction, two or more values) without a test against their best:
    where no dagger can appear, the absence of one says nothing."""
    tested = {metric for _, metric in p}
    out = []
    for metric in columns:
        values = summary.loc[summary["metric"] == metric, "mean"].dropna()
        ranked = info.get(metric, {}).get("higher_is_better") is not None and len(values) > 1
        if ranked and metric not in tested:
            out.append(metric)
    return out


def _footer(fmt: str, meta: dict, df: pd.DataFrame, tests: pd.DataFrame,
            untested: dict[str, list[str]]) -> str:
    """The provenance lines under the tables (and, where a test ran, the dagger's legend and
    the columns it did not run on)."""
    lines = footer_lines(meta, list(df["task"].unique()))
    if not tests[tests["task"].isin(df["task"].unique())].empty:
        notes = [f"{task}: no test on {', '.join(columns)} (bold only: they do not decompose over inputs, "
                 "or the run predates their test)" for task, columns in untested.items() if columns]
        lines[:0] = [LEGEND, *notes]
    if fmt == "md":
        return "\n".join(f"<sub>{line}</sub>" for line in lines)
    if fmt == "html":
        return "\n".join(f'<p class="provenance">{html.escape(line)}</p>' for line in lines)
    return "\n".join("% " + line for line in lines)


def summary_csv(df: pd.DataFrame, tests: pd.DataFrame) -> str:
    """Mean, std and seeds per (task, method, metric), and the p-value of the paired test
    against the column's best (``best``) where one was made."""
    g = df.groupby(["task", "method", "metric"], sort=False)["value"]
    out = g.agg(["mean", "std", "count"]).reset_index().rename(columns={"count": "seeds"})
    tested = tests[["task", "method", "metric", "best", "p_value"]]
    return out.merge(tested, on=["task", "method", "metric"], how="left").to_csv(index=False)


def _markdown(task, methods, metrics, text, best, info, seeds) -> str:
    head = ["method", *[f"{m}{_arrow(m, info)}" for m in metrics]]
    lines = [f"### {task} (seeds: {', '.join(map(str, seeds))})", "",
             "| " + " | ".join(head) + " |", "|" + "|".join(["---"] + ["---:"] * len(metrics)) + "|"]
    for method in methods:
        vals = [f"**{text[method, m]}**" if best.get((method, m)) else text[method, m]
                for m in metrics]
        lines.append("| " + " | ".join([method, *vals]) + " |")
    return "\n".join(lines)


def _html(task, methods, metrics, text, best, info, seeds) -> str:
    def cell(method, metric):
        value = html.escape(text[method, metric])
        return f"<td><b>{value}</b></td>" if best.get((method, metric)) else f"<td>{value}</td>"

    head = "".join(f"<th>{html.escape(m + _arrow(m, info))}</th>" for m in metrics)
    rows = "".join(f"<tr><th>{html.escape(method)}</th>{''.join(cell(method, m) for m in metrics)}</tr>"
                   for method in methods)
    return (f'<table class="leaderboard"><caption>{html.escape(task)} (seeds: '
            f"{', '.join(map(str, seeds))})</caption><thead><tr><th>method</th>{head}</tr></thead>"
            f"<tbody>{rows}</tbody></table>")


_LATEX = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
          "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
          "±": r"$\pm$", "–": "--", DAGGER: r"$^\dagger$"}


def _latex_escape(s: str) -> str:
    """``s`` as LaTeX text: its special characters escaped (names come from users' files)."""
    return "".join(_LATEX.get(ch, ch) for ch in s)


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
              rf"{', '.join(map(str, seeds))}; in brackets, the 95\% bootstrap half-width over "
              r"test inputs where computed; $^\dagger$: not significantly worse than the best of "
              r"its column (bold), paired bootstrap over test inputs, $p \geq 0.05$.}", r"\end{table}"]
    return "\n".join(lines)


def footer_lines(meta: dict, tasks: list[str]) -> list[str]:
    """Provenance: the tasks' notes (metric signatures), then command, commit, date, machine,
    time and library versions."""
    if not meta:
        return []
    v = meta.get("versions", {})
    libs = ", ".join(f"{k} {val}" for k, val in v.items())
    notes = [f"{task}: {line}" for task, lines in meta.get("notes", {}).items() if task in tasks
             for line in lines]
    return [*notes, (
        f"command: `{meta.get('command')}` · commit {meta.get('commit')} · "
        f"{meta.get('date')} · {meta.get('machine')} · compute {meta.get('compute_time_s')} s "
        f"(this invocation {meta.get('wall_time_s')} s) · {libs}")]
