"""Training checkpoints that are verified like cached artifacts.

``save`` writes ``checkpoint.pt`` atomically with its SHA-256 beside it
(``checkpoint.pt.sha256``) and keeps the one before as ``checkpoint.prev.pt``. ``load``
returns the newest checkpoint whose bytes match their digest and that ``torch.load``
reads with ``weights_only=True`` (tensors and plain containers only: a checkpoint in a
folder others may write cannot run code); a damaged one is set aside with a one-line
warning, and training resumes from the one before it, or from scratch.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import torch

from harness.hashing import file_sha256

log = logging.getLogger(__name__)


def _digest_path(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def _previous(path: Path) -> Path:
    return path.with_name(path.stem + ".prev" + path.suffix)


def save(path: Path, state: dict[str, Any]) -> None:
    """Write ``state`` to ``path`` (atomically, digest beside it); the previous checkpoint
    becomes ``<name>.prev.pt``."""
    tmp = path.with_name(path.name + ".tmp")
    torch.save(state, tmp)
    digest = file_sha256(tmp)
    if path.exists():
        os.replace(path, _previous(path))
        if _digest_path(path).exists():
            os.replace(_digest_path(path), _digest_path(_previous(path)))
    os.replace(tmp, path)
    tmp_digest = _digest_path(tmp)
    tmp_digest.write_text(digest)
    os.replace(tmp_digest, _digest_path(path))


def load(path: Path) -> dict[str, Any] | None:
    """The newest intact checkpoint at ``path`` (or its previous one), or None."""
    for candidate in (path, _previous(path)):
        if not candidate.exists():
            continue
        state = _read(candidate)
        if state is not None:
            return state
    return None


def _read(path: Path) -> dict[str, Any] | None:
    digest = _digest_path(path)
    problem = None
    if not digest.exists():
        problem = "its digest file is missing"
    elif digest.read_text().strip() != file_sha256(path):
        problem = "its bytes do not match its digest"
    else:
        try:
            return torch.load(path, weights_only=True)
        except Exception as exc:  # unpickling error, truncated zip, ...
            problem = f"torch.load failed ({type(exc).__name__})"
    log.warning("checkpoint %s is damaged (%s); discarding it", path, problem)
    for damaged in (path, digest):
        damaged.unlink(missing_ok=True)
    return None
