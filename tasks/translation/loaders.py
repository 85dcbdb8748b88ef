"""Readers for the text-pair formats users have on disk; each returns ``list[Example]``.

- ``read_parallel(source, [ref, ...])``: one sentence a line, one file per language
  (plain or ``.gz``); several reference files make a sacrebleu-style multi-reference set.
- ``read_jsonl(path)``: one ``{"id", "source", "references": [...]}`` object a line.
- ``read_hf_dataset(files, ...)``: HF ``datasets`` from local json/jsonl/csv/parquet files.
- ``read_hub(dataset, split, ...)``: a split of an HF dataset by hub id (or a local dataset
  folder standing in for it); dotted column names read nested fields (``translation.en``).
- ``read_examples(path, split, ...)``: any of the two above by extension, or a folder of
  such files read as an HF dataset with splits.
- ``read_tab_pairs(path)``: ``source<TAB>target`` a line (Tatoeba / manythings.org
  ``deu.txt``; extra columns such as the attribution are ignored); one input per distinct
  source, its distinct targets the references, in file order.
- ``read_grouped_parallel(source, target)``: line-aligned files in which a source sentence
  repeats once per translation (the Tatoeba test sets): grouped into one input each.
- ``read_fairseq_multiref(path)``: ``S-i`` / ``T-i`` / ``R1-i`` … lines (fairseq's
  ``translation_moe`` reference format, Ott et al.'s newstest2014 extra references).

Bad data fails loudly with the file and line: unequal line counts, empty lines, text that
is not UTF-8, missing fields.
"""

from __future__ import annotations

import gzip
import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path

from harness.files import DataFormatError
from harness.hub import column, load_split
from harness.task import Example


def read_lines(path: str | Path) -> list[str]:
    """Lines of a UTF-8 text file (gzip when the name ends in .gz), without newlines."""
    path = Path(path)
    if not path.is_file():
        raise DataFormatError(f"{path}: no such file")
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        raw = f.read()
    lines = raw.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    out = []
    for number, line in enumerate(lines, 1):
        try:
            text = line.decode("utf-8").rstrip("\r")
        except UnicodeDecodeError as e:
            raise DataFormatError(
                f"{path}, line {number}: not valid UTF-8 (byte {line[e.start]:#x} at column {e.start + 1}); "
                "re-encode the file as UTF-8 (e.g. iconv -f latin1 -t utf-8)"
            ) from None
        if not text.strip():
            raise DataFormatError(f"{path}, line {number}: empty line; every line must hold one sentence")
        out.append(text)
    return out


def read_parallel(source: str | Path, references: list[str | Path],
                  id_prefix: str | None = None) -> list[Example]:
    """Line-aligned source and reference files (several reference files: several references)."""
    if not references:
        raise DataFormatError(f"{source}: no reference file given")
    src = read_lines(source)
    refs = [read_lines(r) for r in references]
    for path, lines in zip(references, refs, strict=True):
        if len(lines) != len(src):
            raise DataFormatError(
                f"{path} has {len(lines)} lines but {source} has {len(src)}; "
                "parallel files must be line-aligned"
            )
    prefix = id_prefix if id_prefix is not None else Path(source).name.split(".")[0]
    return [Example(f"{prefix}:{i}", s, [r[i] for r in refs]) for i, s in enumerate(src)]


@dataclass(frozen=True)
class Columns:
    """The column (field) names of a row: dotted names read nested fields (``translation.de``);
    ``modes``: a list of mode labels aligned with the references ("": none)."""

    source: str = "source"
    references: str = "references"
    id: str = "id"
    modes: str = ""


def _example(obj, where: str, columns: Columns, index: int) -> Example:
    """An example from a row (its index is the id where the row has no ``columns.id``)."""
    if not isinstance(obj, dict):
        raise DataFormatError(f"{where}: expected a JSON object, got {type(obj).__name__}")
    source = column(obj, columns.source, where)
    refs = column(obj, columns.references, where)
    if isinstance(refs, str):
        refs = [refs]
    if not isinstance(refs, list) or not refs or not all(isinstance(r, str) and r.strip() for r in refs):
        raise DataFormatError(f"{where}: {columns.references!r} must be a non-empty list of "
                              "non-empty strings")
    if isinstance(source, str) and not source.strip():
        raise DataFormatError(f"{where}: empty {columns.source!r}")
    modes = None
    if columns.modes:
        modes = column(obj, columns.modes, where)
        modes = [modes] if modes is None or isinstance(modes, str) else modes
        if not isinstance(modes, list) or len(modes) != len(refs) or \
                not all(m is None or isinstance(m, str) for m in modes):
            raise DataFormatError(f"{where}: {columns.modes!r} must hold one mode label (or null) per "
                                  f"reference: {len(refs)}, got {modes!r}")
    return Example(str(obj.get(columns.id, index)), source, list(refs), modes)


def read_jsonl(path: str | Path, columns: Columns = Columns()) -> list[Example]:
    """``{"id", "source", "references": [...]}`` a line (a string reference is one reference)."""
    out = []
    for number, line in enumerate(read_lines(path), 1):
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise DataFormatError(f"{path}, line {number}: not valid JSON ({e.msg})") from None
        out.append(_example(obj, f"{path}, line {number}", columns, number - 1))
    ids = [e.id for e in out]
    if len(set(ids)) != len(ids):
        dup = next(i for i in ids if ids.count(i) > 1)
        raise DataFormatError(f"{path}: id {dup!r} appears more than once")
    return out


def read_hf_dataset(data_files: str | list[str], split: str = "train",
                    columns: Columns = Columns()) -> list[Example]:
    """A dataset in local files loaded with HF ``datasets`` (builder chosen by extension)."""
    from datasets import load_dataset

    files = [data_files] if isinstance(data_files, str) else list(data_files)
    suffixes = {Path(f).suffixes[0] if Path(f).suffixes else "" for f in files}
    builders = {".json": "json", ".jsonl": "json", ".csv": "csv", ".parquet": "parquet"}
    if len(suffixes) != 1 or next(iter(suffixes)) not in builders:
        raise DataFormatError(f"{files}: expected files of one type among {sorted(builders)}")
    for f in files:
        if not Path(f).is_file():
            raise DataFormatError(f"{f}: no such file")
    builder = builders[suffixes.pop()]
    quiet = logging.getLogger("datasets")  # it logs a damaged file before raising: one line is ours
    level, quiet.level = quiet.level, logging.CRITICAL
    try:
        ds = load_dataset(builder, data_files={split: files}, split=split)
    except (ValueError, OSError) as exc:  # e.g. pyarrow's ArrowInvalid on a damaged parquet file
        reason = next((line for line in str(exc).splitlines() if line.strip()), type(exc).__name__)
        raise DataFormatError(f"{files[0]}: cannot be read as {builder} ({reason.strip()[:200]})") from None
    finally:
        quiet.setLevel(level)
    return [_example(row, f"{files[0]}, row {i}", columns, i) for i, row in enumerate(ds)]


def read_hub(dataset: str, split: str, config: str | None = None,
             columns: Columns = Columns()) -> list[Example]:
    """A split of an HF dataset: a hub id or a local dataset folder (:func:`harness.hub.load_split`)."""
    rows = load_split(dataset, split, config)
    return [_example(row, f"{dataset}[{split}], row {i}", columns, i) for i, row in enumerate(rows)]


def read_examples(path: str | Path, split: str = "train", columns: Columns = Columns()) -> list[Example]:
    """A ``.jsonl`` file (:func:`read_jsonl`), a ``.json``/``.csv``/``.parquet`` file
    (:func:`read_hf_dataset`), or a folder of such files read as the HF dataset it holds
    (``split``: which of its splits)."""
    path = Path(path)
    if path.is_dir():
        return read_hub(str(path), split, None, columns)
    if path.suffix == ".jsonl":
        return read_jsonl(path, columns)
    return read_hf_dataset(str(path), split, columns)


def group_pairs(pairs: list[tuple[str, str]], id_prefix: str) -> list[Example]:
    """One input per distinct source (first-seen order), its distinct targets as references."""
    refs: dict[str, list[str]] = {}
    for src, tgt in pairs:
        targets = refs.setdefault(src, [])
        if tgt not in targets:
            targets.append(tgt)
    return [Example(f"{id_prefix}:{i}", src, targets) for i, (src, targets) in enumerate(refs.items())]


def read_tab_pairs(path: str | Path, header: bool | None = None) -> list[Example]:
    """``source<TAB>target[<TAB>...]`` lines grouped by source. ``header``: skip the first
    line (None: skip it when it is ``1<TAB>2``, as in the manythings.org export)."""
    lines = read_lines(path)
    skip = int(bool(header or (header is None and lines and lines[0].split("\t")[:2] == ["1", "2"])))
    pairs = []
    for number, line in enumerate(lines[skip:], 1 + skip):
        fields = line.split("\t")
        if len(fields) < 2 or not fields[0].strip() or not fields[1].strip():
            raise DataFormatError(f"{path}, line {number}: expected 'source<TAB>target', got {line[:60]!r}")
        pairs.append((fields[0].strip(), fields[1].strip()))
    return group_pairs(pairs, Path(path).name.split(".")[0])


def read_grouped_parallel(source: str | Path, target: str | Path) -> list[Example]:
    """Line-aligned files where a repeated source line means another translation of it."""
    lines = read_parallel(source, [target])
    return group_pairs([(e.source.strip(), e.references[0].strip()) for e in lines],
                       Path(source).name.split(".")[0])


_FAIRSEQ_LINE = re.compile(r"^(S|T|R[1-9][0-9]*)-([0-9]+)\t(.*)$")


def read_fairseq_multiref(path: str | Path) -> list[Example]:
    """``S-i`` source, ``T-i`` and ``R1-i`` … ``Rk-i`` references; every input needs a source
    and at least one reference; ids are ``i``."""
    sources: dict[int, str] = {}
    refs: dict[int, list[str]] = {}
    for number, line in enumerate(read_lines(path), 1):
        m = _FAIRSEQ_LINE.match(line)
        if not m or not m.group(3).strip():
            raise DataFormatError(f"{path}, line {number}: expected 'S-<i>', 'T-<i>' or 'R<k>-<i>', a tab "
                                  f"and a sentence; got {line[:60]!r}")
        kind, i, text = m.group(1), int(m.group(2)), m.group(3).strip()
        if kind == "S":
            if i in sources:
                raise DataFormatError(f"{path}, line {number}: a second source for sentence {i}")
            sources[i] = text
        else:
            refs.setdefault(i, []).append(text)
    orphans = sorted(set(refs) - set(sources)) or sorted(set(sources) - set(refs))
    if orphans:
        what = "references but no S- line" if orphans[0] in refs else "a source but no reference"
        raise DataFormatError(f"{path}: sentence {orphans[0]} has {what}")
    return [Example(str(i), sources[i], refs[i]) for i in sorted(sources)]
