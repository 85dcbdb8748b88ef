"""Figures of a run directory (``mclbench plot DIR``), each as PNG and SVG under
``DIR/<task>/plots/``, drawn only from files the run wrote (scores.csv, run.json, cells/):

- ``quality_diversity``: every method's seeds and seed mean on the task's (quality,
  diversity) plane, with the Pareto front of the means;
- ``best_of_n``: oracle quality of the first n candidates, n = 1..N (runs with best_of_n);
- ``training_curves``: the validation NLL against the step of every trained adapter whose
  training log has one (``eval_every``), methods that decode one adapter drawn once;
- the figures tasks and methods declare (:class:`harness.task.Figure`, listed in
  ``run.json``): ``shares`` of a training-log series over steps (LoRA-MCL's winners),
  ``matrices`` found by each method next to the task's reference ones (Markov's
  transition matrices), ``bars`` of some metrics per method (Tatoeba's address forms).

The same run directory gives byte-identical files (no dates or random ids in them).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from harness import tables

FORMATS = ("png", "svg")


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"svg.hashsalt": "mclbench", "font.size": 9, "axes.spines.top": False,
                         "axes.spines.right": False, "figure.dpi": 110})
    return plt


def _save(fig, directory: Path, name: str) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for fmt in FORMATS:
        path = directory / f"{name}.{fmt}"
        meta = {"Date": None} if fmt == "svg" else {"Software": None}
        fig.savefig(path, format=fmt, bbox_inches="tight", metadata=meta)
        paths.append(path)
    fig.clf()
    return paths


def _label(metric: str, info: dict) -> str:
    higher = info.get(metric, {}).get("higher_is_better")
    return metric + ("" if higher is None else (" ↑" if higher else " ↓"))


def pareto_front(points: dict[str, tuple[float, float]], higher: tuple[bool, bool]) -> list[str]:
    """Names of the points no other point beats on both axes, ordered by the first axis.

    ``higher[i]``: whether larger is better on axis i.
    """
    sign = np.array([1.0 if h else -1.0 for h in higher])
    front = []
    for name, p in points.items():
        p = np.asarray(p) * sign
        dominated = any(np.all(np.asarray(q) * sign >= p) and np.any(np.asarray(q) * sign > p)
                        for other, q in points.items() if other != name)
        if not dominated:
            front.append(name)
    return sorted(front, key=lambda n: points[n][0])


def quality_diversity(plt, tdf: pd.DataFrame, info: dict, quality: str, diversity: str,
                      colors: dict, title: str):
    fig, ax = plt.subplots(figsize=(5.2, 4.0))
    means = {}
    for method, mdf in tdf.groupby("method", sort=False):
        wide = mdf.pivot_table(index="seed", columns="metric", values="value")
        if quality not in wide or diversity not in wide:
            continue  # e.g. N = 1 methods have no pairwise diversity
        x, y = wide[diversity].to_numpy(), wide[quality].to_numpy()
        ax.scatter(x, y, s=14, alpha=0.45, color=colors[method])
        means[method] = (float(np.mean(x)), float(np.mean(y)))
        ax.scatter(*means[method], s=60, color=colors[method], edgecolor="black", zorder=3,
                   label=method)
    at: dict[tuple[float, float], list[str]] = {}  # methods with the same mean share one label
    for method, (x, y) in means.items():
        at.setdefault((round(x, 6), round(y, 6)), []).append(method)
    for point, names in at.items():
        ax.annotate(", ".join(names), point, textcoords="offset points", xytext=(5, 4), fontsize=8)
    higher = (bool(info.get(diversity, {}).get("higher_is_better")),
              bool(info.get(quality, {}).get("higher_is_better")))
    front = pareto_front(means, higher)
    if len(front) > 1:
        ax.plot([means[m][0] for m in front], [means[m][1] for m in front], "--", color="grey",
                lw=1, zorder=1, label="Pareto front")
    ax.set_xlabel(_label(diversity, info))
    ax.set_ylabel(_label(quality, info))
    ax.set_title(title)
    if ax.get_legend_handles_labels()[0]:  # a single method has no front to label
        ax.legend(fontsize=7, frameon=False)
    return fig


def best_of_n(plt, curves: dict[str, dict], colors: dict, title: str):
    fig, ax = plt.subplots(figsize=(5.2, 3.6))
    for method, c in curves.items():
        ax.plot(c["n"], c["value"], marker="o", ms=3, color=colors[method], label=method)
    metric = next(iter(curves.values()))["metric"]
    ax.set_xlabel("n: candidates per input")
    ax.set_ylabel(f"{metric} of the first n")
    ax.set_title(title)
    if ax.get_legend_handles_labels()[0]:  # a single method has no front to label
        ax.legend(fontsize=7, frameon=False)
    return fig


def training_curves(plt, logs: dict[str, dict[int, dict]], colors: dict, title: str):
    """Validation NLL against the step: per adapter, each seed thin, the seed mean thick.
    ``logs``: label -> seed -> training log."""
    fig, ax = plt.subplots(figsize=(6.0, 3.8), layout="constrained")
    for label, by_seed in logs.items():
        color = colors[label.split(" ")[0]]
        curves = [np.asarray(log["val_nll"], dtype=float) for log in by_seed.values()]
        steps = next(iter(by_seed.values()))["val_step"]
        for curve in curves:
            ax.plot(steps, curve, color=color, lw=0.6, alpha=0.5)
        if all(len(c) == len(steps) for c in curves):
            ax.plot(steps, np.mean(curves, axis=0), color=color, lw=1.8, marker="o", ms=2.5, label=label)
    ax.set_xlabel("training step")
    ax.set_ylabel("validation NLL (per row: best hypothesis)")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7, frameon=False)
    return fig


def _validation_logs(cells: Path, methods: list[str]) -> dict[str, dict[int, dict]]:
    """label -> seed -> log of every method whose logs have a validation curve; methods with
    identical logs (the decoders of one adapter) share one curve, labelled ``a (= b, c)``."""
    groups: list[tuple[list[str], dict[int, dict]]] = []
    for method in methods:
        logs = {int(p.parent.name[4:]): json.loads(p.read_text())
                for p in sorted((cells / method).glob("seed*/train_log.json"))}
        logs = {seed: log for seed, log in logs.items() if log.get("val_nll")}
        if logs:
            same = next((names for names, other in groups if other == logs), None)
            if same is None:
                groups.append(([method], logs))
            else:
                same.append(method)
    return {names[0] + (f" (= {', '.join(names[1:])})" if names[1:] else ""): logs for names, logs in groups}


def shares(plt, logs: dict[int, dict], spec: dict, title: str):
    """A list-valued training-log series, normalised per logged step and stacked."""
    fig, axes = plt.subplots(1, len(logs), figsize=(3.2 * len(logs), 2.8), squeeze=False,
                             layout="constrained")
    for ax, (seed, log) in zip(axes[0], sorted(logs.items()), strict=True):
        counts = np.asarray(log[spec["series"]], dtype=float)
        parts = counts / counts.sum(axis=1, keepdims=True)
        ax.stackplot(log["step"], parts.T, labels=[f"{spec['label']} {k}" for k in range(parts.shape[1])])
        ax.set_ylim(0, 1)
        ax.set_xlabel("training step")
        ax.set_title(f"seed {seed}", fontsize=8)
    axes[0][0].set_ylabel(spec["ylabel"])
    axes[0][-1].legend(fontsize=7, frameon=False, loc="upper left", bbox_to_anchor=(1, 1))
    fig.suptitle(title)
    return fig


def matrices(plt, spec: dict, found_by: dict[str, dict], title: str):
    """The reference matrices, then one row per method: its matrices, each labelled with the
    reference it was matched to (``matching``: [found index, reference index] pairs)."""
    first = next(iter(found_by.values()))
    true = np.asarray(first[spec["reference"]])
    label = spec["reference_label"]
    rows = [(spec["reference_title"], [(f"{label} {m}", true[m]) for m in range(len(true))])]
    for row_title, details in found_by.items():
        found = np.asarray(details[spec["found"]])
        if len(found) == 1:
            rows.append((row_title, [("its one model", found[0])]))
            continue
        match = {h: c for h, c in details.get(spec["matching"], [])}
        rows.append((row_title, [(f"hypothesis {h} ({label} {match.get(h, '–')})", found[h])
                                 for h in sorted(range(len(found)), key=lambda h: match.get(h, h))]))
    cols = max(len(r[1]) for r in rows)
    fig, axes = plt.subplots(len(rows), cols, figsize=(2.6 * cols, 2.5 * len(rows)), squeeze=False,
                             layout="constrained")
    for r, (name, panels) in enumerate(rows):
        for c in range(cols):
            ax = axes[r][c]
            if c >= len(panels):
                ax.axis("off")
                continue
            label, matrix = panels[c]
            ax.imshow(matrix, vmin=0, vmax=1, cmap="viridis")
            for (i, j), v in np.ndenumerate(matrix):
                ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=7,
                        color="white" if v < 0.5 else "black")
            ax.set_xticks(range(matrix.shape[1]))
            ax.set_yticks(range(matrix.shape[0]))
            ax.set_title(f"{name}: {label}", fontsize=7)
            ax.set_xlabel("next state", fontsize=7)
            ax.set_ylabel("state", fontsize=7)
    fig.suptitle(title)
    return fig


def bars(plt, tdf: pd.DataFrame, spec: dict, title: str):
    """Per method, the seed mean (bar) and spread (min–max) of each metric in ``spec["metrics"]``."""
    methods = list(dict.fromkeys(tdf["method"]))
    metrics = spec["metrics"]
    fig, ax = plt.subplots(figsize=(1.5 + 1.0 * len(methods), 3.6))
    width = 0.8 / len(metrics)
    palette = plt.get_cmap("tab10")
    for j, metric in enumerate(metrics):
        rows = [tdf[(tdf["method"] == m) & (tdf["metric"] == metric)]["value"].to_numpy() for m in methods]
        means = np.array([r.mean() if len(r) else np.nan for r in rows])
        spread = np.array([[m - r.min(), r.max() - m] if len(r) else [0, 0] for m, r in zip(means, rows,
                                                                                          strict=True)]).T
        ax.bar(np.arange(len(methods)) + (j - (len(metrics) - 1) / 2) * width, means, width, yerr=spread,
               capsize=2, color=palette(j % 10), label=spec.get("labels", {}).get(metric, metric))
    ax.set_xticks(range(len(methods)), methods, rotation=20, fontsize=8)
    ax.set_ylabel(spec.get("ylabel", ""))
    ax.set_title(title)
    if ax.get_legend_handles_labels()[0]:  # a single method has no front to label
        ax.legend(fontsize=7, frameon=False)
    return fig


def _read(path: Path) -> dict | None:
    return json.loads(path.read_text()) if path.is_file() else None


def plot_run(run_dir: str | Path, dest: str | Path | None = None) -> list[Path]:
    """Draw every figure the run directory has data for, into ``dest`` as
    ``<task>/plots/<figure>.<format>`` (default: the run directory, whose files are checked
    against its manifest first; a ``dest`` is given while publishing); returns the files."""
    run_dir = Path(run_dir)
    df, meta = tables.load(run_dir, published=dest is None)
    dest = Path(dest) if dest is not None else run_dir
    plt = _pyplot()
    written: list[Path] = []
    for task in df["task"].unique():
        tdf = df[df["task"] == task]
        info = {m["name"]: m for m in meta.get("metrics", {}).get(task, [])}
        axes = meta.get("plots", {}).get(task, {})
        methods = list(dict.fromkeys(tdf["method"]))
        palette = plt.get_cmap("tab10")
        colors = {m: palette(i % 10) for i, m in enumerate(methods)}
        out = dest / task / "plots"
        cells = run_dir / "cells" / task
        if axes.get("quality_diversity"):
            quality, diversity = axes["quality_diversity"]
            fig = quality_diversity(plt, tdf, info, quality, diversity, colors,
                                    f"{task}: quality vs diversity (dots: seeds)")
            written += _save(fig, out, "quality_diversity")
        first = min(tdf["seed"])
        curves = {m: c for m in methods if (c := _read(cells / m / f"seed{first}" / "best_of_n.json"))}
        if curves:
            written += _save(best_of_n(plt, curves, colors, f"{task}: best-of-N (seed {first})"),
                             out, "best_of_n")
        if logs := _validation_logs(cells, methods):
            written += _save(training_curves(plt, logs, colors, f"{task}: validation NLL while training "
                                             "(thin: seeds; thick: mean)"), out, "training_curves")
        for figure in axes.get("figures", []):
            written += _declared(plt, figure, task, tdf, cells, first, out)
        plt.close("all")
    return written


def _declared(plt, figure: dict, task: str, tdf: pd.DataFrame, cells: Path, first_seed: int,
              out: Path) -> list[Path]:
    """A figure a task or method declared (see :class:`harness.task.Figure`)."""
    spec, methods = figure["options"], figure["methods"]
    if figure["kind"] == "bars":  # from the scores of every method
        title = f"{task}: {spec['title']} (bars: seed mean; whiskers: min–max)"
        return _save(bars(plt, tdf, spec, title), out, figure["name"])
    if figure["kind"] == "shares":
        written = []
        for method in methods:
            logs = {int(p.parent.name[4:]): json.loads(p.read_text())
                    for p in sorted((cells / method).glob("seed*/train_log.json"))}
            if logs and all(spec["series"] in log for log in logs.values()):
                name = figure["name"] if len(methods) == 1 else f"{figure['name']}_{method}"
                written += _save(shares(plt, logs, spec, f"{task}: {spec['title']}"), out, name)
        return written
    if figure["kind"] == "matrices":
        found_by = {title: details for method, title in methods.items()
                    if (details := _read(cells / method / f"seed{first_seed}" / "details.json"))
                    and spec["found"] in details}
        if not found_by:
            return []
        fig = matrices(plt, spec, found_by, f"{task}: {spec['title']} (seed {first_seed})")
        return _save(fig, out, figure["name"])
    raise ValueError(f"unknown figure kind {figure['kind']!r} (figure {figure['name']!r})")
