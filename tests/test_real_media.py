"""The real photos and recordings of tasks/data (Flickr8k, COCO-mini, Clotho, Tux Paint)
through the real-format loaders, the photo task's split, and the audio pipeline on real
recordings with the committed generated-clip base (a smoke test: its captions are poor)."""

import json
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from harness.cli import main
from harness.files import DataFormatError
from harness.metrics import coco
from tasks.captioning import loaders as cl
from tasks.captioning import photo_base
from tasks.captioning.audio_base import read_audio

pytest.importorskip("PIL")
pytest.importorskip("soundfile")
DATA = Path(__file__).parents[1] / "tasks" / "data"
CLOTHO = DATA / "real_audio" / "clotho_demo7"
TUX = DATA / "real_audio" / "tuxpaint_sounds"


def test_flickr8k_captions_txt_has_1000_photos_with_5_captions():
    examples = photo_base.flickr_examples()
    assert len(examples) == 1000 and {len(e.references) for e in examples} == {5}
    assert examples[0].id == "1000268201_693b08cb0e"
    assert examples[0].references[0] == ("A child in a pink dress is climbing up a set of stairs in an "
                                         "entry way .")
    assert all(e.source.is_file() for e in examples)


def test_coco_mini_jsons_have_159_photos():
    examples = photo_base.coco_mini_examples()
    assert len(examples) == 159
    assert sum(len(e.references) for e in examples) == 400 + 395
    assert min(len(e.references) for e in examples) >= 5


def test_photo_split_keeps_test_photos_out_of_training():
    from tasks.captioning.photo import PhotoCaptioningConfig, PhotoCaptioningTask

    base, monitor, test = photo_base.split(photo_base.Recipe(), 1000)
    assert (len(base), len(monitor), len(test)) == (700, 100, 200)
    assert not set(test) & set(base) and not set(monitor) & set(base) and not set(test) & set(monitor)
    task = PhotoCaptioningTask(PhotoCaptioningConfig())
    train, validation, tests = task._splits
    assert len(tests) == 200 and not validation and not {e.id for e in train} & {e.id for e in tests}
    coco_task = PhotoCaptioningTask(PhotoCaptioningConfig(test_set="coco_mini"))
    assert len(coco_task.test_examples()) == 159 and "modes_covered" not in coco_task.metric_names()
    with pytest.raises(ValueError, match="test_set must be one of flickr8k, coco_mini"):
        PhotoCaptioningConfig(test_set="coco").validate()


def test_photo_processor_matches_the_base_training_pixels():
    """The base learnt from photos squashed once (load_photos) and processed; a run processes
    the files: the same pixel values."""
    from PIL import Image

    paths = [e.source for e in photo_base.flickr_examples()[:3]]
    processor = photo_base.image_processor()
    ours = photo_base.processed_inputs(processor)(photo_base.load_photos(paths))["pixel_values"]
    processed = processor(images=[Image.open(p).convert("RGB") for p in paths],
                          return_tensors="pt")["pixel_values"]
    assert ours.shape == (3, 3, 224, 224) and float((ours - processed).abs().max()) == 0.0


def test_the_committed_base_is_read_with_the_same_processor():
    from transformers import AutoImageProcessor

    committed = AutoImageProcessor.from_pretrained(photo_base.BASE_DIR, backend="pil")
    assert committed.to_dict() | {"_processor_class": None} == (
        photo_base.image_processor().to_dict() | {"_processor_class": None})


def test_a_training_batch_takes_each_photo_or_its_mirror_image():
    features = np.arange(4 * 2 * 3, dtype=np.float32).reshape(4, 2, 3)
    out = photo_base.random_view(features, np.random.default_rng(0))
    assert out.shape == (4, 1, 3)
    views = [next(v for v in (0, 1) if np.array_equal(out[k, 0], features[k, v])) for k in range(4)]
    assert set(views) == {0, 1}  # both views drawn in 4 items for this seed
    assert np.array_equal(out, photo_base.random_view(features, np.random.default_rng(0)))


def test_the_photo_task_remembers_the_frozen_encoders_output_and_trains_the_same():
    """encoder_memo (on for photos): the committed base's encoder runs once per photo, the
    default all-linear adapters stay out of it, and NLLs and greedy captions equal the plain path's."""
    import torch

    from methods.lora.fast import FastMultiLoRAModel
    from methods.lora.model import MultiLoRAConfig
    from tasks.captioning.photo import PhotoCaptioningConfig, PhotoCaptioningTask

    task = PhotoCaptioningTask(PhotoCaptioningConfig(num_test=3))
    assert task.backbone_spec(0)["encoder_memo"] is True
    assert not PhotoCaptioningTask(PhotoCaptioningConfig(backbone="llava-hf/llava-1.5-7b-hf")).encoder_memo
    cfg = MultiLoRAConfig(num_hypotheses=2, rank=2, target_modules="all-linear")
    torch.manual_seed(0)
    memo = FastMultiLoRAModel(task.load_backbone(photo_base.BASE_DIR), cfg).eval()
    torch.manual_seed(0)
    plain = FastMultiLoRAModel(task.pretrained(photo_base.BASE_DIR), cfg).eval()
    calls = []
    memo.base_model.get_encoder().encoder.register_forward_hook(lambda m, a, k, out: calls.append(1),
                                                                with_kwargs=True)
    batch = task.training_set().batch(torch.arange(6))  # 6 captions of the first 2 photos
    with torch.no_grad():
        torch.testing.assert_close(memo.sequence_nll(batch), plain.sequence_nll(batch), rtol=1e-5, atol=1e-5)
        first = len(calls)
        memo.sequence_nll(batch)
    assert first >= 1 and len(calls) == first  # the second pass is answered from the memo
    pixels = task.prompt_batch(task.test_examples())
    gen = dict(max_new_tokens=8, do_sample=False, num_beams=1)
    with torch.no_grad():
        assert torch.equal(memo.generate_hypotheses(pixels, **gen), plain.generate_hypotheses(pixels, **gen))


def test_training_on_the_default_data_and_testing_on_real_clips():
    """train_annotations: default trains on the generated clips' adapter split and tests on
    the given annotations (here the 7 real Clotho clips)."""
    from tasks.captioning.audio import AudioCaptioningConfig, AudioCaptioningTask

    real = dict(annotations=str(CLOTHO / "clotho_captions_evaluation.csv"), data_dir=str(CLOTHO),
                format="clotho", skip_missing=True)
    task = AudioCaptioningTask(AudioCaptioningConfig(train_annotations="default", num_validation=5, **real))
    generated = AudioCaptioningTask(AudioCaptioningConfig(num_validation=5))
    train, validation, tests = task._splits
    assert [e.id for e in train] == [e.id for e in generated._splits[0]]
    assert [e.id for e in validation] == [e.id for e in generated._splits[1]]
    assert len(tests) == 7 and all(Path(e.source).parent == CLOTHO for e in tests)
    assert "mode_recall" not in task.metric_names()  # real clips: no known modes
    with pytest.raises(ValueError, match="train_annotations: default trains on the default data"):
        AudioCaptioningConfig(train_annotations="default", train_data_dir="x", **real).validate()


def test_clotho_tables_are_cp949_and_their_english_columns_are_read():
    raw = (CLOTHO / "clotho_captions_evaluation.csv").read_bytes()
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")
    examples = cl.read_clotho(CLOTHO / "clotho_captions_evaluation.csv", CLOTHO, skip_missing=True)
    assert len(examples) == 7 and {len(e.references) for e in examples} == {5}
    assert all(c.isascii() for e in examples for c in e.references)  # no Korean column
    pages = next(e for e in examples if e.id == "Flipping Pages")
    assert all("page" in c.lower() for c in pages.references[:1])
    with pytest.raises(DataFormatError, match=r"file '.*' not found in"):
        cl.read_clotho(CLOTHO / "clotho_captions_evaluation.csv", CLOTHO)  # 1 038 clips are not here
    dev = cl._read_csv(CLOTHO / "clotho_captions_development.csv", ["file_name"], ("utf-8", "cp949"))
    assert len(dev) == 2893


def test_the_7_clotho_clips_are_44k_wavs_read_at_16k():
    import soundfile as sf

    clips = sorted(CLOTHO.glob("*.wav"))
    assert len(clips) == 7
    for path in clips:
        info = sf.info(path)
        assert (info.samplerate, info.channels, info.subtype) == (44100, 1, "PCM_16")
        x = read_audio(path)
        assert abs(len(x) / 16000 - info.duration) < 0.01 and 15 <= info.duration <= 31


def test_the_107_recordings_in_the_audiofolder_layout():
    examples = cl.read_folder_metadata(TUX / "metadata.csv", TUX)
    assert len(examples) == 107 and all(len(e.references) == 1 for e in examples)
    frog = next(e for e in examples if e.id == "animals__amphibians__frog")
    assert frog.references == ["A frog."]  # the English label; caption_de is not a caption_N column
    labels = pd.read_csv(TUX / "labels.tsv", sep="\t")
    assert Counter(e.references[0] for e in examples) == Counter(labels["en"])
    assert all(read_audio(e.source).size > 1000 for e in examples[:5])


def test_an_unreadable_photo_or_clip_is_named(tmp_path):
    from tasks.captioning.audio import AudioCaptioningConfig, AudioCaptioningTask
    from tasks.captioning.photo import PhotoCaptioningConfig, PhotoCaptioningTask

    photos = tmp_path / "photos"
    photos.mkdir()
    shutil.copy(photo_base.flickr_examples()[0].source, photos / "good.jpg")
    (photos / "broken.jpg").write_bytes(b"\xff\xd8 truncated")
    task = PhotoCaptioningTask(PhotoCaptioningConfig())
    with pytest.raises(DataFormatError, match=r"broken\.jpg: not a readable image"):
        task.inputs([photos / "good.jpg", photos / "broken.jpg"])
    (tmp_path / "clip.ogg").write_bytes(b"OggS but not really")
    audio = AudioCaptioningTask(AudioCaptioningConfig())
    with pytest.raises(DataFormatError, match=r"clip\.ogg: not a readable audio file"):
        audio.inputs([tmp_path / "clip.ogg"])


@pytest.mark.slow
@pytest.mark.skipif(bool(coco.unavailable(["cider_d"])), reason="no Java here")
@pytest.mark.parametrize("data", ["clotho", "tuxpaint"])
def test_real_audio_runs_end_to_end_with_the_committed_base(tmp_path, monkeypatch, data):
    """The pipeline on real recordings: train, decode, score. Smoke only — the base learned
    generated beeps and tones, so its captions of real sounds are poor."""
    if data == "clotho":
        sets = [f"task.annotations={CLOTHO / 'clotho_captions_evaluation.csv'}", f"task.data_dir={CLOTHO}",
                "task.format=clotho", "task.skip_missing=true", "task.train_fraction=0.5"]
    else:
        sets = [f"task.annotations={TUX / 'metadata.csv'}", f"task.data_dir={TUX}", "task.format=audiofolder",
                "task.num_test=8"]
    monkeypatch.chdir(tmp_path)
    args = ["run", "--tasks", "audio_captioning", "--methods", "lora_mcl", "--seeds", "0", "--output",
            "out", "--cache-dir", "cache", "--no-tracking", "--set", "method.steps=2",
            "--set", "method.batch_size=4"]
    for s in sets:
        args += ["--set", s]
    assert main(args) == 0
    scores = pd.read_csv(tmp_path / "out" / "scores.csv").set_index("metric")["value"]
    assert 0 <= scores["top1/cider_d"] <= 10 and 0 <= scores["oracle_corpus/bleu_1"] <= 1
    assert "mode_recall" not in scores.index  # real data: no known modes


def test_report_and_readme_show_the_photo_beside_the_candidates(tmp_path, monkeypatch):
    """A decoded photo input names its file; the HTML report inlines the photo and the README
    examples block links it, above the references and every method's candidates."""
    from harness import view
    from harness.stages import write_candidates
    from tools import blocks

    monkeypatch.chdir(DATA.parents[1])
    examples = photo_base.flickr_examples()[:2]
    run = tmp_path / "run"
    for method, cands in [("beam", [["a dog"], ["a man"]]), ("lora_mcl", [["a dog runs"], ["a boy"]])]:
        cell = run / "cells" / "photo_captioning" / method / "seed0"
        cell.mkdir(parents=True)
        write_candidates(cell, examples, cands)
    (run / "run.json").write_text('{"methods": {"photo_captioning": {"beam": {}, "lora_mcl": {}}}}')
    first = (run / "cells" / "photo_captioning" / "beam" / "seed0" / "candidates.jsonl").read_text()
    assert '"file": "tasks/data/photos/flickr8k/images/1000268201_693b08cb0e.jpg"' in first
    block = blocks.examples(run, "photo_captioning", 0, [1])
    assert f'<img src="{examples[1].source.relative_to(DATA.parents[1])}"' in block
    assert "| beam | a man |" in block and "| lora_mcl | a boy |" in block
    assert f"| reference | {' · '.join(examples[1].references)} |" in block
    photo = view._media(json.loads(first.splitlines()[0])["file"], run)
    assert photo["kind"] == "image" and photo["src"].startswith("data:image/jpeg;base64,")
