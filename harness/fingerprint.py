"""What a cached stage's key hashes besides its config: the code that computes it and the
libraries it runs on.

``code_fingerprint(*objects)`` is the SHA-256 of the source of every module the objects are
defined in, of their base classes' modules, and of every module those import at module level
(transitively), restricted to this project's packages (``harness``, ``methods``, ``tasks``)
and the objects' own top-level packages (a third-party plugin's code is covered the same
way). Editing a plugin's decode function, a base class it inherits or a harness helper it
calls changes the key of every stage that runs it; editing the CLI or a README does not.

A module imported only inside a function body is not followed: a stage that calls such code
must import it at module level (or name it among the objects) for its key to cover it.

A source file edited after this process imported it (a long run while someone edits the code)
no longer says what the process runs: its digest is then a one-off value, so that the stages
it covers are computed, and cached, under keys no later run can meet — never a stale result
under the edited code's key.
"""

from __future__ import annotations

import hashlib
import importlib.abc
import inspect
import sys
import time
import types
import uuid
import warnings
from functools import cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

PROJECT_PACKAGES = frozenset({"harness", "methods", "tasks"})
# Libraries whose version changes what a stage computes (numerics, tokenisation, metrics).
KEY_LIBRARIES = ("torch", "transformers", "peft", "sacrebleu", "pycocoevalcap", "numpy")


_STARTED = time.time()  # modules imported before this one: no later than this
_IMPORTED: dict[str, float] = {}  # module name -> when it was (last) imported


class _ImportClock(importlib.abc.MetaPathFinder):
    """Notes when each module is imported (``find_spec`` runs just before it loads); finds nothing."""

    def find_spec(self, fullname, path=None, target=None):
        _IMPORTED[fullname] = time.time()
        return None


sys.meta_path.insert(0, _ImportClock())


def _source_digest(name: str, path: Path) -> str:
    """The SHA-256 of a module's source, or a one-off value where the file changed after the
    module was imported (what runs is then not what the file says)."""
    if path.stat().st_mtime > _IMPORTED.get(name, _STARTED):
        warnings.warn(f"{path} changed after this process imported it: the stages it covers are not "
                      "reused by later runs (restart the run to cache them)", stacklevel=2)
        return f"changed since import: {uuid.uuid4().hex}"
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _top(module_name: str) -> str:
    return module_name.split(".", 1)[0]


def _modules_of(obj) -> list[types.ModuleType]:
    """The module an object is defined in, and those of its base classes."""
    if isinstance(obj, types.ModuleType):
        return [obj]
    if isinstance(obj, str):
        __import__(obj)
        return [sys.modules[obj]]
    classes = obj.__mro__ if isinstance(obj, type) else type(obj).__mro__
    return [sys.modules[c.__module__] for c in classes if c.__module__ in sys.modules
            and c.__module__ != "builtins"]


def _imports(module: types.ModuleType) -> set[str]:
    """Names of the modules a module refers to at module level (imported modules, and the
    modules of imported classes and functions)."""
    out = set()
    for value in vars(module).values():
        if isinstance(value, types.ModuleType):
            out.add(value.__name__)
        else:
            owner = getattr(value, "__module__", None)
            if isinstance(owner, str) and (inspect.isclass(value) or inspect.isfunction(value)):
                out.add(owner)
    return out


@cache
def _module_digest(name: str, roots: frozenset[str]) -> tuple[tuple[str, str], ...]:
    seen: dict[str, str] = {}
    todo = [name]
    while todo:
        current = todo.pop()
        if current in seen or _top(current) not in roots or current not in sys.modules:
            continue
        module = sys.modules[current]
        path = getattr(module, "__file__", None)
        seen[current] = _source_digest(current, Path(path)) if path else ""
        todo.extend(_imports(module))
    return tuple(sorted(seen.items()))


def code_fingerprint(*objects) -> str:
    """SHA-256 over the source of the modules that define ``objects`` (classes, instances,
    modules or module names) and of what they import, within the project and the objects'
    own packages."""
    modules = [m for obj in objects for m in _modules_of(obj)]
    roots = PROJECT_PACKAGES | {_top(m.__name__) for m in modules}
    digests: dict[str, str] = {}
    for module in modules:
        if _top(module.__name__) in roots:
            digests.update(_module_digest(module.__name__, frozenset(roots)))
    return hashlib.sha256(repr(sorted(digests.items())).encode()).hexdigest()


@cache
def library_versions(packages: tuple[str, ...] = KEY_LIBRARIES) -> dict[str, str]:
    """Installed versions of ``packages`` (absent ones are left out)."""
    out = {}
    for pkg in packages:
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            pass
    return out
