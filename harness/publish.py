"""Publish a finished run: ``scores.csv``, ``significance.csv`` (each row against its column's
best, :mod:`harness.metrics.significance`), ``run.json`` (provenance), the leaderboards in
Markdown / CSV / LaTeX, the figures, and each cell's small artifacts under ``cells/``.

A separate step from running (the CLI calls it with the runner's :class:`RunResult`, holding
the output folder's lock). Publishing goes through :class:`harness.manifest.Publisher`: each
file is written atomically and only where its bytes change, a file mclbench did not write is
never overwritten or pruned, and a published file that was damaged or deleted is restored (and
reported). A re-run whose numbers, code and settings are unchanged leaves every file as it is.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from harness import tables
from harness.config import as_dict
from harness.fingerprint import library_versions as installed_versions
from harness.manifest import Publisher
from harness.method import Method
from harness.plan import Cell
from harness.runner import CellRecord, RunResult
from harness.score_stages import INPUTS, curve_metric, reported_metrics
from harness.score_stages import notes as metric_notes
from harness.stages import PROBES
from harness.task import Task

CODE_PATHS = ["harness", "methods", "tasks", "configs", "pyproject.toml"]


@dataclass
class Published:
    """What :func:`write` did: the folder, the files it wrote, those of them it restored (damaged
    or missing since the last publication) and the files of the last publication it pruned."""

    output: Path
    written: list[str]
    restored: list[str]
    pruned: list[str]


def write(result: RunResult, command: str, plots: bool = True, overwrite: bool = False) -> Published:
    """Publish the run into ``result.spec.output`` (see the module docstring)."""
    output = Path(result.spec.output)
    output.mkdir(parents=True, exist_ok=True)
    pub = Publisher(output, overwrite)
    damaged = pub.damaged()
    for record in result.records:
        export_cell(pub, record)
    provenance = _provenance(result, command)
    pub.write("run.json", _run_json(output, provenance))
    pub.write("scores.csv", result.scores.to_csv(index=False))
    pub.write(tables.SIGNIFICANCE, result.significance.to_csv(index=False))
    pub.write("leaderboard.md", tables.render(output, "md", published=False))  # reads the files just written
    for task in result.scores["task"].unique():  # one folder per task, its table in every format
        for fmt, ext in (("md", "md"), ("csv", "csv"), ("latex", "tex")):
            pub.write(f"{task}/leaderboard.{ext}", tables.render(output, fmt, task=task, published=False))
    old_plots = {rel: d for rel, d in pub.before.items() if "/plots/" in rel and rel.count("/") == 2}
    if plots and (pub.changed or not old_plots or set(old_plots) & set(damaged)):
        from harness.plots import plot_run

        with tempfile.TemporaryDirectory(dir=output, prefix=".plots-") as staging:
            for path in plot_run(output, dest=Path(staging)):
                pub.write(path.relative_to(staging).as_posix(), path.read_bytes())
    else:  # nothing the figures read changed: they stay as published
        pub.files.update({rel: d for rel, d in old_plots.items() if rel not in damaged})
    if "report.html" in pub.before:  # `mclbench view` made one: it follows the tables
        from harness.view import render

        pub.write("report.html", render(output, published=False))
    pruned = pub.close()
    return Published(output, pub.changed, [rel for rel in damaged if rel in pub.changed], pruned)


def _run_json(output: Path, provenance: dict) -> str:
    """``run.json``: the published one where command, commit, grid and seeds are the same (its
    date and wall time stay those of the run that computed the numbers), else this run's."""
    text = json.dumps(provenance, indent=2, sort_keys=True, default=str)
    try:
        old_text = (output / "run.json").read_text()
        old = json.loads(old_text)
    except (OSError, ValueError):
        return text
    same = ("command", "commit", "tasks", "methods", "seeds", "best_of_n", "metrics", "notes", "plots")
    fresh = json.loads(text)
    return old_text if isinstance(old, dict) and all(old.get(k) == fresh.get(k) for k in same) else text


def _cell_dir(cell: Cell) -> str:
    return f"cells/{cell.task.name}/{cell.method.name}/seed{cell.seed}"


def export_cell(pub: Publisher, record: CellRecord) -> None:
    """Copy the small per-cell artifacts next to the tables (for plots and browsing)."""
    sources = [record.decode_dir / "candidates.jsonl", record.score_dir / "details.json",
               record.score_dir / INPUTS]
    for name in ("train_log.json", PROBES):  # probes: what compare's NLL columns read
        if (record.decode_dir / name).exists():
            sources.append(record.decode_dir / name)
    if record.curve_dir is not None:
        sources.append(record.curve_dir / "best_of_n.json")
    for src in sources:
        pub.write(f"{_cell_dir(record.cell)}/{src.name}", src.read_bytes())


def _provenance(result: RunResult, command: str) -> dict:
    cells = [r.cell for r in result.records]
    tasks = {c.task.name: c.task for c in cells}
    costs: dict[str, dict] = {name: {} for name in tasks}  # the cost columns of a task's methods
    for c in cells:
        costs[c.task.name].update(c.method.cost_metrics)
    # a list, not a mapping: the task's column order must survive sorted JSON keys
    metrics = {name: [{"name": k, "higher_is_better": v.higher_is_better, "description": v.description}
                      for k, v in {**reported_metrics(t), **costs[name]}.items()]
               for name, t in tasks.items()}
    notes = {name: metric_notes(t) for name, t in tasks.items()}
    for r in result.records:  # what could not be computed while scoring, and why
        lines = [f"{m}: n/a — {why}" for m, why in r.unavailable.items()]
        notes[r.cell.task.name] += [line for line in lines if line not in notes[r.cell.task.name]]
    return {
        "command": command,
        "commit": git_commit(),
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.system()}",
        "wall_time_s": round(result.wall_s, 1),  # this invocation (cached stages cost ~0)
        "compute_time_s": round(sum(r.compute_s for r in result.records), 1),  # as recorded
        "versions": library_versions(),
        "tasks": {name: as_dict(t.config) for name, t in tasks.items()},
        "methods": {name: {c.method.name: as_dict(c.method.config) for c in cells if c.task.name == name}
                    for name in tasks},
        **({"variants": result.spec.variants} if result.spec.variants else {}),  # row -> method it runs
        "seeds": result.spec.seeds,
        "best_of_n": result.spec.best_of_n,
        "metrics": metrics,
        "notes": {name: lines for name, lines in notes.items() if lines},
        "plots": {name: {"quality_diversity": t.quality_diversity,
                         "best_of_n": curve_metric(t),
                         "figures": declared_figures(t, _methods_of(cells, name))}
                  for name, t in tasks.items()},
    }


def _methods_of(cells: list[Cell], task: str) -> list[Method]:
    return [c.method for c in cells if c.task.name == task]


def declared_figures(task: Task, methods: list[Method]) -> list[dict]:
    """The figures of a task and its methods, as ``harness.plots`` reads them from run.json:
    a task figure lists its row methods (``{method: row title}``), a method figure its own."""
    out = [{"name": f.name, "kind": f.kind, "options": f.options,
            "methods": {m.name: m.figure_rows[f.name] for m in methods if f.name in m.figure_rows}}
           for f in task.figures]
    for m in {m.name: m for m in methods}.values():
        out += [{"name": f.name, "kind": f.kind, "options": f.options, "methods": [m.name]}
                for f in m.figures]
    return out


def git_commit() -> str:
    """The last commit that changed the code (not docs or results), with ``-dirty`` if the
    code differs from it: commits that only touch the README leave a run's provenance,
    and so a re-run's outputs, unchanged."""
    root = Path(__file__).resolve().parents[1]
    try:
        out = subprocess.run(["git", "log", "-1", "--format=%h", "--", *CODE_PATHS],
                             capture_output=True, text=True, check=True, cwd=root)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--",
                                *CODE_PATHS], capture_output=True, text=True, cwd=root).stdout.strip()
        return (out.stdout.strip() or "unknown") + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def library_versions() -> dict[str, str]:
    """Python and the libraries a reader needs to reproduce the tables (for run.json)."""
    return {"python": platform.python_version(), **installed_versions(
        ("mclbench", "torch", "transformers", "peft", "numpy", "pandas", "sacrebleu", "pycocoevalcap"))}
