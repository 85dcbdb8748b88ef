"""Data loaders on small real fixtures (Multi30k lines), and bad data named by file and line."""

import gzip
import json

import pytest

from tasks.translation.base import DATA
from tasks.translation.loaders import (
    Columns,
    DataFormatError,
    read_hf_dataset,
    read_jsonl,
    read_lines,
    read_parallel,
)

EN = read_lines(DATA / "val.en.gz")[:5]
DE = read_lines(DATA / "val.de.gz")[:5]
PAIRS = list(zip(EN, DE, strict=True))


def write(path, lines, gz=False):
    data = "".join(line + "\n" for line in lines).encode()
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def test_parallel_plain_and_gzip(tmp_path):
    examples = read_parallel(write(tmp_path / "x.en", EN), [write(tmp_path / "x.de.gz", DE, gz=True)])
    assert [e.source for e in examples] == EN
    assert [e.references for e in examples] == [[d] for d in DE]
    assert examples[0].id == "x:0" and len(examples) == 5


def test_sacrebleu_style_several_reference_files(tmp_path):
    refs = [write(tmp_path / f"ref.{k}", [f"{d} ({k})" for d in DE]) for k in range(3)]
    examples = read_parallel(write(tmp_path / "src.en", EN), refs)
    assert examples[2].references == [f"{DE[2]} ({k})" for k in range(3)]


def test_jsonl(tmp_path):
    rows = [{"id": f"s{i}", "source": s, "references": [d, d.upper()]} for i, (s, d) in enumerate(PAIRS)]
    path = write(tmp_path / "x.jsonl", [json.dumps(r) for r in rows])
    examples = read_jsonl(path)
    assert [e.id for e in examples] == [f"s{i}" for i in range(5)]
    assert examples[1].references == [DE[1], DE[1].upper()]


def test_hf_dataset_from_local_files(tmp_path):
    pytest.importorskip("datasets")
    rows = [{"id": f"s{i}", "source": s, "references": [d]} for i, (s, d) in enumerate(PAIRS)]
    path = write(tmp_path / "x.jsonl", [json.dumps(r) for r in rows])
    assert [e.references for e in read_hf_dataset(str(path))] == [[d] for d in DE]
    csv = write(tmp_path / "x.csv", ["en,de", *[f'"{s}","{d}"' for s, d in PAIRS]])
    examples = read_hf_dataset(str(csv), columns=Columns(source="en", references="de"))
    assert [(e.source, e.references) for e in examples] == [(s, [d]) for s, d in PAIRS]


def test_unequal_line_counts_names_both_files(tmp_path):
    src, ref = write(tmp_path / "a.en", EN), write(tmp_path / "a.de", DE[:4])
    with pytest.raises(DataFormatError, match=r"a\.de has 4 lines but .*a\.en has 5"):
        read_parallel(src, [ref])


def test_empty_line_names_file_and_line(tmp_path):
    ref = write(tmp_path / "a.de", [DE[0], DE[1], "  ", DE[3], DE[4]])
    with pytest.raises(DataFormatError, match=r"a\.de, line 3: empty line"):
        read_parallel(write(tmp_path / "a.en", EN), [ref])


def test_wrong_encoding_names_file_and_line(tmp_path):
    path = tmp_path / "latin1.de"
    path.write_bytes("\n".join(DE).encode("latin-1"))  # German umlauts in Latin-1
    bad_line = next(i for i, d in enumerate(DE, 1) if any(ord(c) > 127 for c in d))
    with pytest.raises(DataFormatError, match=rf"latin1\.de, line {bad_line}: not valid UTF-8"):
        read_lines(path)


def test_bad_jsonl(tmp_path):
    path = write(tmp_path / "x.jsonl", [json.dumps({"id": 1, "source": "a", "references": ["b"]}), "{oops"])
    with pytest.raises(DataFormatError, match=r"x\.jsonl, line 2: not valid JSON"):
        read_jsonl(path)
    path = write(tmp_path / "y.jsonl", [json.dumps({"id": 1, "source": "a", "references": []})])
    with pytest.raises(DataFormatError, match=r"y\.jsonl, line 1: 'references' must be a non-empty list"):
        read_jsonl(path)
    with pytest.raises(DataFormatError, match="no such file"):
        read_lines(tmp_path / "missing.txt")
