"""The audio-captioning task: the committed clips reproduce from their seed, audio of any
rate is read at 16 kHz, any speech-to-text checkpoint by path runs and is scored."""

import json
import shutil

import numpy as np
import pandas as pd
import pytest
import torch
import transformers

from harness.cli import main
from harness.config import ConfigError
from harness.files import DataFormatError
from harness.metrics import coco
from tasks.captioning import audio_base as ab
from tasks.captioning import audio_scenes
from tasks.captioning.base import train_word_tokenizer

pytest.importorskip("soundfile")


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng regenerates the set; not installed")
def test_generator_reproduces_the_committed_clips(tmp_path):
    audio_scenes.generate(tmp_path, num=6, seed=0)
    for k in range(6):
        name = f"audio/clip_{k:05d}.flac"
        assert (tmp_path / name).read_bytes() == (ab.CLIPS / name).read_bytes(), name
    committed = json.loads((ab.CLIPS / "clips.json").read_text())
    assert json.loads((tmp_path / "clips.json").read_text()) == committed[:6]


def test_committed_clips_have_ambiguous_captions():
    clips = json.loads((ab.CLIPS / "clips.json").read_text())
    assert len(clips) == 1200
    for c in clips:
        assert len(c["captions"]) >= 5
        assert len({t["mode"] for t in c["captions"]}) >= 2  # more than one described subset


def test_committed_clips_mix_event_counts_overlaps_and_backgrounds():
    """The second version of the set: 1–3 events, overlaps and background beds, each
    caption's mode consistent with the clip's ground truth."""
    clips = json.loads((ab.CLIPS / "clips.json").read_text())
    assert {len(c["events"]) for c in clips} == {1, 2, 3}
    many = [c for c in clips if len(c["events"]) > 1]
    assert 0.4 < np.mean([c["overlap"] for c in many]) < 0.6
    assert 0.5 < np.mean([c["background"] is not None for c in clips]) < 0.7
    for c in clips:
        modes = {t["mode"] for t in c["captions"]}
        assert ("background" in modes) == (c["background"] is not None)
        assert ("order" in modes) == (len(c["events"]) > 1)
        assert {f"event:{i}" for i in range(len(c["events"]))} <= modes


def test_read_audio_resamples_to_16k_and_names_bad_files(tmp_path):
    import soundfile as sf

    sf.write(tmp_path / "a.wav", np.zeros(22050, dtype="float32"), 22050)  # 1 s at 22.05 kHz
    assert ab.read_audio(tmp_path / "a.wav").shape == (16000,)
    (tmp_path / "bad.wav").write_bytes(b"not audio")
    with pytest.raises(DataFormatError, match=r"bad\.wav: not a readable audio file"):
        ab.read_audio(tmp_path / "bad.wav")


@pytest.mark.slow
@pytest.mark.skipif(bool(coco.unavailable(["cider_d"])), reason="no Java here")
def test_checkpoint_by_path_runs_and_scores(tmp_path, monkeypatch):
    ckpt = tmp_path / "ckpt"
    rows = json.loads((ab.CLIPS / "clips.json").read_text())
    tok = train_word_tokenizer([c["caption"] for r in rows[:100] for c in r["captions"]])
    r = ab.Recipe(d_model=16, encoder_layers=1, decoder_layers=1, heads=2)
    ab.build_model(r, len(tok)).save_pretrained(ckpt)
    tok.save_pretrained(ckpt)
    ab.feature_extractor(r).save_pretrained(ckpt)
    monkeypatch.chdir(tmp_path)
    args = ["run", "--tasks", "audio_captioning", "--methods", "lora_mcl,diverse_beam", "--seeds", "0",
            "--output", "out", "--cache-dir", "cache", "--no-tracking", "--set", f"task.backbone={ckpt}",
            "--set", "task.num_train=8", "--set", "task.num_test=4", "--set", "task.max_new_tokens=5",
            "--set", "method.steps=2", "--set", "method.batch_size=4",
            "--set", "diverse_beam.num_candidates=2"]
    assert main(args) == 0
    metrics = set(pd.read_csv(tmp_path / "out" / "scores.csv")["metric"])
    assert {"top1/cider_d", "oracle_corpus/meteor", "mbleu_4_ptb", "max/meteor", "oracle_nll",
            "mode_recall"} <= metrics


def test_beam_search_on_the_whisper_base_returns_distinct_beams():
    """Whisper's own generate turns num_return_sequences into copies of the input; the
    methods must get N different beams."""
    from methods.lora.base import LoRAMethod
    from methods.lora.fast import FastMultiLoRAModel
    from methods.lora.model import MultiLoRAConfig
    from tasks.captioning.audio import AudioCaptioningConfig, AudioCaptioningTask

    task = AudioCaptioningTask(AudioCaptioningConfig(num_test=4))
    model = FastMultiLoRAModel(task.load_backbone(ab.BASE_DIR), MultiLoRAConfig(num_hypotheses=1, rank=2,
                                                                           target_modules="all-linear"))
    prompt = task.prompt_batch(task.test_examples())
    cands = LoRAMethod.generate_n(model, task, prompt, 3, num_beams=3, do_sample=False)
    assert all(len(set(c)) == 3 for c in cands), cands


def _memo_task(**config):
    from tasks.captioning.audio import AudioCaptioningConfig, AudioCaptioningTask

    return AudioCaptioningTask(AudioCaptioningConfig(num_test=4, encoder_memo=True, **config))


def test_the_memoised_encoder_runs_once_per_clip_and_returns_the_encoders_output():
    task = _memo_task()
    plain = task.pretrained(ab.BASE_DIR)
    model = task.load_backbone(ab.BASE_DIR)
    inner = model.get_encoder().encoder
    calls = []
    inner.register_forward_hook(lambda m, args, kwargs, out: calls.append(kwargs["input_features"].shape[0]),
                                with_kwargs=True)
    features = task.prompt_batch(task.test_examples())["input_features"]
    with torch.no_grad():
        expected = plain.get_encoder()(features).last_hidden_state
        first = model.get_encoder()(features).last_hidden_state
        again = model.get_encoder()(features[[2, 0]]).last_hidden_state
    assert calls == [4]  # the second call is answered from the memo
    torch.testing.assert_close(first, expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(again, expected[[2, 0]], rtol=1e-5, atol=1e-5)


def test_encoder_seconds_keeps_the_first_frames_and_enters_the_backbone_key():
    full, trimmed = _memo_task(), _memo_task(encoder_seconds=1.0)
    features = full.prompt_batch(full.test_examples())["input_features"]
    with torch.no_grad():
        whole = full.load_backbone(ab.BASE_DIR).get_encoder()(features).last_hidden_state
        first = trimmed.load_backbone(ab.BASE_DIR).get_encoder()(features).last_hidden_state
    assert whole.shape[1] == 100 and first.shape[1] == 50  # the base's 2 s window: 50 frames a second
    torch.testing.assert_close(first, whole[:, :50])
    no_memo = type(full)(type(full.config)())
    assert len({str(t.backbone_spec(0)) for t in (full, trimmed, no_memo)}) == 3


def test_lora_mcl_trains_the_same_with_the_memoised_encoder_and_refuses_an_adapted_encoder():
    from methods.lora.fast import FastMultiLoRAModel
    from methods.lora.model import MultiLoRAConfig

    task = _memo_task()
    cfg = MultiLoRAConfig(num_hypotheses=2, rank=2,
                          target_modules=["model.decoder.*.q_proj", "model.decoder.*.fc1"])
    torch.manual_seed(0)
    memo = FastMultiLoRAModel(task.load_backbone(ab.BASE_DIR), cfg)
    torch.manual_seed(0)
    plain = FastMultiLoRAModel(task.pretrained(ab.BASE_DIR), cfg)
    batch = task.training_set().batch(torch.arange(6))
    memo.eval(), plain.eval()  # the adapters' dropout
    torch.testing.assert_close(memo.sequence_nll(batch), plain.sequence_nll(batch), rtol=1e-5, atol=1e-5)
    adapted = FastMultiLoRAModel(task.load_backbone(ab.BASE_DIR), MultiLoRAConfig(
        num_hypotheses=2, rank=2, target_modules="all-linear"))
    with pytest.raises(ValueError, match="adapter was put into the encoder.*encoder_memo"):
        adapted.sequence_nll(batch)


def test_validation_clips_are_held_out_of_training_and_bad_memo_settings_are_refused():
    from tasks.captioning.audio import AudioCaptioningConfig, AudioCaptioningTask

    task = AudioCaptioningTask(AudioCaptioningConfig(num_validation=5))
    held = {src for src, _ in task.validation_set().pairs}
    trained = {src for src, _ in task.training_set().pairs}
    assert len(held) == 5 and not held & trained and len(trained) == 245
    assert AudioCaptioningTask(AudioCaptioningConfig()).validation_set() is None
    with pytest.raises(ValueError, match="encoder_seconds needs encoder_memo"):
        AudioCaptioningConfig(encoder_seconds=2.0).validate()
    decoder_only = transformers.GPT2LMHeadModel(transformers.GPT2Config(n_layer=1, n_embd=8, n_head=2))
    with pytest.raises(ConfigError, match="needs an encoder-decoder backbone.*encoder_memo=false"):
        AudioCaptioningTask(AudioCaptioningConfig(encoder_memo=True)).ready_backbone(decoder_only)


def test_caption_targets_drop_a_leading_decoder_start_token():
    """Whisper's tokenizer writes <|startoftranscript|> first; the model prepends it itself."""
    task = _memo_task()
    task.__dict__["tokenizer"] = lambda caption: {"input_ids": [7, 11, 12, 2]}
    task.__dict__["_decoder_start"] = 7
    assert task.caption_ids("a dog") == [11, 12, 2]
    task.__dict__["_decoder_start"] = 1
    assert task.caption_ids("a dog") == [7, 11, 12, 2]
