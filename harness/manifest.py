"""What mclbench published into an output folder, and the folder's lock.

``.mclbench-manifest.json`` lists every file mclbench wrote there (path → SHA-256). Publishing
writes only files it owns: a file already in the folder that the manifest does not list (a
user's own ``run.json``, ``cells/lab/plate1/seed7/img001.tif``) is never overwritten nor pruned,
and a non-empty folder that mclbench did not write is refused (``--overwrite`` takes it over,
still without deleting anything of the user's). Readers (``table``, ``plot``, ``report``,
``compare``) check the files they read against the manifest, so a damaged or hand-edited
published file is named, not shown in part. A folder published before the manifest existed
(a ``run.json`` of ``mclbench run`` beside ``scores.csv``) is adopted: the files of the names
mclbench writes are taken as its own.

``locked(output)`` holds an exclusive lock on the folder from the runner's "would this drop
published rows" check to the end of publishing: a second run into the same folder is refused
in one line instead of dropping the first one's rows.
"""

from __future__ import annotations

import csv
import fcntl
import hashlib
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from harness.errors import MCLBenchError

MANIFEST = ".mclbench-manifest.json"
# the names mclbench publishes (for adopting a folder written before the manifest)
TOP_FILES = ("scores.csv", "significance.csv", "run.json", "leaderboard.md", "report.html")
TASK_FILES = ("leaderboard.md", "leaderboard.csv", "leaderboard.tex")
CELL_FILES = ("candidates.jsonl", "details.json", "inputs.json", "train_log.json", "best_of_n.json",
              "probes.safetensors")
PLOT_SUFFIXES = (".png", ".svg")


class OutputError(MCLBenchError, ValueError):
    """An output folder mclbench must not write into, or a published file that was changed."""


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@contextmanager
def locked(output: str | Path) -> Iterator[None]:
    """An exclusive lock on the folder ``output`` for the ``with`` block (a lock on the folder
    itself: no file is added to it); another holder makes this raise OutputError at once. A
    folder made for the lock is removed again if the block leaves it empty."""
    output = Path(output)
    created = not output.exists()
    output.mkdir(parents=True, exist_ok=True)
    fd = os.open(output, os.O_RDONLY | os.O_DIRECTORY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise OutputError(f"{output}: another mclbench run is publishing into this folder; wait for it "
                              "to finish, or pass another --output") from None
        yield
    finally:
        os.close(fd)  # releases the lock
        if created and output.is_dir() and not any(output.iterdir()):
            output.rmdir()


def _legacy(output: Path) -> dict[str, str] | None:
    """The files of a folder published before the manifest, or None if it is not one."""
    try:
        meta = json.loads((output / "run.json").read_text())
    except (OSError, ValueError):
        return None
    if not (isinstance(meta, dict) and str(meta.get("command", "")).startswith("mclbench")
            and (output / "scores.csv").is_file()):
        return None
    found = [output / name for name in TOP_FILES]
    with open(output / "scores.csv", newline="") as f:  # its tasks' folders only: another run
        tasks = {row.get("task") for row in csv.DictReader(f)}  # published inside it is not its
    for task in output.iterdir():
        if task.is_dir() and task.name in tasks:
            found += [task / name for name in TASK_FILES]
            found += [p for p in (task / "plots").glob("*") if p.suffix in PLOT_SUFFIXES]
    found += [p for p in output.glob("cells/*/*/seed*/*") if p.name in CELL_FILES]
    return {p.relative_to(output).as_posix(): sha256(p.read_bytes()) for p in found if p.is_file()}


def owned(output: str | Path, overwrite: bool = False) -> dict[str, str]:
    """The files mclbench published into ``output`` (path → SHA-256 as published); {} for a
    missing or empty folder. A non-empty folder that mclbench did not write is refused unless
    ``overwrite``."""
    output = Path(output)
    path = output / MANIFEST
    if path.is_file():
        try:
            files = json.loads(path.read_text())["files"]
            if isinstance(files, dict):
                return {str(k): str(v) for k, v in files.items()}
        except (ValueError, KeyError, TypeError):
            pass
        raise OutputError(f"{path} is damaged; delete it and re-run with --overwrite (mclbench then "
                          "replaces the files it writes and keeps every other file)")
    adopted = _legacy(output) if output.is_dir() else None
    if adopted is not None:
        return adopted
    others = list(output.iterdir()) if output.is_dir() else []
    if others and not overwrite:
        raise OutputError(f"{output} is not empty and mclbench did not write it ({others[0].name}, ...): "
                          "choose an empty or new --output, or pass --overwrite to publish into it (no file "
                          "of yours is deleted)")
    return {}


class Publisher:
    """Writes files into an output folder atomically, only where their bytes change, never over a
    file it does not own (unless ``overwrite``); :meth:`close` prunes what the previous
    publication had and this one does not, and writes the manifest."""

    def __init__(self, output: str | Path, overwrite: bool = False):
        self.output = Path(output)
        self.before = owned(self.output, overwrite)
        self.overwrite = overwrite
        self.files: dict[str, str] = {}
        self.changed: list[str] = []

    def write(self, rel: str, data: bytes | str) -> None:
        data = data.encode() if isinstance(data, str) else data
        target = self.output / rel
        digest = sha256(data)
        self.files[rel] = digest
        if target.is_file() and not target.is_symlink():
            current = target.read_bytes()
            if current == data:
                return
            if rel not in self.before and not self.overwrite:
                raise OutputError(f"{target} exists and mclbench did not write it: move it away or pass "
                                  "--overwrite to replace it")
        elif target.exists() or target.is_symlink():
            raise OutputError(f"{target} is not a regular file; move it away to publish here")
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, target)
        self.changed.append(rel)

    def damaged(self) -> list[str]:
        """Files of the previous publication that are missing or no longer what was written."""
        out = []
        for rel, digest in self.before.items():
            path = self.output / rel
            if not path.is_file() or sha256(path.read_bytes()) != digest:
                out.append(rel)
        return out

    def close(self) -> list[str]:
        """Prune the previous publication's files this one did not write; save the manifest.
        Returns the files pruned."""
        pruned = []
        for rel in sorted(set(self.before) - set(self.files)):
            path = self.output / rel
            if path.is_file():
                path.unlink()
                pruned.append(rel)
                _remove_empty_parents(path.parent, self.output)
        data = json.dumps({"files": dict(sorted(self.files.items()))}, indent=1) + "\n"
        path = self.output / MANIFEST
        if not (path.is_file() and path.read_text() == data):  # an unchanged folder is left as it is
            tmp = self.output / f".{MANIFEST}.tmp"
            tmp.write_text(data)
            os.replace(tmp, path)
        return pruned


def _remove_empty_parents(folder: Path, root: Path) -> None:
    while folder != root and folder.is_dir() and not any(folder.iterdir()):
        folder.rmdir()
        folder = folder.parent


def add(output: str | Path, files: dict[str, bytes | str]) -> list[Path]:
    """Publish more files into a published folder (``mclbench report``, ``mclbench plot``),
    keeping the rest; returns their paths."""
    output = Path(output)
    publisher = Publisher(output)
    publisher.files = dict(publisher.before)
    for rel, data in files.items():
        publisher.write(rel, data)
    publisher.close()
    return [output / rel for rel in files]


READ = ("scores.csv", "significance.csv", "run.json")  # what readers of a run folder read, besides cells/


def verify(output: str | Path, rels: list[str] | None = None) -> None:
    """OutputError naming the first of ``rels`` (default: the tables' sources and every cell
    file) that differs from what mclbench published (checked where the folder has a manifest;
    files it does not list are not checked)."""
    output = Path(output)
    path = output / MANIFEST
    if not path.is_file():
        return
    files = owned(output)
    if rels is None:
        rels = [*READ, *(rel for rel in files if rel.startswith("cells/"))]
    for rel in rels:
        target = output / rel
        if rel in files and target.is_file() and sha256(target.read_bytes()) != files[rel]:
            raise OutputError(f"{target} is not the file mclbench published (its SHA-256 differs): it was "
                              "edited or damaged; re-run the `mclbench run` that wrote it to restore it")
