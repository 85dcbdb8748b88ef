"""Readers for captioning datasets in the formats users have; each returns ``list[Example]``
whose ``source`` is the path of the image or audio file (pixels and samples are read by the
task) and whose ``references`` are the captions.

Images: COCO caption JSON (``images`` + ``annotations``) with an image folder; Flickr30k
``results.csv`` (``image_name| comment_number| comment``) or Flickr8k ``token`` files
(``image.jpg#0<TAB>caption``); TextCaps JSON (``data: [{image_id, caption_str |
reference_strs}]``). Audio: Clotho CSV (``file_name, caption_1..caption_5``) and AudioCaps
CSV (``audiocap_id, youtube_id, start_time, caption``; one caption a row). Either: the HF
``imagefolder`` / ``audiofolder`` layout (files + ``metadata.jsonl`` or ``metadata.csv``). Bad files fail
with the file (and line or id): a missing image or audio file, missing columns, no caption.
"""

from __future__ import annotations

import csv
import io
import json
from collections import defaultdict
from pathlib import Path

from harness.files import DataFormatError, read_text
from harness.task import Example


def _existing(folder: Path, name: str, described_in: Path) -> Path:
    path = folder / name
    if not path.is_file():
        raise DataFormatError(f"{described_in}: file {name!r} not found in {folder}")
    return path


def _examples(captions: dict[str, list[str]], folder: Path, described_in: Path) -> list[Example]:
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


def read_coco_captions(annotations: str | Path, image_dir: str | Path) -> list[Example]:
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
    return _examples(caps, Path(image_dir), path)


def read_flickr(captions_file: str | Path, image_dir: str | Path) -> list[Example]:
    """Flickr30k ``results.csv`` (pipe-separated, with a header) or a Flickr8k token file."""
    path = Path(captions_file)
    if not path.is_file():
        raise DataFormatError(f"{path}: no such file")
    caps: dict[str, list[str]] = defaultdict(list)
    lines = read_text(path).splitlines()
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
    return _examples(caps, Path(image_dir), path)


def read_textcaps(annotations: str | Path, image_dir: str | Path) -> list[Example]:
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
    return _examples(caps, Path(image_dir), path)


def _read_csv(path: Path, required: list[str]) -> list[dict]:
    if not path.is_file():
        raise DataFormatError(f"{path}: no such file")
    with io.StringIO(read_text(path), newline="") as f:
        reader = csv.DictReader(f)
        missing = [c for c in required if c not in (reader.fieldnames or [])]
        if missing:
            raise DataFormatError(f"{path}: missing column(s) {', '.join(missing)}; "
                                  f"found {', '.join(reader.fieldnames or []) or 'none'}")
        return list(reader)


def read_clotho(captions_csv: str | Path, audio_dir: str | Path) -> list[Example]:
    """Clotho: ``file_name, caption_1 … caption_5`` and a folder of the audio files."""
    path = Path(captions_csv)
    rows = _read_csv(path, ["file_name", "caption_1"])
    columns = [c for c in rows[0] if c.startswith("caption_")] if rows else []
    caps = {row["file_name"]: [row[c] for c in columns] for row in rows}
    return _examples(caps, Path(audio_dir), path)


def read_audiocaps(captions_csv: str | Path, audio_dir: str | Path, extension: str = ".wav") -> list[Example]:
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
    return _examples(caps, folder, path)


def read_hf_folder(folder: str | Path, caption_field: str | None = None) -> list[Example]:
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
    numbered = sorted((f for f in fields if f.startswith("caption_")), key=lambda f: int(f.split("_")[1]))
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
    return _examples(caps, folder, described_in)
