"""The image-captioning task: any image-to-text checkpoint by path (tiny random one saved
to disk), COCO metrics and mode coverage in the run's table, bad configuration."""

import json

import pandas as pd
import pytest
import torch

from harness.cli import main
from harness.metrics import coco
from harness.metrics.modes import mode_coverage
from tasks.captioning import image_base as ib
from tasks.captioning.base import train_word_tokenizer
from tasks.captioning.image import ImageCaptioningConfig

pytest.importorskip("PIL")


def tiny_checkpoint(path):
    pixels, captions = ib.load_scenes()
    tok = train_word_tokenizer([c for caps in captions[:50] for c in caps])
    r = ib.Recipe(hidden=16, encoder_layers=1, decoder_layers=1, heads=2, patch=16)
    ib.build_model(r, len(tok)).save_pretrained(path)
    tok.save_pretrained(path)
    ib.image_processor().save_pretrained(path)
    return path


@pytest.mark.slow
@pytest.mark.skipif(bool(coco.unavailable(["cider_d"])), reason="no Java here")
def test_checkpoint_by_path_runs_and_scores(tmp_path, monkeypatch):
    ckpt = tiny_checkpoint(tmp_path / "ckpt")
    monkeypatch.chdir(tmp_path)
    args = ["run", "--tasks", "image_captioning", "--methods", "lora_mcl,diverse_beam", "--seeds", "0",
            "--output", "out", "--cache-dir", "cache", "--no-tracking", "--set", f"task.backbone={ckpt}",
            "--set", "task.num_train=16", "--set", "task.num_test=6", "--set", "task.max_new_tokens=5",
            "--set", "method.steps=2", "--set", "method.batch_size=4",
            "--set", "diverse_beam.num_candidates=2"]
    assert main(args) == 0
    scores = pd.read_csv(tmp_path / "out" / "scores.csv")
    metrics = set(scores["metric"])
    assert {"top1/cider_d", "oracle_corpus/meteor", "mean/bleu_4", "mbleu_4_ptb", "max/bleu_4", "oracle_nll",
            "mode_recall"} <= metrics
    assert "top1/spice" not in metrics  # n/a offline: never a number ...
    board = (tmp_path / "out" / "leaderboard.md").read_text()
    assert "spice: n/a — " in board  # ... but a reason in the footer


def test_mode_coverage_by_hand():
    tagged = [[{"mode": "count", "caption": "two shapes on a white background"},
               {"mode": "object:0", "caption": "a red circle on the left"},
               {"mode": "object:0", "caption": "there is a red circle at the left"}]]
    refs, labels = [[t["caption"] for t in tagged[0]]], [[t["mode"] for t in tagged[0]]]
    two_modes = [["a red circle on the left", "two shapes on a white background"]]
    assert dict(mode_coverage(two_modes, refs, labels)) == {"modes_covered": 2, "mode_recall": 1.0}
    one_mode = [["a red circle on the left", "there is a red circle at the left"]]
    # two wordings of one subset: one mode
    assert dict(mode_coverage(one_mode, refs, labels)) == {"modes_covered": 1, "mode_recall": 0.5}


@pytest.mark.parametrize("sets,msg", [
    ({"format": "vqa"}, "format must be one of coco, flickr, textcaps"),
    ({"annotations": "a.json"}, "set both annotations and data_dir"),
    ({"backbone": "x", "rebuild_base": True}, "cannot be combined with backbone"),
])
def test_bad_config(sets, msg):
    with pytest.raises(ValueError, match=msg):
        ImageCaptioningConfig(**sets).validate()


def test_scene_ground_truth_matches_the_split():
    rows = json.loads((ib.SCENES / "scenes.json").read_text())
    base, adapters, test = ib.split(ib.Recipe(), len(rows))
    assert (len(base), len(adapters), len(test)) == (2000, 700, 300)
    assert all(len(r["captions"]) >= 5 for r in rows)
    assert torch.is_tensor(ib.to_pixel_values(ib.load_scenes()[0][:2]))
