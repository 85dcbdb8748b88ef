"""Content hashes: of JSON-serialisable values (cache keys, seeds) and of files (artifacts,
checkpoints, weights, data)."""

from __future__ import annotations

import hashlib
import json
from functools import lru_cache
from pathlib import Path
from typing import Any


def stable_hash(obj: Any) -> str:
    """SHA-256 of a JSON-serialisable object, independent of dict ordering."""
    blob = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a file read in 1 MiB blocks (a multi-GB shard never sits in memory), read
    afresh every call: what verifies an artifact before it is reused."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def memoised_file_sha256(path: str | Path) -> str:
    """:func:`file_sha256` memoised on (path, size, mtime) for the process, so a grid hashes
    each input file (weights, data) once."""
    st = Path(path).stat()
    return _memoised(Path(path), st.st_size, st.st_mtime_ns)


@lru_cache(maxsize=4096)
def _memoised(path: Path, size: int, mtime_ns: int) -> str:
    return file_sha256(path)
