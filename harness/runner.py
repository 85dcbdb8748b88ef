"""Expand tasks × methods × seeds and carry every cell through the cached stages.

    backbone -> train -> decode -> score -> (MLflow)

Each stage's artifact is keyed by a hash of everything that determines it (its config,
the data fingerprint, the upstream keys, the source code that computes it and the versions
of the libraries it runs on, see :mod:`harness.fingerprint`) and written atomically
(see :mod:`harness.cache`), so a re-run reuses everything, an interrupted run resumes
where it stopped, and cells that share an upstream stage (two decoders of one adapter)
compute it once.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import platform
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from harness import stages, tables
from harness.cache import Cache, cache_location, file_sha256, is_uri, stable_hash, write_json_atomic
from harness.config import ConfigError, RunSpec, as_dict, build, suggest
from harness.files import check_writable_dir
from harness.fingerprint import code_fingerprint
from harness.fingerprint import library_versions as key_libraries
from harness.method import COST_METRICS, Method
from harness.registry import get_method, get_task
from harness.stages import read_candidates
from harness.task import Example, Task

log = logging.getLogger(__name__)

SCORE_COLUMNS = ["task", "method", "seed", "metric", "value"]
SCORES_VERSION = 3  # 2: methods' cost metrics; 3: ci95/<metric> bootstrap half-widths


@dataclass
class Cell:
    task: Task
    method: Method
    seed: int
    index: int = -1  # position in resolve()'s grid (jobs of other processes rebuild it)
    best_of_n: bool = False  # the method set to return spec.best_of_n candidates

    @property
    def label(self) -> str:
        return f"{self.task.name}/{self.method.name}/seed{self.seed}"


def resolve(spec: RunSpec, check_backbones: bool = True) -> list[Cell]:
    """Build every plugin config and the grid, so that bad input fails before any compute:
    an empty grid, unknown names and parameters, values out of range, and (``check_backbones``)
    settings a backbone cannot take, checked on its weightless skeleton."""
    if not spec.tasks:
        raise ConfigError("no task selected; pass --tasks (see `mclbench list`)")
    if not spec.methods:
        raise ConfigError("no method selected; pass --methods (see `mclbench list`)")
    if not spec.seeds:
        raise ConfigError("no seed selected; pass at least one, e.g. --seeds 0")
    check_per_task(spec)
    tasks = {}
    for name, overrides in spec.tasks.items():
        cls = get_task(name)
        tasks[name] = cls(build(cls.Config, overrides, f"task {name!r}"))
    cells = []
    for task in tasks.values():
        skeleton = None
        for mname in spec.methods:
            cls = get_method(mname)
            fields = {f.name for f in dataclasses.fields(cls.Config)}
            overrides = spec.method_overrides(task.name, mname, fields)
            method = None
            for seed in spec.seeds:
                method = cls(build(cls.Config, overrides, f"method {mname!r} on {task.name!r}"))
                try:
                    method.resolve(task)
                except ValueError as exc:
                    raise ConfigError(str(exc)) from None
                cells.append(Cell(task, method, seed, index=len(cells)))
            if check_backbones and method is not None:
                if skeleton is None:
                    skeleton = task.backbone_skeleton(spec.seeds[0]) or False
                try:
                    if skeleton is not False:
                        method.check_backbone(skeleton)
                except ValueError as exc:
                    raise ConfigError(f"{exc} (task {task.name!r})") from None
    return cells


def check_per_task(spec: RunSpec) -> None:
    """Every name and key under ``per_task:`` exists: a task, then ``method`` or a method,
    then that method's parameters (``method``: a parameter of some selected method)."""
    for task_name, per_method in spec.per_task.items():
        get_task(task_name)  # a misspelt name fails here, with the list of tasks
        for mname, overrides in per_method.items():
            if mname == "method":  # every method that has the key
                valid = sorted({f.name for n in spec.methods
                                for f in dataclasses.fields(get_method(n).Config)})
            else:
                valid = [f.name for f in dataclasses.fields(get_method(mname).Config)]
            unknown = sorted(set(overrides) - set(valid))
            if unknown:
                raise ConfigError(f"per_task.{task_name}.{mname}: unknown parameter {unknown[0]!r}"
                                  f"{suggest(unknown[0], valid)}; valid parameters: {', '.join(valid)}")


def plugin_keys(kind: str, name: str) -> list[str]:
    """The parameters of a registered task or method."""
    cls = get_task(name) if kind == "task" else get_method(name)
    return [f.name for f in dataclasses.fields(cls.Config)]


@dataclass
class RunResult:
    """What :meth:`Runner.run` did: the scores it published and how many cells it computed."""

    output: Path
    scores: pd.DataFrame
    cells: int
    computed: int  # cells with a stage computed by this run
    cached: int  # cells whose every artifact was in the cache

    def summary(self) -> str:
        return (f"results written to {self.output} ({self.cells} cells, {self.computed} computed, "
                f"{self.cached} cached)")


class Runner:
    def __init__(self, spec: RunSpec, tracking: bool = True, plots: bool = True,
                 overwrite: bool = False):
        self.spec = spec
        self.overwrite = overwrite  # replace an output table that holds cells this run lacks
        self.plots = plots
        self.cache = Cache(spec.cache_dir)
        self.output = Path(spec.output)
        self.tracking = tracking
        self._keys: dict[int, dict[str, str | None]] = {}
        self._variants: dict[int, Cell | None] = {}

    # ---------------------------------------------------------------------- keys
    def keys(self, cell: Cell) -> dict[str, str | None]:
        """The cache key of each stage of a cell (``train`` is None when nothing trains).

        Computed once per cell: the train key hashes the task's whole training data.
        """
        if id(cell) in self._keys:
            return self._keys[id(cell)]
        m, t = cell.method, cell.task
        # the code each stage runs (plugins, their bases, the harness modules they import)
        libs = key_libraries()
        task_code, method_code = code_fingerprint(t), code_fingerprint(m)
        stage_code = code_fingerprint(stages)
        backbone = stable_hash({"task": t.name, "version": t.version,
                                "backbone": t.backbone_spec(cell.seed),
                                "code": task_code, "libraries": libs})
        spec = m.train_spec()
        # launched training (several processes, a GPU) matches in-process training only up to
        # float rounding: a key of its own
        processes = {"processes": self.spec.processes, "accelerate_config": (
            file_sha256(Path(self.spec.accelerate_config)) if self.spec.accelerate_config else None)
        } if self.spec.launches else {}
        train = None if spec is None else stable_hash(
            {"backbone": backbone, "data": t.data_fingerprint(), "train": spec, "seed": cell.seed,
             "code": [task_code, code_fingerprint(*m.train_code())], **processes})
        decode = stable_hash({"upstream": train or backbone, "method": m.name,
                              "method_version": m.version, "decode": m.decode_spec(),
                              "task": t.name, "task_version": t.version,
                              "task_config": as_dict(t.config), "seed": cell.seed,
                              "code": [task_code, method_code, stage_code], "libraries": libs})
        score = stable_hash({"decode": decode, "task": t.name, "task_version": t.version,
                             "scores": SCORES_VERSION, "code": [task_code, method_code, stage_code]})
        self._keys[id(cell)] = {"backbone": backbone, "train": train, "decode": decode,
                                "score": score}
        return self._keys[id(cell)]

    # -------------------------------------------------------------------- stages
    def _trained(self, cell: Cell) -> tuple[Path, Path | None]:
        """The backbone's and the trained state's folders (None if nothing trains),
        computed where missing."""
        t, m = cell.task, cell.method
        bkey, tkey = self.keys(cell)["backbone"], self.keys(cell)["train"]
        bdir, _ = self.cache.get_or_compute(
            "backbone", bkey, lambda d: t.build_backbone(cell.seed).save_pretrained(d),
            describe={"task": t.name, "seed": cell.seed})
        if tkey is None:
            return bdir, None
        def train(d: Path) -> None:
            work = self.cache.partial_dir("train", tkey)  # checkpoints, kept if interrupted
            if self.spec.launches:
                self._launch(cell, "train", d, bdir, work_dir=str(work))
            else:
                m.train(t.load_backbone(bdir), t, cell.seed, d, work)

        tdir, reused = self.cache.get_or_compute("train", tkey, train,
                                                 describe={"cell": cell.label, "train": m.train_spec()})
        log.debug("%s: train %s", cell.label, "reused" if reused else "done")
        return bdir, tdir

    def _model(self, cell: Cell, state: dict):
        """Backbone + trained state, built once per cell and only if a stage needs it."""
        if "model" not in state:
            bdir, tdir = self._trained(cell)
            # Load from the artifact even right after training, so that a fresh run and a
            # cached run decode exactly the same weights.
            state["model"] = cell.method.load(cell.task.load_backbone(bdir), tdir)
        return state["model"]

    def _launch(self, cell: Cell, stage: str, out_dir: Path, backbone_dir: Path, **paths) -> None:
        from harness.distributed import launch

        spec = dataclasses.asdict(self.spec) | {"cache_dir": cache_location(self.spec.cache_dir)}
        job = {"stage": stage, "label": cell.label, "cell": cell.index, "best_of_n": cell.best_of_n,
               "spec": spec,
               "out_dir": str(out_dir), "backbone_dir": str(backbone_dir),
               **{k: (str(v) if v is not None else None) for k, v in paths.items()}}
        launch(job, self.spec.processes, self.spec.accelerate_config)

    def _decoded(self, cell: Cell, state: dict, examples: list[Example]) -> Path:
        """The cell's decode folder (candidates.jsonl), computed if it is not cached."""
        key = self.keys(cell)["decode"]
        ddir = self.cache.get("decode", key)
        if ddir is not None:
            return ddir
        if self.spec.launches:
            bdir, tdir = self._trained(cell)

            def decode(d: Path) -> None:
                self._launch(cell, "decode", d, bdir, train_dir=tdir)
        else:
            self._model(cell, state)  # train first, so each stage's recorded time is its own

            def decode(d: Path) -> None:
                stages.decode_to(d, cell.method, self._model(cell, state), cell.task, examples, cell.seed)

        return self.cache.get_or_compute("decode", key, decode, describe={"cell": cell.label})[0]

    def run_cell(self, cell: Cell) -> tuple[dict[str, float], Path, Path, Path | None]:
        """Scores of a cell and its decode, score and train folders (train: None if none)."""
        t, m = cell.task, cell.method
        state: dict[str, Any] = {}
        examples = t.test_examples()
        keys = self.keys(cell)
        ddir = self._decoded(cell, state, examples)

        def score(d: Path) -> None:
            candidates = read_candidates(ddir / "candidates.jsonl", examples)
            stages.score_to(d, t, m, self._model(cell, state), examples, candidates, cell.seed)

        sdir, _ = self.cache.get_or_compute("score", keys["score"], score,
                                            describe={"cell": cell.label})
        scores = json.loads((sdir / "scores.json").read_text())
        tdir = self.cache.get("train", keys["train"]) if keys["train"] else None  # its log
        return scores, ddir, sdir, tdir

    def best_of_n_cell(self, cell: Cell) -> Cell | None:
        """The cell's method set to return ``spec.best_of_n`` candidates (first seed only),
        or None where the run, the task or the method has no best-of-N curve."""
        n, t = self.spec.best_of_n, cell.task
        if not n or t.best_of_n_metric is None or cell.seed != self.spec.seeds[0]:
            return None
        if id(cell) not in self._variants:
            variant = cell.method.with_candidates(n)
            self._variants[id(cell)] = (None if variant is None else
                                        Cell(t, variant, cell.seed, index=cell.index, best_of_n=True))
        return self._variants[id(cell)]

    def curve_key(self, vcell: Cell) -> str:
        return stable_hash({"decode": self.keys(vcell)["decode"], "task_version": vcell.task.version,
                            "metric": vcell.task.best_of_n_metric, "n": self.spec.best_of_n})

    def best_of_n(self, vcell: Cell) -> Path:
        """``best_of_n.json``: the oracle metric of the first n candidates, n = 1..best_of_n."""
        t, n_max = vcell.task, self.spec.best_of_n
        examples = t.test_examples()
        ddir = self._decoded(vcell, {}, examples)

        def curve(d: Path) -> None:
            candidates = read_candidates(ddir / "candidates.jsonl", examples)
            stages.best_of_n_to(d, t, vcell.method, examples, candidates, n_max)

        return self.cache.get_or_compute("curve", self.curve_key(vcell), curve,
                                         describe={"cell": vcell.label, "best_of_n": n_max})[0]

    # ----------------------------------------------------------------------- run
    def compute(self, cell: Cell) -> tuple[dict[str, float], Path, Path, Path | None, Path | None]:
        """Every artifact of a cell (computed where missing): :meth:`run_cell`'s result and
        the best-of-N curve's folder (None without one)."""
        scores, ddir, sdir, tdir = self.run_cell(cell)
        vcell = self.best_of_n_cell(cell)
        return scores, ddir, sdir, tdir, (self.best_of_n(vcell) if vcell is not None else None)

    def run(self, executor=None, on_progress: Callable[[str], None] | None = None) -> RunResult:
        """Compute every cell and write the outputs. ``executor(runner, cells)``, e.g.
        :func:`harness.executors.ray_executor`, fills the cache first (elsewhere, in
        parallel); the loop below then only reads it. Without one, cells run here in order.
        ``on_progress(line)`` hears of each finished cell (the runner prints nothing)."""
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # weight-loading bars of tiny models are noise
        start = time.time()
        cells = resolve(self.spec)
        self._preflight(cells)
        cached = sum(self._cached(cell) for cell in cells)
        self.output.mkdir(parents=True, exist_ok=True)
        if executor is not None:
            executor(self, cells)
        rows, compute_s = [], 0.0
        self._unavailable: dict[str, dict[str, str]] = {}
        for i, cell in enumerate(cells, 1):
            t0 = time.time()
            scores, ddir, sdir, tdir, curve = self.compute(cell)
            details = json.loads((sdir / "details.json").read_text())
            for metric, reason in (details.get("unavailable") or {}).items():
                self._unavailable.setdefault(cell.task.name, {})[metric] = reason
            self._export_cell(cell, ddir, sdir, tdir, curve)
            if self.tracking:
                from harness import tracking

                tracking.log_cell(cell, self.keys(cell)["score"], scores, ddir, sdir, tdir)
            compute_s += self.compute_time(cell)
            rows += [{"task": cell.task.name, "method": cell.method.name, "seed": cell.seed,
                      "metric": k, "value": v} for k, v in scores.items()]
            if on_progress is not None:
                on_progress(f"[{i}/{len(cells)}] {cell.label}: {time.time() - t0:.1f}s")
        df = pd.DataFrame(rows, columns=SCORE_COLUMNS)
        self._write_outputs(cells, df, time.time() - start, compute_s)
        return RunResult(self.output, df, cells=len(cells), computed=len(cells) - cached, cached=cached)

    def _preflight(self, cells: list[Cell]) -> None:
        """Refuse, before any work, a run whose folders cannot be written or which would
        drop published rows: cells in ``output/scores.csv`` that this run does not include
        are kept only with ``overwrite`` (which replaces the whole table)."""
        check_writable_dir(self.output, "--output")
        if not is_uri(self.spec.cache_dir):
            check_writable_dir(self.spec.cache_dir, "--cache-dir")
        published = self.output / "scores.csv"
        if self.overwrite or not published.is_file():
            return
        try:
            old = pd.read_csv(published, usecols=["task", "method", "seed"])
        except (ValueError, pd.errors.ParserError):
            raise ConfigError(f"{published} is not a scores table this tool wrote; pass --overwrite "
                              "to replace it or choose another --output") from None
        planned = {(c.task.name, c.method.name, c.seed) for c in cells}
        dropped = sorted({tuple(r) for r in old.drop_duplicates().itertuples(index=False)} - planned)
        if dropped:
            shown = ", ".join(f"{t}/{m}/seed{s}" for t, m, s in dropped[:3])
            more = f" and {len(dropped) - 3} more" if len(dropped) > 3 else ""
            raise ConfigError(f"{self.output} holds results this run does not include ({shown}{more}); "
                              "rerun with them, choose another --output, or pass --overwrite to "
                              "replace the table")

    def _cached(self, cell: Cell) -> bool:
        """Whether every artifact of the cell is in the cache already."""
        vcell = self.best_of_n_cell(cell)
        return (self.cache.get("score", self.keys(cell)["score"]) is not None
                and (vcell is None or self.cache.get("curve", self.curve_key(vcell)) is not None))

    def compute_time(self, cell: Cell) -> float:
        """Seconds the cell's stages took when they were computed (cached or not), its
        best-of-N decode and curve included."""
        seconds = sum(self.cache.elapsed(stage, key) for stage, key in self.keys(cell).items()
                      if key is not None)
        vcell = self.best_of_n_cell(cell)
        if vcell is not None:
            seconds += self.cache.elapsed("decode", self.keys(vcell)["decode"])
            seconds += self.cache.elapsed("curve", self.curve_key(vcell))
        return seconds

    def _export_cell(self, cell: Cell, ddir: Path, sdir: Path, tdir: Path | None,
                     curve: Path | None) -> None:
        """Copy the small per-cell artifacts next to the tables (for plots and browsing);
        a file that is already there with the same bytes is left alone."""
        dest = self.output / "cells" / cell.task.name / cell.method.name / f"seed{cell.seed}"
        dest.mkdir(parents=True, exist_ok=True)
        sources = [ddir / "candidates.jsonl", sdir / "details.json"]
        if tdir is not None and (tdir / "train_log.json").exists():
            sources.append(tdir / "train_log.json")
        if curve is not None:
            sources.append(curve / "best_of_n.json")
        for src in sources:
            target = dest / src.name
            if not (target.exists() and target.read_bytes() == src.read_bytes()):
                shutil.copyfile(src, target)

    def _write_outputs(self, cells: list[Cell], df: pd.DataFrame, wall: float,
                       compute_s: float) -> None:
        # a list, not a mapping: the task's column order must survive sorted JSON keys
        metrics = {c.task.name: [{"name": k, "higher_is_better": v.higher_is_better,
                                  "description": v.description}
                                 for k, v in {**c.task.metrics, **COST_METRICS}.items()]
                   for c in cells}
        notes = {c.task.name: c.task.notes() for c in {id(c.task): c for c in cells}.values()}
        for task, reasons in getattr(self, "_unavailable", {}).items():  # what failed while scoring
            lines = [f"{m}: n/a — {r}" for m, r in reasons.items()]
            notes[task] += [line for line in lines if line not in notes[task]]
        provenance = {
            "command": " ".join(["mclbench", *sys.argv[1:]]),
            "commit": git_commit(),
            "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
            "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.system()}",
            "wall_time_s": round(wall, 1),  # this invocation (cached stages cost ~0)
            "compute_time_s": round(compute_s, 1),  # all stages, as recorded when computed
            "versions": library_versions(),
            "tasks": {c.task.name: as_dict(c.task.config) for c in cells},
            "methods": {t: {c.method.name: as_dict(c.method.config) for c in cells if c.task.name == t}
                        for t in dict.fromkeys(c.task.name for c in cells)},
            "seeds": self.spec.seeds,
            "best_of_n": self.spec.best_of_n,
            "metrics": metrics,
            "notes": {name: lines for name, lines in notes.items() if lines},
            "plots": {c.task.name: {"quality_diversity": c.task.quality_diversity,
                                    "best_of_n": c.task.best_of_n_metric} for c in cells},
        }
        csv = df.to_csv(index=False)
        if self._unchanged(csv, provenance):
            return  # same code, same run, same numbers: leave the published files as they are
        write_json_atomic(self.output / "run.json", provenance)
        tmp = self.output / ".scores.csv.tmp"
        tmp.write_text(csv)
        os.replace(tmp, self.output / "scores.csv")
        (self.output / "leaderboard.md").write_text(tables.render(self.output, "md"))
        for task in df["task"].unique():  # one folder per task, its table in every format
            (self.output / task).mkdir(exist_ok=True)
            for fmt, ext in (("md", "md"), ("csv", "csv"), ("latex", "tex")):
                (self.output / task / f"leaderboard.{ext}").write_text(
                    tables.render(self.output, fmt, task=task))
        if self.plots:
            from harness.plots import plot_run

            plot_run(self.output)

    def _unchanged(self, csv: str, provenance: dict) -> bool:
        try:
            old_csv = (self.output / "scores.csv").read_text()
            old = json.loads((self.output / "run.json").read_text())
            for path in ["leaderboard.md", *(f"{t}/leaderboard.{ext}" for t in provenance["tasks"]
                                             for ext in ("md", "csv", "tex"))]:
                (self.output / path).stat()
        except (OSError, ValueError):
            return False
        same = ("command", "commit", "tasks", "methods", "seeds", "best_of_n")
        return old_csv == csv and all(old.get(k) == json.loads(json.dumps(provenance[k]))
                                      for k in same)


CODE_PATHS = ["harness", "methods", "tasks", "configs", "pyproject.toml"]


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
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for pkg in ("mclbench", "torch", "transformers", "peft", "numpy", "pandas", "sacrebleu",
                "pycocoevalcap"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            pass
    return out
