"""Content-addressed, atomic, verified artifact cache.

An artifact is a directory ``<root>/<stage>/<key>/`` where ``key`` is the SHA-256 of
everything that determines it (config, data fingerprint, upstream keys, component
version). It is built in a private temporary directory and renamed into place only once
complete, together with ``MANIFEST.json`` listing the SHA-256 of every file. On reuse
every file is checked against the manifest: an artifact that was truncated, edited or
half-deleted is moved aside and recomputed, never silently used.

A stage may also keep resumable work in progress under ``<root>/<stage>/<key>.partial/``
(e.g. training checkpoints); it is removed once the artifact is committed.

One artifact is computed by one process at a time: ``get_or_compute`` holds an exclusive
``flock`` on ``<root>/.locks/<stage>/<key>.lock`` while it checks, computes and commits, so a second
run that needs the same artifact waits and then reuses it (the lock is released by the
kernel if its holder dies). Holding the lock, it also removes temporary folders that a
killed run left for that key; ``mclbench cache gc`` removes every such leftover.

The root may also be an fsspec URI (``s3://bucket/cache``, ``gs://…``, ``file:///…``;
the protocol's package must be installed): artifacts are then built and read in a local
mirror (``MCLBENCH_CACHE_MIRROR``, default ``~/.cache/mclbench/<hash of the URI>``), each
committed one is uploaded — its files first, ``MANIFEST.json`` last, so a remote artifact
is complete once its manifest exists — and one missing locally is downloaded and checked
against its manifest before use. Work in progress (``.partial``) stays local.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import logging
import os
import re
import shutil
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness.errors import MCLBenchError
from harness.files import write_json_atomic
from harness.hashing import file_sha256, stable_hash

log = logging.getLogger(__name__)

MANIFEST = "MANIFEST.json"
KEYED = re.compile(r"\.?([0-9a-f]{64})(\..*)?")  # an artifact, its .partial/.lock, or a leftover
LEFTOVER_MARKS = (".tmp-", ".download-", ".corrupt-")  # in the names of a killed run's folders


class CacheError(MCLBenchError, OSError):
    """A cache folder that cannot be used (a file in the way, no permission, disk full)."""


@contextlib.contextmanager
def exclusive(lock_path: Path, waiting: str = ""):
    """Hold an exclusive ``flock`` on ``lock_path`` (created if missing) for the block; log
    ``waiting`` once if another process holds it."""
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if waiting:
                log.info("%s", waiting)
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def is_locked(lock_path: Path) -> bool:
    """Whether another process holds ``lock_path`` now."""
    if not lock_path.exists():
        return False
    with open(lock_path, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(handle, fcntl.LOCK_UN)
    return False


def is_uri(root: str | Path) -> bool:
    return "://" in str(root)


def cache_location(root: str | Path) -> str:
    """``root`` as every process and node can use it: an absolute path, or the URI."""
    return str(root) if is_uri(root) else str(Path(root).resolve())


class Cache:
    def __init__(self, root: str | Path):
        self.remote: str | None = None
        if is_uri(root):
            import fsspec

            self.remote = str(root).rstrip("/")
            self.fs, self.remote_path = fsspec.core.url_to_fs(self.remote)
            default = Path.home() / ".cache" / "mclbench" / stable_hash(self.remote)[:16]
            root = os.environ.get("MCLBENCH_CACHE_MIRROR") or default
        self.root = Path(root)

    def path(self, stage: str, key: str) -> Path:
        return self.root / stage / key

    def lock_path(self, stage: str, key: str) -> Path:
        return self.root / ".locks" / stage / f"{key}.lock"

    def partial_dir(self, stage: str, key: str) -> Path:
        """A stable scratch folder for resumable work in progress on this artifact."""
        d = self.root / stage / f"{key}.partial"
        d.mkdir(parents=True, exist_ok=True)
        return d

    def elapsed(self, stage: str, key: str) -> float:
        """Seconds the artifact took to compute, as recorded in its manifest (the remote
        one where the artifact was never needed here)."""
        local = self.path(stage, key) / MANIFEST
        if not local.is_file() and self.remote is None:
            return 0.0  # not (or no longer) in the cache
        if local.is_file():
            manifest = json.loads(local.read_text())
        else:
            try:
                manifest = json.loads(self.fs.cat_file(self._remote(stage, key, MANIFEST)))
            except (OSError, ValueError):
                return 0.0
        return float(manifest.get("elapsed_s", 0.0))

    def verify(self, stage: str, key: str) -> bool:
        """True when the artifact exists and every file matches its manifest."""
        d = self.path(stage, key)
        try:
            manifest = json.loads((d / MANIFEST).read_text())
            files = manifest["files"]
        except (OSError, ValueError, KeyError, TypeError):
            return False
        present = {p.relative_to(d).as_posix() for p in d.rglob("*") if p.is_file()} - {MANIFEST}
        if present != set(files):
            return False
        return all(file_sha256(d / name) == digest for name, digest in files.items())

    def get(self, stage: str, key: str) -> Path | None:
        """The artifact's folder if it exists and verifies (here, or downloaded from the
        remote root), else None."""
        if self.verify(stage, key):
            return self.path(stage, key)
        if self.remote is not None and self._download(stage, key):
            return self.path(stage, key)
        return None

    def _remote(self, stage: str, key: str, name: str = "") -> str:
        return f"{self.remote_path}/{stage}/{key}" + (f"/{name}" if name else "")

    def _download(self, stage: str, key: str) -> bool:
        try:
            manifest = json.loads(self.fs.cat_file(self._remote(stage, key, MANIFEST)))
        except (OSError, ValueError):  # not there (yet): FileNotFoundError is an OSError
            return False
        final = self.path(stage, key)
        tmp = final.with_name(f".{key}.download-{os.getpid()}-{uuid.uuid4().hex[:8]}")
        try:
            for name in [*manifest["files"], MANIFEST]:
                (tmp / name).parent.mkdir(parents=True, exist_ok=True)
                self.fs.get_file(self._remote(stage, key, name), str(tmp / name))
            shutil.rmtree(final, ignore_errors=True)
            os.replace(tmp, final)
        except OSError as exc:
            log.warning("could not download %s artifact %s from %s: %s", stage, key, self.remote, exc)
            return False
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        if self.verify(stage, key):
            return True
        log.warning("remote %s artifact %s failed verification; recomputing it", stage, key)
        shutil.rmtree(final, ignore_errors=True)
        return False

    def _upload(self, stage: str, key: str) -> None:
        final = self.path(stage, key)
        names = sorted(p.relative_to(final).as_posix() for p in final.rglob("*") if p.is_file())
        for name in [n for n in names if n != MANIFEST] + [MANIFEST]:  # the manifest last
            target = self._remote(stage, key, name)
            self.fs.makedirs(target.rsplit("/", 1)[0], exist_ok=True)
            self.fs.put_file(str(final / name), target)

    def get_or_compute(
        self,
        stage: str,
        key: str,
        compute: Callable[[Path], None],
        describe: dict[str, Any] | None = None,
    ) -> tuple[Path, bool]:
        """Return ``(artifact dir, reused)``; run ``compute(tmp_dir)`` when it is missing."""
        final = self.path(stage, key)
        if final.exists() and self.verify(stage, key):  # the common case: no lock needed
            return final, True
        try:
            lock = exclusive(self.lock_path(stage, key),
                             f"waiting for another run computing {stage} artifact {key[:12]}")
            with lock:
                self._remove_leftovers(stage, key)
                return self._get_or_compute_locked(stage, key, compute, describe)
        except OSError as exc:
            if isinstance(exc, MCLBenchError) or (exc.filename and exc.errno != errno.ENOSPC):
                raise  # names its file already (the CLI prints it on one line)
            where = exc.filename or str(final)
            raise CacheError(f"cache {self.root}: {exc.strerror or exc} ({where}); free space or "
                             "choose another --cache-dir") from None

    def _remove_leftovers(self, stage: str, key: str) -> None:
        """Temporary folders of this artifact left by a killed run (we hold its lock)."""
        for leftover in (self.root / stage).glob(f".{key}.*"):
            shutil.rmtree(leftover, ignore_errors=True)

    def _get_or_compute_locked(self, stage, key, compute, describe) -> tuple[Path, bool]:
        final = self.path(stage, key)
        if self.remote is not None and self.get(stage, key) is not None:
            return final, True
        if final.exists():
            if self.verify(stage, key):
                return final, True
            aside = final.with_name(f".{key}.corrupt-{int(time.time())}-{uuid.uuid4().hex[:6]}")
            log.warning("cached %s artifact %s failed verification; recomputing it", stage, key)
            os.replace(final, aside)
            shutil.rmtree(aside, ignore_errors=True)
        tmp = final.with_name(f".{key}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}")
        tmp.mkdir(parents=True)
        started = time.time()
        try:
            compute(tmp)
            files = {
                p.relative_to(tmp).as_posix(): file_sha256(p)
                for p in sorted(tmp.rglob("*"))
                if p.is_file()
            }
            manifest = {"stage": stage, "key": key, "files": files, "describe": describe or {},
                        "elapsed_s": round(time.time() - started, 3)}
            write_json_atomic(tmp / MANIFEST, manifest)
            try:
                os.replace(tmp, final)
            except OSError:
                # another worker (a Ray task) committed the same artifact first: same key,
                # same content by construction, so keep theirs
                if not self.verify(stage, key):
                    raise
                shutil.rmtree(tmp, ignore_errors=True)
                return final, True
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        if self.remote is not None:
            self._upload(stage, key)
        shutil.rmtree(final.with_name(f"{key}.partial"), ignore_errors=True)
        return final, False

    # ------------------------------------------------------------------ housekeeping
    def usage(self) -> list[dict[str, Any]]:
        """One row per stage: artifacts, their bytes, resumable work and leftovers."""
        rows = []
        for folder in self._stage_folders():
            row = {"stage": folder.name, "artifacts": 0, "bytes": 0, "partial": 0, "leftovers": 0}
            for entry in folder.iterdir():
                if KEYED.fullmatch(entry.name) is None:
                    continue
                if any(mark in entry.name for mark in LEFTOVER_MARKS):
                    row["leftovers"] += 1
                elif entry.name.endswith(".partial"):
                    row["partial"] += 1
                elif entry.is_dir():
                    row["artifacts"] += 1
                else:
                    continue  # a lock file
                row["bytes"] += _size(entry)
            rows.append(row)
        return rows

    def gc(self, partial: bool = False) -> list[Path]:
        """Remove what no run will use: folders a killed run left (unless their run still
        holds the artifact's lock), artifacts that fail verification, lock files nobody
        holds, and with ``partial`` the resumable work of unfinished stages too."""
        removed = []
        for folder in self._stage_folders():
            for entry in sorted(folder.iterdir()):
                match = KEYED.fullmatch(entry.name)
                if match is None:
                    continue  # not ours (e.g. a base rebuilt under the cache root)
                key = match.group(1)
                if is_locked(self.lock_path(folder.name, key)):
                    continue  # a run is computing this artifact now
                leftover = any(mark in entry.name for mark in LEFTOVER_MARKS)
                stale = entry.name.endswith(".partial") and partial
                broken = entry.is_dir() and "." not in entry.name and not self.verify(folder.name, key)
                if leftover or stale or broken:
                    _remove(entry)
                    removed.append(entry)
        for lock in sorted((self.root / ".locks").rglob("*.lock")):
            if not is_locked(lock):
                lock.unlink(missing_ok=True)
        return removed

    def clear(self, stage: str | None = None) -> tuple[int, list[Path]]:
        """Remove every artifact, resumable work and leftover (of one stage); returns the bytes
        freed (what is gone, measured after deleting) and the entries that could not be removed
        (a read-only cache). Folders the cache did not make (a base rebuilt under its root) stay."""
        freed, kept = 0, []
        for folder in self._stage_folders():
            if stage in (None, folder.name):
                for entry in folder.iterdir():
                    if KEYED.fullmatch(entry.name):
                        before = _size(entry)
                        _remove(entry)
                        left = _size(entry) if entry.exists() else 0
                        freed += before - left
                        if entry.exists():
                            kept.append(entry)
        return freed, kept

    def _stage_folders(self) -> list[Path]:
        if not self.root.is_dir():
            return []
        return sorted(p for p in self.root.iterdir() if p.is_dir() and not p.name.startswith("."))


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    try:
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    except OSError:  # an unreadable folder: nothing counted
        return 0


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)
