"""Carry every cell of a plan through the cached stages.

    backbone -> train -> decode + probes -> score        (+ curve: best-of-N, first seed)

Each stage is declared once here — its key (:meth:`Runner.keys`) and what computes it
(:mod:`harness.stages`) — and runs the same way in this process, under ``accelerate
launch`` (:mod:`harness.distributed`, train and decode) and in Ray workers
(:mod:`harness.executors`, which call :meth:`Runner.compute`). A stage's key hashes
everything that determines its artifact: its config, the data fingerprint, the upstream
keys, the source code that computes it and the library versions
(:mod:`harness.fingerprint`); artifacts are written atomically and verified
(:mod:`harness.cache`), so a re-run reuses everything, an interrupted run resumes where it
stopped, and cells that share a stage (two decoders of one adapter) compute it once.

The decode stage keeps everything the score stage needs beside the candidates — the task's
probes of the model, the method's costs, the training log — so scoring never loads a
model, and a cache whose train artifacts were deleted re-scores without training. The
decode key hashes the decode code (:mod:`harness.stages`), the score, curve and
significance keys the scoring code (:mod:`harness.score_stages`) and the modules of the
registered metrics the task reports (:func:`harness.score_stages.metric_modules`): no key
before scoring covers metric code, so editing a metric re-scores and never retrains.

The runner prints nothing (progress goes to the callback the CLI gives) and writes no
table: :mod:`harness.publish` does, from the :class:`RunResult` it returns.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from harness import score_stages, stages
from harness.cache import Cache, cache_location, is_uri
from harness.config import ConfigError, RunSpec, as_dict
from harness.devices import device_key, resolve_device
from harness.distributed import launch
from harness.errors import MCLBenchError, error_line
from harness.files import check_writable_dir
from harness.fingerprint import code_fingerprint, library_versions
from harness.hashing import file_sha256, stable_hash
from harness.metrics import significance
from harness.plan import Cell, best_of_n_variant, resolve
from harness.stages import read_candidates

SCORE_COLUMNS = ["task", "method", "seed", "metric", "value"]
SCORES_VERSION = 3  # 2: methods' cost metrics; 3: ci95/<metric> bootstrap half-widths
SIGNIFICANCE_COLUMNS = ["task", "metric", "method", "best", "delta", "p_value"]


@dataclass
class CellRecord:
    """One computed cell: its scores and the artifact folders they came from."""

    cell: Cell
    scores: dict[str, float]
    decode_dir: Path
    score_dir: Path
    curve_dir: Path | None
    compute_s: float  # its stages' time when they were computed (cached or not)
    unavailable: dict[str, str] = field(default_factory=dict)  # metric -> why it is n/a


@dataclass
class RunResult:
    """What :meth:`Runner.run` did, for :func:`harness.publish.write`."""

    spec: RunSpec
    records: list[CellRecord]
    computed: int  # cells with a stage computed by this run
    cached: int  # cells whose every artifact was in the cache
    wall_s: float
    # per task and decomposable column, each row against the column's best (score_stages.significance_to)
    significance: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=SIGNIFICANCE_COLUMNS))

    @property
    def scores(self) -> pd.DataFrame:
        rows = [{"task": r.cell.task.name, "method": r.cell.method.name, "seed": r.cell.seed,
                 "metric": k, "value": v} for r in self.records for k, v in r.scores.items()]
        return pd.DataFrame(rows, columns=SCORE_COLUMNS)

    def summary(self) -> str:
        return (f"results written to {self.spec.output} ({len(self.records)} cells, "
                f"{self.computed} computed, {self.cached} cached)")


class Runner:
    def __init__(self, spec: RunSpec, tracking: bool = True, overwrite: bool = False):
        self.spec = spec
        self.overwrite = overwrite  # replace an output table that holds cells this run lacks
        self.cache = Cache(spec.cache_dir)
        self.device = resolve_device(spec.device)
        self.output = Path(spec.output)
        self.tracking = tracking
        self._keys: dict[tuple[str, bool], dict[str, str | None]] = {}  # by Cell.identity
        self._data: dict[str, str] = {}  # task name -> its data fingerprint (the cells share tasks)
        self._variants: dict[tuple[str, bool], Cell | None] = {}

    # ---------------------------------------------------------------------- keys
    def keys(self, cell: Cell) -> dict[str, str | None]:
        """The cache key of each stage of a cell (``train`` is None when nothing trains).

        Computed once per cell: the train key hashes the task's whole training data.
        """
        if cell.identity in self._keys:
            return self._keys[cell.identity]
        m, t = cell.method, cell.task
        # the code each stage runs (plugins, their bases, the harness modules they import)
        libs = library_versions()
        task_code, method_code = code_fingerprint(t), code_fingerprint(m)
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
            {"backbone": backbone, "data": self.data_fingerprint(t), "train": spec, "seed": cell.seed,
             "code": [task_code, code_fingerprint(*m.train_code())], **processes,
             **device_key(self.device)})
        # the registered method, not the row's name: a variant shares a same-settings method's decode
        decode = stable_hash({"upstream": train or backbone, **device_key(self.device),
                              "method": type(m).name, "method_version": m.version, "decode": m.decode_spec(),
                              "task": t.name, "task_version": t.version,
                              "task_config": as_dict(t.config), "seed": cell.seed,
                              "code": [task_code, method_code, code_fingerprint(stages)], "libraries": libs})
        score = stable_hash({"decode": decode, "task": t.name, "task_version": t.version,
                             "scores": SCORES_VERSION,
                             "code": [task_code, method_code, self.scoring_code(t)]})
        self._keys[cell.identity] = {"backbone": backbone, "train": train, "decode": decode,
                                     "score": score}
        return self._keys[cell.identity]

    def data_fingerprint(self, task) -> str:
        """``task.data_fingerprint()``, hashed once per task of the run (it reads all the
        training data), not once per cell."""
        if task.name not in self._data:
            self._data[task.name] = task.data_fingerprint()
        return self._data[task.name]

    def scoring_code(self, task) -> str:
        """The fingerprint of the scoring code and of the task's registered metrics' modules."""
        return code_fingerprint(score_stages, *score_stages.metric_modules(task))

    def curve_key(self, vcell: Cell) -> str:
        return stable_hash({"decode": self.keys(vcell)["decode"], "task_version": vcell.task.version,
                            "metric": vcell.task.best_of_n_metric, "n": self.spec.best_of_n,
                            "code": self.scoring_code(vcell.task)})

    # -------------------------------------------------------------------- stages
    def backbone(self, cell: Cell) -> Path:
        t = cell.task
        return self.cache.get_or_compute(
            "backbone", self.keys(cell)["backbone"], lambda d: t.build_backbone(cell.seed).save_pretrained(d),
            describe={"task": t.name, "seed": cell.seed})[0]

    def trained(self, cell: Cell) -> Path | None:
        """The trained state's folder (None if the method trains nothing)."""
        t, m, key = cell.task, cell.method, self.keys(cell)["train"]
        if key is None:
            return None
        bdir = self.backbone(cell)

        def train(d: Path) -> None:
            work = self.cache.partial_dir("train", key)  # checkpoints, kept if interrupted
            if self.spec.launches:
                self._launch(cell, "train", d, bdir, work_dir=work)
            else:
                stages.train_to(d, m, t, bdir, cell.seed, work, self.device)

        return self.cache.get_or_compute("train", key, train,
                                         describe={"cell": cell.label, "train": m.train_spec()})[0]

    def decoded(self, cell: Cell) -> Path:
        """The decode folder: candidates, probes, costs and training log, computed if missing."""
        key = self.keys(cell)["decode"]
        ddir = self.cache.get("decode", key)
        if ddir is not None:
            return ddir
        tdir = self.trained(cell)  # before the decode stage starts: its time is its own
        bdir = self.backbone(cell)

        def decode(d: Path) -> None:
            if self.spec.launches:
                self._launch(cell, "decode", d, bdir, train_dir=tdir)
            else:
                stages.decode_to(d, cell.method, cell.task, bdir, tdir, cell.seed, self.device)

        return self.cache.get_or_compute("decode", key, decode, describe={"cell": cell.label})[0]

    def scored(self, cell: Cell, ddir: Path) -> Path:
        """The score folder: a pure function of the decode folder (no model)."""
        t, examples = cell.task, cell.task.test_examples()

        def score(d: Path) -> None:
            score_stages.score_to(d, t, examples, read_candidates(ddir / "candidates.jsonl", examples),
                                  stages.read_measured(ddir), cell.seed)

        return self.cache.get_or_compute("score", self.keys(cell)["score"], score,
                                         describe={"cell": cell.label})[0]

    def curve(self, vcell: Cell) -> Path:
        """``best_of_n.json``: the oracle metric of the first n candidates, n = 1..best_of_n."""
        t, n_max = vcell.task, self.spec.best_of_n
        ddir = self.decoded(vcell)

        def curve(d: Path) -> None:
            examples = t.test_examples()
            candidates = read_candidates(ddir / "candidates.jsonl", examples)
            score_stages.best_of_n_to(d, t, vcell.method, examples, candidates, n_max)

        return self.cache.get_or_compute("curve", self.curve_key(vcell), curve,
                                         describe={"cell": vcell.label, "best_of_n": n_max})[0]

    def _launch(self, cell: Cell, stage: str, out_dir: Path, backbone_dir: Path, **paths) -> None:
        spec = dataclasses.asdict(self.spec) | {"cache_dir": cache_location(self.spec.cache_dir)}
        job = {"stage": stage, "label": cell.label, "task": cell.task.name, "method": cell.method.name,
               "seed": cell.seed, "best_of_n": cell.best_of_n, "spec": spec, "out_dir": str(out_dir),
               "backbone_dir": str(backbone_dir),
               **{k: (str(v) if v is not None else None) for k, v in paths.items()}}
        launch(job, self.spec.processes, self.spec.accelerate_config)

    def significance_tests(self, records: list[CellRecord]) -> pd.DataFrame:
        """Per task, each row against the best of every column that decomposes over inputs;
        a stage keyed on the task's decode keys, so a second run reads it from the cache."""
        frames = []
        for task in {r.cell.task.name: r.cell.task for r in records}.values():
            cells: dict[str, dict[int, Path]] = {}
            decodes: dict[str, dict[int, str]] = {}
            for r in records:
                if r.cell.task.name == task.name:
                    cells.setdefault(r.cell.method.name, {})[r.cell.seed] = r.decode_dir
                    decodes.setdefault(r.cell.method.name, {})[r.cell.seed] = self.keys(r.cell)["decode"]
            reported = score_stages.reported_metrics(task)
            columns = {name: info.higher_is_better for name, info in reported.items()
                       if info.higher_is_better is not None}
            key = stable_hash({"task": task.name, "task_version": task.version, "columns": columns,
                               "decodes": decodes, "resamples": significance.RESAMPLES,
                               "code": self.scoring_code(task)})

            def test(d: Path, t=task, c=columns, rows=cells) -> None:
                score_stages.significance_to(d, t, c, rows, t.test_examples())

            sdir = self.cache.get_or_compute("significance", key, test, describe={"task": task.name})[0]
            tests = json.loads((sdir / "significance.json").read_text())["tests"]
            frames.append(pd.DataFrame(tests, columns=SIGNIFICANCE_COLUMNS[1:]).assign(task=task.name))
        return (pd.concat(frames)[SIGNIFICANCE_COLUMNS] if frames
                else pd.DataFrame(columns=SIGNIFICANCE_COLUMNS))

    # ----------------------------------------------------------------------- cells
    def best_of_n_cell(self, cell: Cell) -> Cell | None:
        if cell.identity not in self._variants:
            self._variants[cell.identity] = best_of_n_variant(cell, self.spec.best_of_n, self.spec.seeds[0])
        return self._variants[cell.identity]

    def compute(self, cell: Cell) -> CellRecord:
        """Every artifact of a cell, computed where missing."""
        ddir = self.decoded(cell)
        sdir = self.scored(cell, ddir)
        vcell = self.best_of_n_cell(cell)
        details = json.loads((sdir / "details.json").read_text())
        return CellRecord(cell, json.loads((sdir / "scores.json").read_text()), ddir, sdir,
                          self.curve(vcell) if vcell is not None else None, self.compute_time(cell),
                          dict(details.get("unavailable") or {}))

    def compute_time(self, cell: Cell) -> float:
        """Seconds the cell's stages took when they were computed (cached or not), its
        best-of-N decode and curve included; a stage no longer in the cache counts 0."""
        seconds = sum(self.cache.elapsed(stage, key) for stage, key in self.keys(cell).items()
                      if key is not None)
        vcell = self.best_of_n_cell(cell)
        if vcell is not None:
            seconds += self.cache.elapsed("decode", self.keys(vcell)["decode"])
            seconds += self.cache.elapsed("curve", self.curve_key(vcell))
        return seconds

    def _cached(self, cell: Cell) -> bool:
        """Whether every artifact of the cell is in the cache already."""
        vcell = self.best_of_n_cell(cell)
        return (self.cache.get("score", self.keys(cell)["score"]) is not None
                and (vcell is None or self.cache.get("curve", self.curve_key(vcell)) is not None))

    # ----------------------------------------------------------------------- run
    def run(self, executor=None, on_progress: Callable[[str], None] | None = None) -> RunResult:
        """Compute every cell. ``executor(runner, cells)``, e.g.
        :func:`harness.executors.ray_executor`, fills the cache first (elsewhere, in
        parallel); the loop below then only reads it. Without one, cells run here in order.
        ``on_progress(line)`` hears of each finished cell."""
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # weight-loading bars of tiny models are noise
        start = time.time()
        cells = resolve(self.spec)
        self._preflight(cells)
        cached = sum(self._cached(cell) for cell in cells)
        if executor is not None:
            executor(self, cells)
        records = []
        for i, cell in enumerate(cells, 1):
            t0 = time.time()
            records.append(self.compute(cell))
            if self.tracking:
                from harness import tracking

                r = records[-1]
                tracking.log_cell(cell, self.keys(cell)["score"], r.scores, r.decode_dir, r.score_dir)
            if on_progress is not None:
                on_progress(f"[{i}/{len(cells)}] {cell.label}: {time.time() - t0:.1f}s")
        if on_progress is not None:
            on_progress("significance: paired bootstrap of every row against each column's best")
        tests = self.significance_tests(records)
        return RunResult(self.spec, records, computed=len(cells) - cached, cached=cached,
                         wall_s=time.time() - start, significance=tests)

    def _preflight(self, cells: list[Cell]) -> None:
        """Refuse, before any work, a run whose folders cannot be written or which would
        drop published rows: cells in ``output/scores.csv`` that this run does not include
        are kept only with ``overwrite`` (which replaces the whole table)."""
        check_writable_dir(self.output, "--output")
        for task in {c.task.name: c.task for c in cells}.values():
            try:
                task.check_environment()
                examples = task.test_examples()
                if not examples:
                    raise ValueError("no test inputs: its test data is empty (or num_test selects none)")
                score_stages.check_metrics(task, examples)
            except MCLBenchError:
                raise
            except (ValueError, OSError) as exc:  # data that cannot be read: the reader's one line
                what = error_line(exc) if isinstance(exc, OSError) else next(
                    (line.strip() for line in str(exc).splitlines() if line.strip()), type(exc).__name__)
                raise ConfigError(f"task {task.name!r}: {what}") from None
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
