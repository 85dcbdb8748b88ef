"""Task data given as an HF dataset (``hf_dataset``: a hub id, read with
``datasets.load_dataset``): local dataset folders stand in for the hub — WMT's nested
``translation`` column, photos and Clotho-style clips embedded in parquet — and a hub id
without a network fails with one line naming it."""

import csv
import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from datasets import Audio, Dataset, Image

from harness.cli import main
from harness.files import DataFormatError
from tasks.captioning.audio import AudioCaptioningConfig, AudioCaptioningTask
from tasks.captioning.image import ImageCaptioningConfig, ImageCaptioningTask
from tasks.translation.task import TranslationConfig, TranslationTask

DATA = Path(__file__).resolve().parents[1] / "tasks" / "data"


@pytest.fixture(autouse=True)
def datasets_cache(tmp_path, monkeypatch):
    """``datasets``' cache (and the media it writes) in tmp."""
    from datasets import config

    monkeypatch.setattr(config, "HF_DATASETS_CACHE", str(tmp_path / "hf_datasets"))


def _lines(name: str, n: int) -> list[str]:
    with gzip.open(DATA / "multi30k" / name, "rt", encoding="utf-8") as f:
        return [next(f).strip() for _ in range(n)]


@pytest.fixture
def wmt_like(tmp_path) -> Path:
    """A dataset folder laid out as the hub's wmt/wmt14 rows: {"translation": {"de", "en"}}."""
    folder = tmp_path / "wmt_like"
    folder.mkdir()
    for split, name, n in (("train", "train", 64), ("test", "test_2016_flickr", 5)):
        rows = [{"translation": {"en": en, "de": de}}
                for en, de in zip(_lines(f"{name}.en.gz", n), _lines(f"{name}.de.gz", n), strict=True)]
        (folder / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return folder


def test_translation_reads_nested_columns_of_a_dataset(wmt_like):
    config = TranslationConfig(hf_dataset=str(wmt_like), source_field="translation.en",
                               references_field="translation.de")
    task = TranslationTask(config)
    test = task.test_examples()
    assert [e.source for e in test] == _lines("test_2016_flickr.en.gz", 5)
    assert [e.references for e in test] == [[de] for de in _lines("test_2016_flickr.de.gz", 5)]
    assert len(task._train_pairs) == 64
    # train_split "": the task's own training pairs, the test split from the dataset
    default_train = TranslationTask(TranslationConfig(hf_dataset=str(wmt_like), train_split="",
                                                      source_field="translation.en",
                                                      references_field="translation.de"))
    assert len(default_train._train_pairs) > 1000


@pytest.mark.slow
def test_a_translation_run_on_a_dataset_folder(wmt_like, run_dirs):
    out, cache = run_dirs
    args = ["run", "--tasks", "translation", "--methods", "lora_mle", "--seeds", "0", "--no-tracking",
            "--output", str(out), "--cache-dir", str(cache), "--set", f"task.hf_dataset={wmt_like}",
            "--set", "task.source_field=translation.en", "--set", "task.references_field=translation.de",
            "--set", "task.max_new_tokens=8", "--set", "method.steps=2", "--set", "method.batch_size=4"]
    assert main(args) == 0
    rows = [json.loads(line) for line in (out / "cells/translation/lora_mle/seed0/candidates.jsonl").open()]
    assert [r["references"] for r in rows] == [[de] for de in _lines("test_2016_flickr.de.gz", 5)]
    scores = pd.read_csv(out / "scores.csv")
    assert {"max/bleu", "oracle_nll"} <= set(scores["metric"])


def test_missing_columns_and_splits_name_what_there_is(wmt_like):
    with pytest.raises(DataFormatError, match=r"no column 'translation.fr'; the rows have translation"):
        TranslationTask(TranslationConfig(hf_dataset=str(wmt_like), source_field="translation.fr",
                                          references_field="translation.de")).test_examples()
    unknown_split = r"HF dataset .*wmt_like.*Unknown split \"validation\".*train.*test"
    with pytest.raises(DataFormatError, match=unknown_split):
        TranslationTask(TranslationConfig(hf_dataset=str(wmt_like), test_split="validation",
                                          source_field="translation.en",
                                          references_field="translation.de")).test_examples()


def test_a_hub_id_offline_fails_with_one_line_naming_it(tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}
    run = subprocess.run([sys.executable, "-m", "harness.cli", "run", "--tasks", "translation", "--methods",
                          "lora_mle", "--seeds", "0", "--no-tracking", "--output", str(tmp_path / "out"),
                          "--cache-dir", str(tmp_path / "cache"), "--set", "task.hf_dataset=wmt/wmt14",
                          "--set", "task.hf_config=de-en"],
                         capture_output=True, text=True, env=env, timeout=300)
    assert run.returncode == 2
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and "'wmt/wmt14' (config 'de-en'), split 'test'" in lines[0]  # read first
    assert "without a network" in lines[0] and "Traceback" not in run.stderr


def test_photos_embedded_in_parquet(tmp_path):
    with open(DATA / "photos" / "flickr8k" / "captions.txt", newline="") as f:
        captions: dict[str, list[str]] = {}
        for row in csv.DictReader(f):
            captions.setdefault(row["image"], []).append(row["caption"])
    names = sorted(captions)[:6]
    images = [str(DATA / "photos" / "flickr8k" / "images" / n) for n in names]
    folder = tmp_path / "photos_like"
    folder.mkdir()
    ds = Dataset.from_dict({"image": images, "captions": [captions[n] for n in names], "name": names})
    ds.cast_column("image", Image()).to_parquet(str(folder / "test.parquet"))  # the bytes embedded
    config = ImageCaptioningConfig(hf_dataset=str(folder), train_split="", train_fraction=0.5,
                                   caption_field="captions", id_field="name")
    task = ImageCaptioningTask(config)
    test = task.test_examples()
    assert [e.id for e in test] == names[3:]
    assert [e.references for e in test] == [captions[n] for n in names[3:]]
    for e, original in zip(test, images[3:], strict=True):  # a file in the cache with the photo's bytes
        assert e.source.read_bytes() == Path(original).read_bytes() and e.source.suffix == ".jpg"
    assert "mode_recall" not in task.metric_names()  # real photos: no known modes
    assert task.data_fingerprint() == ImageCaptioningTask(task.config).data_fingerprint()


def test_clotho_like_clips_with_five_caption_columns(tmp_path):
    with open(DATA / "audio_clips" / "captions.csv", newline="") as f:
        rows = list(csv.DictReader(f))[:4]
    columns = [f"caption_{k}" for k in range(1, 6)]
    folder = tmp_path / "clotho_like"
    folder.mkdir()
    table = {"audio": [str(DATA / "audio_clips" / "audio" / r["file_name"]) for r in rows],
             **{c: [r[c] for r in rows] for c in columns}}
    Dataset.from_dict(table).cast_column("audio", Audio()).to_parquet(str(folder / "test.parquet"))
    Dataset.from_dict(table).cast_column("audio", Audio()).to_parquet(str(folder / "train.parquet"))
    task = AudioCaptioningTask(AudioCaptioningConfig(hf_dataset=str(folder), caption_field=",".join(columns)))
    test = task.test_examples()
    assert [e.references for e in test] == [[r[c] for c in columns] for r in rows]
    assert [e.source.read_bytes() for e in test] == [Path(p).read_bytes() for p in table["audio"]]
    assert task.inputs([test[0].source])["input_features"].shape[0] == 1  # the clip decodes


def test_a_task_file_names_a_dataset(wmt_like, tmp_path):
    from tasks.task_files import task_class

    path = tmp_path / "wmt_like_task.yaml"
    path.write_text("name: wmt_like_task\ndata: {hf_dataset: wmt_like, test_split: test}\n"
                    "fields: {source: translation.en, references: translation.de}\n")
    task = task_class(path)(task_class(path).Config())
    assert task.config.hf_dataset == str(wmt_like) and len(task.test_examples()) == 5
    bad = tmp_path / "both.yaml"
    bad.write_text("name: both_task\ndata: {hf_dataset: wmt_like, test: x.jsonl}\n")
    with pytest.raises(ValueError, match=r"both.yaml: data.hf_dataset: give hf_dataset or train/test files"):
        task_class(bad)
