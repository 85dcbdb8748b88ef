"""Reading users' files and checking the folders a run writes, with one-line errors."""

from __future__ import annotations

import json
import os
import tempfile
import uuid
from pathlib import Path
from typing import Any

from harness.errors import MCLBenchError


class UserFileError(MCLBenchError, ValueError):
    """A file or folder named by the user that cannot be read or written as asked."""


class DataFormatError(MCLBenchError, ValueError):
    """A data file that does not follow its format (named with the line or field at fault)."""


def read_text(path: str | Path, encodings: tuple[str, ...] = ("utf-8",)) -> str:
    """A text file's content in the first of ``encodings`` that decodes all of it (UTF-8 by
    default); a file in none of them is named with the offset of its first undecodable byte."""
    path = Path(path)
    data = path.read_bytes()
    for encoding in encodings[:-1]:
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    try:
        return data.decode(encodings[-1])
    except UnicodeDecodeError as exc:
        names = " or ".join("UTF-8" if e == "utf-8" else e.upper() for e in encodings)
        raise UserFileError(f"{path}: not {names} text (byte {exc.start}: "
                            f"{data[exc.start:exc.start + 1]!r}); re-save it as UTF-8") from None


def check_writable_dir(path: str | Path, option: str) -> None:
    """Fail before any work if ``path`` cannot become a folder we write into: it, or a
    parent of it, is a file; or the nearest existing parent is not writable."""
    given = str(path)
    path = Path(path).expanduser().absolute()
    for candidate in [path, *path.parents]:
        if candidate.exists():
            if not candidate.is_dir():
                shown = os.path.relpath(candidate) if not Path(given).is_absolute() else str(candidate)
                what = "is a file" if candidate == path else f"lies under a file ({shown})"
                raise UserFileError(f"{option} {given!r} {what}; choose a folder path")
            try:  # os.access says yes to root everywhere: try (and undo) a folder in it
                os.rmdir(tempfile.mkdtemp(prefix=".mclbench-probe-", dir=candidate))
            except OSError as exc:
                raise UserFileError(
                    f"{option} {given!r}: cannot create folders in {candidate} ({exc.strerror}); "
                    "choose another folder or fix its permissions") from None
            return


def write_json_atomic(path: Path, obj: Any) -> None:
    """``obj`` as indented, key-sorted JSON at ``path``, written beside it and renamed in (a
    reader never sees half a file)."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    tmp.write_text(json.dumps(obj, indent=2, sort_keys=True, default=str))
    os.replace(tmp, path)
