"""Plugin registry: tasks and methods register by name with one decorator.

Built-in plugins live in the ``tasks`` and ``methods`` packages; third-party plugins
register through the entry-point groups ``mclbench.tasks`` and ``mclbench.methods``
(the entry point names a module or an object whose import runs the decorator).
Nothing is imported until a name is looked up or the catalogue is listed.
"""

from __future__ import annotations

import difflib
import importlib
import pkgutil
import warnings
from dataclasses import dataclass
from importlib.metadata import entry_points

from harness.errors import MCLBenchError


class UnknownPluginError(MCLBenchError, LookupError):
    """A task or method name that nothing registered."""


@dataclass
class _Kind:
    kind: str  # "task" | "method"
    package: str  # built-in package holding one module per plugin
    group: str  # entry-point group for third-party plugins
    entries: dict[str, type]
    discovered: bool = False


_KINDS = {
    "task": _Kind("task", "tasks", "mclbench.tasks", {}),
    "method": _Kind("method", "methods", "mclbench.methods", {}),
}


def check_name(kind: str, name: object) -> str:
    """``name`` if it can name a row, a folder and a LaTeX cell: letters, digits and ``_`` (a
    Python identifier, the rule task files' names follow); else ValueError saying so."""
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f"{kind} name {name!r}: use letters, digits and _ only (it names folders, "
                         "table rows and LaTeX cells)")
    return name


def _register(kind: str, name: str):
    check_name(kind, name)

    def decorator(cls: type) -> type:
        entries = _KINDS[kind].entries
        if name in entries and entries[name] is not cls:
            raise ValueError(
                f"{kind} {name!r} is registered twice: by {entries[name].__module__} "
                f"and by {cls.__module__}; rename one of them"
            )
        cls.name = name
        entries[name] = cls
        return cls

    return decorator


def register_task(name: str):
    """Class decorator: make a :class:`harness.task.Task` subclass available as ``name``."""
    return _register("task", name)


def register_method(name: str):
    """Class decorator: make a :class:`harness.method.Method` subclass available as ``name``."""
    return _register("method", name)


def _discover(k: _Kind) -> None:
    if k.discovered:
        return
    k.discovered = True
    package = importlib.import_module(k.package)
    for info in pkgutil.iter_modules(package.__path__):
        if not info.name.startswith("_"):
            importlib.import_module(f"{k.package}.{info.name}")
    for ep in entry_points(group=k.group):
        try:
            ep.load()
        except Exception as exc:  # one broken third-party plugin must not hide the others
            warnings.warn(
                f"could not load {k.kind} plugin {ep.name!r} ({ep.value}) from entry point "
                f"group {k.group!r}: {exc}",
                stacklevel=2,
            )
    if k.kind == "task":  # task files last: they build on the task plugins
        for reader, folders in _TASK_FILE_READERS:
            for folder in folders():
                for file in sorted(folder.glob("*.yaml")) if folder.is_dir() else []:
                    reader(file)


def _lookup(kind: str, name: str) -> type:
    k = _KINDS[kind]
    if name not in k.entries:
        _discover(k)
    if name not in k.entries:
        names = sorted(k.entries)
        close = difflib.get_close_matches(name, names, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise UnknownPluginError(
            f"unknown {kind} {name!r}; {hint}available {kind}s: {', '.join(names)}"
        )
    return k.entries[name]


_TASK_FILE_READERS: list = []  # (reader, folders) pairs


def register_task_file_reader(reader, folders) -> None:
    """``reader(path) -> task class`` registers the task a file declares; ``folders()``
    lists the folders whose ``*.yaml`` it reads once every task plugin is loaded (the
    tasks package installs one for YAML task files)."""
    if all(r is not reader for r, _ in _TASK_FILE_READERS):
        _TASK_FILE_READERS.append((reader, folders))


def load_task_file(path: str) -> str:
    """Register the task a task file declares (``mclbench run --task-file``); its name."""
    _discover(_KINDS["task"])
    if not _TASK_FILE_READERS:
        raise UnknownPluginError(f"--task-file {path}: no task-file reader is installed")
    return _TASK_FILE_READERS[-1][0](path).name


def get_task(name: str) -> type:
    return _lookup("task", name)


def get_method(name: str) -> type:
    return _lookup("method", name)


def available(kind: str) -> dict[str, type]:
    """Every registered plugin of ``kind`` ("task" or "method"), sorted by name."""
    k = _KINDS[kind]
    _discover(k)
    return dict(sorted(k.entries.items()))


def describe(cls: type) -> str:
    """The first line of a plugin's docstring."""
    return (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else ""
