"""Pre-train the audio-captioning task's offline base once: a small Whisper-style captioner.

The default audio-captioning run loads the committed result (``tasks/data/audio_base/``);
this seeded script made it and re-creates it::

    python -m tasks.captioning.audio_base --work .mclbench_cache/audio_base

Data: the generated clips of ``tasks/data/audio_clips`` (``tasks/captioning/audio_scenes.py``), read at
16 kHz and turned into 40-band log-mel features over 2 s by a ``WhisperFeatureExtractor``
(numpy only); the base learns from clips ``[0, base_items)``, the adapters from the next
``adapter_items``, the rest is the test split. Every (clip, caption) pair is one example.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from tasks.captioning.base import cli, consecutive_split, pretrain_captioner

CLIPS = Path(__file__).parents[1] / "data" / "audio_clips"
BASE_DIR = Path(__file__).parents[1] / "data" / "audio_base"
RATE = 16_000


@dataclass
class Recipe:
    seed: int = 0
    base_items: int = 800
    adapter_items: int = 250
    d_model: int = 128
    encoder_layers: int = 3
    decoder_layers: int = 2
    heads: int = 4
    mel_bins: int = 40
    seconds: int = 2
    batch_size: int = 64
    steps: int = 1500
    lr: float = 1e-3
    warmup: int = 200
    label_smoothing: float = 0.1


def split(r: Recipe, n: int) -> tuple[range, range, range]:
    return consecutive_split(r.base_items, r.adapter_items, n)


def read_audio(path: Path) -> np.ndarray:
    """Mono float samples at 16 kHz (resampled with scipy: torchaudio does not work here)."""
    from math import gcd

    import soundfile as sf
    from scipy.signal import resample_poly

    from harness.files import DataFormatError

    try:
        x, rate = sf.read(path, dtype="float32", always_2d=True)
    except (RuntimeError, sf.LibsndfileError) as exc:
        raise DataFormatError(f"{path}: not a readable audio file ({exc})") from None
    x = x.mean(1)
    if rate != RATE:
        g = gcd(rate, RATE)
        x = resample_poly(x, RATE // g, rate // g).astype(np.float32)
    return x


def feature_extractor(r: Recipe | None = None):
    from transformers import WhisperFeatureExtractor

    r = r or Recipe()
    return WhisperFeatureExtractor(feature_size=r.mel_bins, sampling_rate=RATE, hop_length=160,
                                   chunk_length=r.seconds, n_fft=400)


def load_clips(folder: Path = CLIPS):
    """``(features (N, mel_bins, frames), captions per clip)`` of the generated set."""
    from tasks.captioning.loaders import read_clotho

    examples = read_clotho(folder / "captions.csv", folder / "audio")
    fe = feature_extractor()
    feats = fe([read_audio(e.source) for e in examples], sampling_rate=RATE, return_tensors="np")
    return feats["input_features"].astype(np.float32), [e.references for e in examples]


def build_model(r: Recipe, vocab_size: int):
    from transformers import WhisperConfig, WhisperForConditionalGeneration

    frames = r.seconds * RATE // 160
    torch.manual_seed(r.seed)
    model = WhisperForConditionalGeneration(WhisperConfig(
        vocab_size=vocab_size, num_mel_bins=r.mel_bins, d_model=r.d_model, encoder_layers=r.encoder_layers,
        decoder_layers=r.decoder_layers, encoder_attention_heads=r.heads, decoder_attention_heads=r.heads,
        encoder_ffn_dim=4 * r.d_model, decoder_ffn_dim=4 * r.d_model, max_source_positions=frames // 2,
        max_target_positions=32, decoder_start_token_id=1, pad_token_id=0, eos_token_id=2, bos_token_id=1,
        begin_suppress_tokens=None, suppress_tokens=None, dropout=0.1))
    model.generation_config.max_new_tokens = 20
    return model


def feature_inputs(features: np.ndarray) -> dict[str, torch.Tensor]:
    return {"input_features": torch.from_numpy(np.ascontiguousarray(features))}


def pretrain(r: Recipe, work: Path, output: Path) -> dict:
    features, captions = load_clips()
    return pretrain_captioner(r, work, output, items=features, captions=captions,
                              split=split(r, len(features)), build_model=build_model,
                              processor=feature_extractor(r), to_inputs=feature_inputs,
                              desc="pre-train audio base")


def main(argv=None) -> None:
    cli(__doc__, Recipe, pretrain, "audio", BASE_DIR, argv)


if __name__ == "__main__":
    main()
