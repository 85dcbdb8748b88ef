"""Tasks declared in a YAML file, no Python: a text→text, image→text or audio→text task on
your own data, registered under its ``name``.

    name: paraphrase_de                  # required: the task's name in runs and tables
    description: German paraphrases …    # first line shown by `mclbench list`
    input: text                          # text (default) | image | audio
    backbone: translation                # one of our tasks (its committed base), or a path / hub id
    data:                                # paths relative to this file
      train: data/train.jsonl            # text: a .jsonl/.json/.csv/.parquet file or a folder of them
      test: data/test.jsonl              # image/audio: the captions file (format below)
      train_split: train                 # folders, hf_dataset: the split to read (default train / test)
      test_split: test
      media: photos/                     # image/audio: the folder of the files the captions name
      train_media: photos/
      format: flickr                     # image: coco|flickr|textcaps|imagefolder;
                                         # audio: clotho|audiocaps|audiofolder
      # or, instead of train/test (and media): an HF dataset, a hub id or a local dataset folder
      hf_dataset: wmt/wmt14              # read with datasets.load_dataset(hf_dataset, hf_config)
      hf_config: de-en
    fields: {id: id, source: source, references: references}   # the column names (dotted: nested);
                                         # text: modes, a column of per-reference mode labels (a list
                                         # aligned with the references, null: none) -> modes_covered,
                                         # mode_recall; image/audio: media (the Image/Audio column),
                                         # references (a caption column, or a list of them), id
    tokenize: 13a                        # text: sacreBLEU's tokenisation of BLEU and the diversity
                                         # metrics (13a | intl | zh | char | none; default 13a)
    prompt: "Paraphrase: {text}"         # causal-LM or multimodal-LM backbones only
    generation: {max_new_tokens: 32}
    num_test: 0                          # 0: all
    metrics: [bleu, chrf]                # the columns (default: the input kind's): any registered metric
                                         # (every reduction) or one reduction (max/bleu); `mclbench metrics`

Every ``*.yaml`` in this folder's ``files/`` and in the folders of ``MCLBENCH_TASK_PATH``
(``os.pathsep``-separated) is registered when the task catalogue is read; ``mclbench run
--task-file FILE`` registers one more. A task file makes a subclass of the task it builds
on (text: ``translation``, or the text task its ``backbone`` names; image:
``photo_captioning``; audio: ``audio_captioning``) whose config defaults are the file's
values, so ``--set task.KEY=…`` still works. Errors name the file, the key and what was
expected, in one line.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import typing
from pathlib import Path
from typing import Any

from harness.config import ConfigError, read_yaml_mapping
from harness.registry import available, get_task, register_task, register_task_file_reader

HERE = Path(__file__).resolve().parent
# input kind -> (the task it builds on by default, our tasks whose committed base it may name)
BASES = {"text": ("translation", ("translation", "tatoeba_en_de")),
         "image": ("photo_captioning", ("image_captioning", "photo_captioning")),
         "audio": ("audio_captioning", ("audio_captioning",))}
TOP_KEYS = {"name", "description", "input", "backbone", "data", "fields", "prompt", "generation",
            "num_test", "num_train", "metrics", "tokenize"}
HUB_KEYS = {"hf_dataset", "hf_config", "train_split", "test_split"}
DATA_KEYS = {"text": {"train", "test"} | HUB_KEYS,
             "image": {"train", "test", "media", "train_media", "format"} | HUB_KEYS,
             "audio": {"train", "test", "media", "train_media", "format"} | HUB_KEYS}
FIELD_KEYS = {"text": {"id", "source", "references", "modes"}, "image": {"id", "media", "references"},
              "audio": {"id", "media", "references"}}
GENERATION_KEYS = {"max_new_tokens"}


def _fail(path: Path, key: str, what: str) -> None:
    raise ConfigError(f"{path}: {key}: {what}")


def _mapping(path: Path, key: str, value: Any, allowed: set[str]) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        _fail(path, key, f"expected a mapping with keys among {', '.join(sorted(allowed))}, got {value!r}")
    unknown = sorted(set(value) - allowed)
    if unknown:
        _fail(path, f"{key}.{unknown[0]}", f"unknown key; valid keys: {', '.join(sorted(allowed))}")
    return value


def _existing(path: Path, key: str, value: Any) -> str:
    if not isinstance(value, str) or not value:
        _fail(path, key, f"expected a path, got {value!r}")
    # absolute, symlinks kept: a DVC or git-annex data file is a link to a file named by its hash,
    # and its format is read from the link's name
    found = Path(os.path.abspath(path.parent / value))
    if not found.exists():
        _fail(path, key, f"{found} does not exist")
    return str(found)


def task_defaults(path: Path, raw: dict) -> tuple[str, str, dict[str, Any], list[str] | None]:
    """``(name, base task, config defaults, metrics)`` of a task file's contents."""
    unknown = sorted(set(raw) - TOP_KEYS)
    if unknown:
        _fail(path, unknown[0], f"unknown key; valid keys: {', '.join(sorted(TOP_KEYS))}")
    name = raw.get("name")
    if not isinstance(name, str) or not name.isidentifier():
        _fail(path, "name", f"required: a name made of letters, digits and _, got {name!r}")
    kind = raw.get("input", "text")
    if kind not in BASES:
        _fail(path, "input", f"expected one of {', '.join(BASES)}, got {kind!r}")
    values: dict[str, Any] = {}
    base = _backbone(path, raw.get("backbone"), kind, values)
    data = _mapping(path, "data", raw.get("data"), DATA_KEYS[kind])
    fields = _mapping(path, "fields", raw.get("fields"), FIELD_KEYS[kind])
    _data(path, kind, data, fields, values)
    if "tokenize" in raw:
        values["tokenize"] = _tokenize(path, kind, raw["tokenize"])
    for key in ("prompt", "num_test", "num_train"):
        if key in raw:
            values[key] = raw[key]
    values.update(_mapping(path, "generation", raw.get("generation"), GENERATION_KEYS))
    metrics = raw.get("metrics")
    if metrics is not None and not (isinstance(metrics, list) and all(isinstance(m, str) for m in metrics)):
        _fail(path, "metrics", f"expected a list of metric names, got {metrics!r}")
    return name, base, values, metrics


def _backbone(path: Path, backbone: Any, kind: str, values: dict[str, Any]) -> str:
    """The task the file builds on: one of ours whose committed base ``backbone`` names, or
    the input kind's default with ``values["backbone"]`` (a folder beside the file, or an id)."""
    base, ours = BASES[kind]
    if backbone is None:
        return base
    if not isinstance(backbone, str) or not backbone:
        _fail(path, "backbone", f"expected one of {', '.join(ours)}, a checkpoint folder or a hub id")
    if backbone in ours:
        return backbone
    local = path.parent / backbone
    values["backbone"] = str(local.resolve()) if local.exists() else backbone
    return base


def _data(path: Path, kind: str, data: dict, fields: dict, values: dict[str, Any]) -> None:
    """``data:`` and ``fields:`` as the base task's config fields, into ``values``."""
    hub = data.get("hf_dataset")
    if hub is not None:
        if "test" in data or "train" in data:
            _fail(path, "data.hf_dataset", "give hf_dataset or train/test files, not both")
        local = path.parent / str(hub)
        values["hf_dataset"] = str(local.resolve()) if local.exists() else str(hub)  # a folder or an id
        values.update({k: str(data[k]) for k in ("hf_config", "train_split", "test_split") if k in data})
    elif "test" not in data:
        _fail(path, "data.test", "required: the test data (or data.hf_dataset)")
    if kind == "text":
        for key in ("train", "test"):
            if key in data:
                values[f"{key}_file"] = _existing(path, f"data.{key}", data[key])
            if f"{key}_split" in data:
                values[f"{key}_split"] = str(data[f"{key}_split"])
        values.update({f"{k}_field": str(v) for k, v in fields.items()})
    else:
        _media_data(path, data, fields, hub is None, values)


def _media_data(path: Path, data: dict, fields: dict, from_files: bool, values: dict[str, Any]) -> None:
    """An image or audio task's caption tables, media folders, format and fields."""
    if from_files:
        values["annotations"] = _existing(path, "data.test", data["test"])
        if "media" not in data:
            _fail(path, "data.media", "required: the folder of the files the captions name")
        values["data_dir"] = _existing(path, "data.media", data["media"])
    if "train" in data:
        values["train_annotations"] = _existing(path, "data.train", data["train"])
        media = data.get("train_media", data["media"])
        values["train_data_dir"] = _existing(path, "data.train_media", media)
    if "format" in data:
        values["format"] = str(data["format"])
    captions = fields.get("references")
    if captions is not None:
        values["caption_field"] = ",".join(captions) if isinstance(captions, list) else str(captions)
    values.update({f"{k}_field": str(fields[k]) for k in ("media", "id") if k in fields})


def _tokenize(path: Path, kind: str, value: Any) -> str:
    if kind != "text":
        _fail(path, "tokenize", "image and audio tasks score COCO metrics on PTB tokens; only text "
              "tasks take a tokenisation")
    from harness.metrics.ngrams import (
        TOKENIZERS,  # here, not at module level: no metric code in the task's key
    )

    if value not in TOKENIZERS:
        _fail(path, "tokenize", f"expected one of {', '.join(TOKENIZERS)}, got {value!r}")
    return str(value)


_LOADED: dict[tuple[Path, str], type] = {}  # a file (and content) read once: registered once


def task_class(path: str | Path) -> type:
    """Read a task file and register the task it declares; returns the class."""
    path = Path(os.path.abspath(path))  # data paths: beside a symlink
    loaded = (path.resolve(), hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "")
    if loaded in _LOADED:
        return _LOADED[loaded]
    raw = read_yaml_mapping(path, "task file", sorted(TOP_KEYS))
    name, base_name, values, metrics = task_defaults(path, raw)
    base = get_task(base_name)
    hints = typing.get_type_hints(base.Config)
    known = {f.name for f in dataclasses.fields(base.Config)}
    for key in values:
        if key not in known:  # a key the chosen base cannot take (e.g. prompt on an old base)
            _fail(path, key, f"not a setting of the {base_name!r} task it builds on")
    config = dataclasses.make_dataclass(
        f"{name}_config", [(k, hints[k], dataclasses.field(default=v)) for k, v in values.items()],
        bases=(base.Config,))
    if metrics:
        from harness.metrics import registry  # here, not at module level: no metric code in the task's key

        for m in metrics:
            try:
                registry.spec(m)
            except registry.MetricNameError:
                offered = base(base.Config()).metric_names()
                _fail(path, "metrics", f"unknown metric {m!r}; {base_name} tasks report {', '.join(offered)} "
                      "(any registered metric may be named: `mclbench metrics` lists them)")
    description = str(raw.get("description") or f"Declared in {path.name}, built on {base_name}.")
    members = {"Config": config, "__doc__": description, "__module__": __name__,
               "version": f"{base.version}-{hashlib.sha256(path.read_bytes()).hexdigest()[:12]}"}
    if metrics:  # the declared selection: exactly these columns
        members["metric_names"] = lambda self: list(metrics)
    cls = type(name, (base,), members)
    taken = available("task")
    if name in taken:
        _fail(path, "name", f"{name!r} is the name of a task already registered ({taken[name].__module__}); "
              "give this task a name of its own")
    _LOADED[loaded] = register_task(name)(cls)
    return cls


def task_file_folders() -> list[Path]:
    extra = [Path(p) for p in os.environ.get("MCLBENCH_TASK_PATH", "").split(os.pathsep) if p]
    return [HERE / "files", *extra]


register_task_file_reader(task_class, task_file_folders)
