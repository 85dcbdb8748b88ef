"""Readers for captioning datasets in the formats users have; each returns ``list[Example]``
whose ``source`` is the path of the image or audio file (pixels and samples are read by the
task) and whose ``references`` are the captions.

Images: COCO caption JSON (``images`` + ``annotations``) with an image folder; Flickr8k
``captions.txt`` (CSV ``image,caption``), Flickr30k ``results.csv`` (``image_name|
comment_number| comment``) or Flickr8k ``token`` files (``image.jpg#0<TAB>caption``);
TextCaps JSON (``data: [{image_id, caption_str | reference_strs}]``). Audio: Clotho CSV
(``file_name, caption_1..caption_5``; UTF-8, or CP949 for the tables with Korean columns)
and AudioCaps CSV (``audiocap_id, youtube_id, start_time, caption``; one caption a row).
Either: the HF ``imagefolder`` / ``audiofolder`` layout (files + ``metadata.jsonl`` or
``metadata.csv``), or an HF dataset by hub id (``read_hub_captions``). Bad files fail with
the file (and line or id): a missing image or audio file (unless ``skip_missing``), missing
columns, no caption.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
from collections import defaultdict
from pathlib import Path

from harness.files import DataFormatError, read_text
from harness.hub import column, load_split
from harness.task import Example


def _existing(folder: Path, name: str, described_in: Path) -> Path:
    path = folder / name
    if not path.is_file():
        raise DataFormatError(f"{described_in}: file {name!r} not found in {folder}")
    return path


def _examples(captions: dict[str, list[str]], folder: Path, described_in: Path,
              skip_missing: bool = False) -> list[Example]:
    """``skip_missing``: leave out the files not in ``folder`` (a folder with part of a
    split) instead of failing; at least one must be there."""
    if skip_missing:
        captions = {name: caps for name, caps in captions.items() if (folder / name).is_file()}
        if not captions:
            raise DataFormatError(f"{described_in}: none of its files is in {folder}")
    out = []
    for name, caps in captions.items():
        caps = [c.strip() for c in caps if c and c.strip()]
        if not caps:
            raise DataFormatError(f"{described_in}: {name!r} has no caption")
        out.append(Example(Path(name).stem, _existing(folder, name, described_in), caps))
    return out


def _read_json(path: Path):
    try:
        return json.loads(read_text(path))
    except FileNotFoundError:
        raise DataFormatError(f"{path}: no such file") from None
    except json.JSONDecodeError as exc:
        raise DataFormatError(f"{path}: not valid JSON ({exc})") from None


def read_coco_captions(annotations: str | Path, image_dir: str | Path,
                       skip_missing: bool = False) -> list[Example]:
    """COCO caption JSON: ``images[{id, file_name}]`` and ``annotations[{image_id, caption}]``."""
    path = Path(annotations)
    data = _read_json(path)
    if not isinstance(data, dict) or "images" not in data or "annotations" not in data:
        raise DataFormatError(f"{path}: expected a COCO caption file with 'images' and 'annotations'")
    names = {img["id"]: img["file_name"] for img in data["images"]}
    caps: dict[str, list[str]] = {name: [] for name in names.values()}
    for ann in data["annotations"]:
        if ann.get("image_id") not in names:
            raise DataFormatError(f"{path}: annotation {ann.get('id')!r} names unknown image "
                                  f"{ann.get('image_id')!r}")
        caps[names[ann["image_id"]]].append(ann.get("caption", ""))
    return _examples(caps, Path(image_dir), path, skip_missing)


def read_flickr(captions_file: str | Path, image_dir: str | Path,
                skip_missing: bool = False) -> list[Example]:
    """Flickr captions in any of their three layouts: Flickr8k ``captions.txt`` (CSV with the
    header ``image,caption``), Flickr30k ``results.csv`` (pipe-separated, with a header) or a
    Flickr8k token file (``image.jpg#N<TAB>caption``)."""
    path = Path(captions_file)
    if not path.is_file():
        raise DataFormatError(f"{path}: no such file")
    text = read_text(path)
    lines = text.splitlines()
    if lines and lines[0].replace(" ", "").lower() == "image,caption":
        return _examples(_flickr_csv(path, text), Path(image_dir), path, skip_missing)
    caps: dict[str, list[str]] = defaultdict(list)
    pipe = bool(lines) and "|" in lines[0]
    for number, line in enumerate(lines[1:] if pipe else lines, 2 if pipe else 1):
        if not line.strip():
            continue
        if pipe:
            parts = [p.strip() for p in line.split("|", 2)]
            if len(parts) != 3:
                raise DataFormatError(f"{path}, line {number}: expected 'image| comment_number| comment'")
            name, caption = parts[0], parts[2]
        else:
            if "\t" not in line or "#" not in line.split("\t", 1)[0]:
                raise DataFormatError(f"{path}, line {number}: expected 'image.jpg#N<TAB>caption'")
            key, caption = line.split("\t", 1)
            name = key.rsplit("#", 1)[0]
        caps[name].append(caption)
    return _examples(caps, Path(image_dir), path, skip_missing)


def _flickr_csv(path: Path, text: str) -> dict[str, list[str]]:
    caps: dict[str, list[str]] = defaultdict(list)
    with io.StringIO(text, newline="") as f:
        rows = csv.reader(f)
        next(rows)
        for number, row in enumerate(rows, 2):
            if not row:
                continue
            if len(row) != 2:
                raise DataFormatError(f"{path}, line {number}: expected 'image,caption' "
                                      f"(a caption with a comma must be quoted), got {len(row)} fields")
            caps[row[0].strip()].append(row[1])
    return caps


def read_textcaps(annotations: str | Path, image_dir: str | Path,
                  skip_missing: bool = False) -> list[Example]:
    """TextCaps JSON: ``data[{image_id, reference_strs | caption_str}]``, images ``<image_id>.jpg``."""
    path = Path(annotations)
    data = _read_json(path)
    rows = data.get("data") if isinstance(data, dict) else None
    if not isinstance(rows, list):
        raise DataFormatError(f"{path}: expected a TextCaps file with a 'data' list")
    caps: dict[str, list[str]] = defaultdict(list)
    for row in rows:
        if "image_id" not in row:
            raise DataFormatError(f"{path}: a row has no 'image_id'")
        name = row.get("image_path", f"{row['image_id']}.jpg").split("/")[-1]
        refs = row.get("reference_strs") or [row.get("caption_str", "")]
        for ref in refs:
            if ref not in caps[name]:
                caps[name].append(ref)
    return _examples(caps, Path(image_dir), path, skip_missing)


def _read_csv(path: Path, required: list[str], encodings: tuple[str, ...] = ("utf-8",)) -> list[dict]:
    if not path.is_file():
        raise DataFormatError(f"{path}: no such file")
    with io.StringIO(read_text(path, encodings), newline="") as f:
        reader = csv.DictReader(f)
        missing = [c for c in required if c not in (reader.fieldnames or [])]
        if missing:
            raise DataFormatError(f"{path}: missing column(s) {', '.join(missing)}; "
                                  f"found {', '.join(reader.fieldnames or []) or 'none'}")
        return list(reader)


def read_clotho(captions_csv: str | Path, audio_dir: str | Path, skip_missing: bool = False) -> list[Example]:
    """Clotho: ``file_name, caption_1 … caption_5`` and a folder of the audio files. The
    tables of Clotho v1 with Korean translations (``kor_1 …`` columns) are CP949, not UTF-8:
    a file that is not UTF-8 is read as CP949 (only the English ``caption_*`` columns are
    used)."""
    path = Path(captions_csv)
    rows = _read_csv(path, ["file_name", "caption_1"], encodings=("utf-8", "cp949"))
    columns = [c for c in rows[0] if c.startswith("caption_")] if rows else []
    caps = {row["file_name"]: [row[c] for c in columns] for row in rows}
    return _examples(caps, Path(audio_dir), path, skip_missing)


def read_audiocaps(captions_csv: str | Path, audio_dir: str | Path, skip_missing: bool = False,
                   extension: str = ".wav") -> list[Example]:
    """AudioCaps: one caption a row; clips named ``<youtube_id>_<start_time><extension>``
    (or ``<youtube_id><extension>``) in ``audio_dir``."""
    path = Path(captions_csv)
    rows = _read_csv(path, ["youtube_id", "caption"])
    caps: dict[str, list[str]] = defaultdict(list)
    folder = Path(audio_dir)
    for row in rows:
        stem = f"{row['youtube_id']}_{row['start_time']}" if row.get("start_time") else row["youtube_id"]
        bare = row["youtube_id"]
        if not (folder / f"{stem}{extension}").is_file() and (folder / f"{bare}{extension}").is_file():
            stem = bare
        caps[f"{stem}{extension}"].append(row["caption"])
    return _examples(caps, folder, path, skip_missing)


def read_hf_folder(folder: str | Path, caption_field: str | None = None,
                   skip_missing: bool = False) -> list[Example]:
    """An HF ``imagefolder`` / ``audiofolder`` layout: files plus ``metadata.jsonl`` or
    ``metadata.csv`` with a ``file_name`` column and the captions — a list field, one string
    field, or ``caption_1 … caption_N`` columns (default field: the first of ``captions``,
    ``caption``, ``text`` present). Read directly: ``datasets``' audio decoding needs
    torchcodec, which does not work beside the pinned torch."""
    folder = Path(folder)
    jsonl, table = folder / "metadata.jsonl", folder / "metadata.csv"
    if jsonl.is_file():
        rows = []
        for number, line in enumerate(read_text(jsonl).splitlines(), 1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise DataFormatError(f"{jsonl}, line {number}: not valid JSON ({exc.msg})") from None
        described_in = jsonl
    elif table.is_file():
        rows, described_in = _read_csv(table, ["file_name"]), table
    else:
        raise DataFormatError(f"{folder}: no metadata.jsonl or metadata.csv "
                              "(the HF imagefolder/audiofolder layout)")
    fields = set().union(*(r.keys() for r in rows)) if rows else set()
    numbered = sorted((f for f in fields if f.startswith("caption_") and f[8:].isdigit()),
                      key=lambda f: int(f[8:]))
    field = caption_field or next((f for f in ("captions", "caption", "text") if f in fields), None)
    if field is None and not numbered:
        raise DataFormatError(f"{described_in}: no caption column (captions, caption, text or caption_1…); "
                              f"found {', '.join(sorted(fields)) or 'none'}")
    caps: dict[str, list[str]] = {}
    for row in rows:
        if "file_name" not in row:
            raise DataFormatError(f"{described_in}: a row has no 'file_name'")
        value = row.get(field) if field else [row.get(f, "") for f in numbered]
        caps[row["file_name"]] = [value] if isinstance(value, str) else list(value or [])
    return _examples(caps, folder, described_in, skip_missing)


def read_folder_metadata(metadata: str | Path, folder: str | Path,
                         skip_missing: bool = False) -> list[Example]:
    """The HF folder layout as a task format: ``annotations`` = its ``metadata.csv`` /
    ``metadata.jsonl``, ``data_dir`` = the folder (which must hold that file)."""
    if Path(metadata).parent.resolve() != Path(folder).resolve():
        raise DataFormatError(f"{metadata}: the HF folder layout keeps its metadata in the data folder "
                              f"({folder})")
    return read_hf_folder(folder, skip_missing=skip_missing)


def read_hub_captions(dataset: str, split: str, config: str | None, media_field: str,
                      caption_fields: list[str], id_field: str | None, kind: str) -> list[Example]:
    """A split of an HF dataset (a hub id, or a local dataset folder standing in for it) with an
    ``Image`` or ``Audio`` column (``kind``) and one caption column (a string or a list of
    strings) or several (Clotho's ``caption_1`` … ``caption_5``). The media are read undecoded:
    a file the dataset points to on disk is used where it is; embedded bytes (parquet, the hub's
    usual storage) are written once into ``datasets``' cache, named by their SHA-256."""
    from datasets import Audio, Image

    rows = load_split(dataset, split, config)
    if media_field not in rows.column_names:
        raise DataFormatError(f"HF dataset {dataset!r}: no {kind} column {media_field!r}; "
                              f"it has {', '.join(rows.column_names)} (set media_field)")
    rows = rows.cast_column(media_field, (Image if kind == "image" else Audio)(decode=False))
    out = []
    for i, row in enumerate(rows):
        where = f"{dataset}[{split}], row {i}"
        path = _media_file(row[media_field], where)
        captions = []
        for name in caption_fields:
            value = column(row, name, where)
            captions += [value] if isinstance(value, str) else list(value or [])
        captions = [c.strip() for c in captions if isinstance(c, str) and c.strip()]
        if not captions:
            raise DataFormatError(f"{where}: no caption in {', '.join(caption_fields)}")
        out.append(Example(str(column(row, id_field, where)) if id_field else f"{split}-{i}", path, captions))
    return out


def _media_file(media: dict | None, where: str) -> Path:
    """The file of an undecoded ``Image`` / ``Audio`` value: its path when it exists, else its
    bytes written into the cache under their hash (the same bytes, the same file)."""
    from datasets import config

    if not media or (media.get("bytes") is None and not media.get("path")):
        raise DataFormatError(f"{where}: empty media value")
    if media.get("bytes") is None:
        path = Path(media["path"])
        if not path.is_file():
            raise DataFormatError(f"{where}: file {path} not found")
        return path
    data = media["bytes"]
    suffix = Path(media.get("path") or "").suffix
    name = hashlib.sha256(data).hexdigest()[:32] + suffix
    target = Path(config.HF_DATASETS_CACHE) / "mclbench_media" / name
    if not target.is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, target)
    return target
