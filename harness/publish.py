"""Publish a finished run: ``scores.csv``, ``significance.csv`` (each row against its column's
best, :mod:`harness.metrics.significance`), ``run.json`` (provenance), the leaderboards in
Markdown / CSV / LaTeX, the figures, and each cell's small artifacts under ``cells/``.

A separate step from running (the CLI calls it with the runner's :class:`RunResult`): a
re-run whose numbers, code and settings are unchanged leaves every file as it is.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import time
from pathlib import Path

from harness import tables
from harness.cache import write_json_atomic
from harness.config import as_dict
from harness.fingerprint import library_versions as installed_versions
from harness.method import COST_METRICS, Method
from harness.plan import Cell
from harness.runner import CellRecord, RunResult
from harness.score_stages import curve_metric, reported_metrics
from harness.score_stages import notes as metric_notes
from harness.task import Task

CODE_PATHS = ["harness", "methods", "tasks", "configs", "pyproject.toml"]


def write(result: RunResult, command: str, plots: bool = True) -> Path:
    """Write the run's outputs into ``result.spec.output``; returns that folder."""
    output = Path(result.spec.output)
    output.mkdir(parents=True, exist_ok=True)
    for record in result.records:
        export_cell(output, record)
    prune_cells(output, {_cell_dir(output, r.cell) for r in result.records})
    df = result.scores
    provenance = _provenance(result, command)
    csv = df.to_csv(index=False)
    tests = result.significance.to_csv(index=False)
    if _unchanged(output, csv, tests, provenance):
        return output  # same code, same run, same numbers: leave the published files as they are
    write_json_atomic(output / "run.json", provenance)
    for name, text in (("scores.csv", csv), (tables.SIGNIFICANCE, tests)):
        tmp = output / f".{name}.tmp"
        tmp.write_text(text)
        os.replace(tmp, output / name)
    (output / "leaderboard.md").write_text(tables.render(output, "md"))
    for task in df["task"].unique():  # one folder per task, its table in every format
        (output / task).mkdir(exist_ok=True)
        for fmt, ext in (("md", "md"), ("csv", "csv"), ("latex", "tex")):
            (output / task / f"leaderboard.{ext}").write_text(tables.render(output, fmt, task=task))
    if plots:
        from harness.plots import plot_run

        plot_run(output)
    return output


def _cell_dir(output: Path, cell: Cell) -> Path:
    return output / "cells" / cell.task.name / cell.method.name / f"seed{cell.seed}"


def prune_cells(output: Path, keep: set[Path]) -> None:
    """Remove the cell folders of an earlier run that this run does not hold (another seed
    or method; the runner refuses to drop published cells without ``--overwrite``), so that
    ``cells/`` and ``scores.csv`` describe the same run."""
    for folder in sorted((output / "cells").glob("*/*/seed*")):
        if folder not in keep:
            shutil.rmtree(folder)
    for parent in sorted((output / "cells").glob("*/*"), reverse=True) + sorted((output / "cells").glob("*")):
        if parent.is_dir() and not any(parent.iterdir()):
            parent.rmdir()


def export_cell(output: Path, record: CellRecord) -> None:
    """Copy the small per-cell artifacts next to the tables (for plots and browsing); a file
    that is already there with the same bytes is left alone."""
    dest = _cell_dir(output, record.cell)
    dest.mkdir(parents=True, exist_ok=True)
    sources = [record.decode_dir / "candidates.jsonl", record.score_dir / "details.json"]
    if (record.decode_dir / "train_log.json").exists():
        sources.append(record.decode_dir / "train_log.json")
    if record.curve_dir is not None:
        sources.append(record.curve_dir / "best_of_n.json")
    for src in sources:
        target = dest / src.name
        if not (target.exists() and target.read_bytes() == src.read_bytes()):
            shutil.copyfile(src, target)


def _provenance(result: RunResult, command: str) -> dict:
    cells = [r.cell for r in result.records]
    tasks = {c.task.name: c.task for c in cells}
    # a list, not a mapping: the task's column order must survive sorted JSON keys
    metrics = {name: [{"name": k, "higher_is_better": v.higher_is_better, "description": v.description}
                      for k, v in {**reported_metrics(t), **COST_METRICS}.items()]
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


def _unchanged(output: Path, csv: str, tests: str, provenance: dict) -> bool:
    try:
        old_csv = (output / "scores.csv").read_text()
        old_tests = (output / tables.SIGNIFICANCE).read_text()
        old = json.loads((output / "run.json").read_text())
        for path in ["leaderboard.md", *(f"{t}/leaderboard.{ext}" for t in provenance["tasks"]
                                         for ext in ("md", "csv", "tex"))]:
            (output / path).stat()
    except (OSError, ValueError):
        return False
    same = ("command", "commit", "tasks", "methods", "seeds", "best_of_n")
    return (old_csv == csv and old_tests == tests
            and all(old.get(k) == json.loads(json.dumps(provenance[k])) for k in same))


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
