"""The plan of a run: the grid of cells (task × method × seed) built from a run spec.

Every plugin config is built and checked here, once, so that bad input fails before any
work: an empty grid, unknown names and parameters, values out of range, and settings a
backbone cannot take (checked on its weightless skeleton).
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass

from harness.config import ConfigError, RunSpec, build, suggest
from harness.method import Method
from harness.registry import get_method, get_task, load_task_file
from harness.task import Task

log = logging.getLogger(__name__)


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

    @property
    def identity(self) -> tuple[str, bool]:
        """What tells the cell from every other of its run (a best-of-N variant shares its
        cell's label)."""
        return self.label, self.best_of_n


def resolve(spec: RunSpec, check_backbones: bool = True) -> list[Cell]:
    """Build every plugin config and the grid, so that bad input fails before any compute:
    an empty grid, unknown names and parameters, values out of range, and (``check_backbones``)
    settings a backbone cannot take, checked on its weightless skeleton."""
    for what, selected, flag in (("task", spec.tasks, "pass --tasks (see `mclbench list`)"),
                                 ("method", spec.methods, "pass --methods (see `mclbench list`)"),
                                 ("seed", spec.seeds, "pass at least one, e.g. --seeds 0")):
        if not selected:
            raise ConfigError(f"no {what} selected; {flag}")
    for file in spec.task_files:  # registered here too: in every process that resolves the grid
        load_task_file(file)
    check_per_task(spec)
    cells, skipped = [], []
    for task in _tasks(spec):
        skeleton = None
        for mname in spec.methods:
            made, reason = _method_cells(spec, task, mname, len(cells))
            cells += made
            if reason:
                skipped.append(f"{mname} on {task.name}: {reason}")
            elif check_backbones and made:
                if skeleton is None:
                    skeleton = task.backbone_skeleton(spec.seeds[0]) or False
                if skeleton is not False:
                    _check_backbone(made[-1].method, skeleton, task)
    if skipped and not cells:
        raise ConfigError(f"nothing to run: {'; '.join(skipped)}")
    for line in skipped:
        log.warning("skipped (not applicable) %s", line)
    return cells


def _tasks(spec: RunSpec) -> list[Task]:
    built = []
    for name, overrides in spec.tasks.items():
        cls = get_task(name)
        built.append(cls(build(cls.Config, overrides, f"task {name!r}")))
    return built


def _method_cells(spec: RunSpec, task: Task, mname: str, first_index: int) -> tuple[list[Cell], str | None]:
    """The cells of row ``mname`` on ``task``, one per seed, and why it does not apply (None: it does)."""
    cls = get_method(spec.method_of(mname))
    fields = {f.name for f in dataclasses.fields(cls.Config)}
    overrides = spec.method_overrides(task.name, mname, fields)
    cells = []
    for seed in spec.seeds:
        method = cls(build(cls.Config, overrides, f"method {mname!r} on {task.name!r}"))
        method.name = mname  # the row's name: a variant's own
        reason = method.not_applicable(task)
        if reason:
            return cells, reason
        try:
            method.fill_defaults(task)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        cells.append(Cell(task, method, seed, index=first_index + len(cells)))
    return cells, None


def _check_backbone(method: Method, skeleton, task: Task) -> None:
    try:
        method.check_backbone(skeleton)
    except ValueError as exc:
        raise ConfigError(f"{exc} (task {task.name!r})") from None


def check_per_task(spec: RunSpec) -> None:
    """Every name and key under ``per_task:`` exists: a task, then ``method`` or a method,
    then that method's parameters (``method``: a parameter of some selected method)."""
    for task_name, per_method in spec.per_task.items():
        get_task(task_name)  # a misspelt name fails here, with the list of tasks
        for mname, overrides in per_method.items():
            if mname == "method":  # every method that has the key
                valid = sorted({f.name for n in spec.methods
                                for f in dataclasses.fields(get_method(spec.method_of(n)).Config)})
            else:
                valid = [f.name for f in dataclasses.fields(get_method(spec.method_of(mname)).Config)]
            unknown = sorted(set(overrides) - set(valid))
            if unknown:
                raise ConfigError(f"per_task.{task_name}.{mname}: unknown parameter {unknown[0]!r}"
                                  f"{suggest(unknown[0], valid)}; valid parameters: {', '.join(valid)}")


def plugin_keys(kind: str, name: str) -> list[str]:
    """The parameters of a registered task or method."""
    cls = get_task(name) if kind == "task" else get_method(name)
    return [f.name for f in dataclasses.fields(cls.Config)]


def best_of_n_variant(cell: Cell, n: int, first_seed: int) -> Cell | None:
    """The cell's method set to return ``n`` candidates, for the best-of-N curve (first seed
    only), or None where the run, the task or the method has no curve."""
    if not n or cell.task.best_of_n_metric is None or cell.seed != first_seed:
        return None
    variant = cell.method.with_candidates(n)
    if variant is None:
        return None
    variant.name = cell.method.name
    return Cell(cell.task, variant, cell.seed, index=cell.index, best_of_n=True)
