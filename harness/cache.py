"""Content-addressed, atomic, verified artifact cache.

An artifact is a directory ``<root>/<stage>/<key>/`` where ``key`` is the SHA-256 of
everything that determines it (config, data fingerprint, upstream keys, component
version). It is built in a private temporary directory and renamed into place only once
complete, together with ``MANIFEST.json`` listing the SHA-256 of every file. On reuse
every file is checked against the manifest: an artifact that was truncated, edited or
half-deleted is moved aside and recomputed, never silently used.

A stage may also keep resumable work in progress under ``<root>/<stage>/<key>.partial/``
(e.g. training checkpoints); it is removed once the artifact is committed.

The root may also be an fsspec URI (``s3://bucket/cache``, ``gs://…``, ``file:///…``;
the protocol's package must be installed): artifacts are then built and read in a local
mirror (``MCLBENCH_CACHE_MIRROR``, default ``~/.cache/mclbench/<hash of the URI>``), each
committed one is uploaded — its files first, ``MANIFEST.json`` last, so a remote artifact
is complete once its manifest exists — and one missing locally is downloaded and checked
against its manifest before use. Work in progress (``.partial``) stays local.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

MANIFEST = "MANIFEST.json"


def is_uri(root: str | Path) -> bool:
    return "://" in str(root)


def cache_location(root: str | Path) -> str:
    """``root`` as every process and node can use it: an absolute path, or the URI."""
    return str(root) if is_uri(root) else str(Path(root).resolve())


def stable_hash(obj: Any) -> str:
    """SHA-256 of a JSON-serialisable object, independent of dict ordering."""
    blob = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def write_json_atomic(path: Path, obj: Any) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    tmp.write_text(json.dumps(obj, indent=2, sort_keys=True, default=str))
    os.replace(tmp, path)


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

    def partial_dir(self, stage: str, key: str) -> Path:
        """A stable scratch folder for resumable work in progress on this artifact."""
        d = self.root / stage / f"{key}.partial"
        d.mkdir(parents=True, exist_ok=True)
        return d

    def elapsed(self, stage: str, key: str) -> float:
        """Seconds the artifact took to compute, as recorded in its manifest (the remote
        one where the artifact was never needed here)."""
        local = self.path(stage, key) / MANIFEST
        if local.is_file() or self.remote is None:
            manifest = json.loads(local.read_text())
        else:
            manifest = json.loads(self.fs.cat_file(self._remote(stage, key, MANIFEST)))
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
        if self.remote is not None and self.get(stage, key) is not None:
            return final, True
        if final.exists():
            if self.verify(stage, key):
                return final, True
            aside = final.with_name(f"{key}.corrupt-{int(time.time())}-{uuid.uuid4().hex[:6]}")
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
