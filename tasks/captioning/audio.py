"""Audio captioning: generated ambiguous clips offline by default, real formats on request.

Data (default): the generated clips of ``tasks/data/audio_clips`` (``tasks/captioning/audio_scenes.py``):
2 s of one to three events (tones, beeps, knocks, whistles, noise bursts, spoken words),
loud or quiet, one after the other or overlapping, over a background hiss, hum or rumble
in 60 % of the clips; five Clotho-style captions each that describe different subsets of
the clip. Split as the base's recipe says: the base learned from clips 0–799, the adapters
train on 800–1049, all methods are scored on 1050–1199. Other data: ``annotations`` +
``data_dir`` (the audio folder) in ``format`` clotho (``file_name, caption_1 … caption_5``;
UTF-8 or CP949), audiocaps (one caption a row) or audiofolder (``annotations``: the
folder's ``metadata.csv`` / ``.jsonl``); ``skip_missing: true`` scores the rows whose clip
is present. Audio of any rate and format libsndfile reads (WAV, FLAC, Ogg) is resampled to
16 kHz with scipy; the committed base hears the first 2 s.

Backbone (default): the committed Whisper-style captioner (``tasks/data/audio_base``;
``rebuild_base: true`` re-creates it with ``tasks/captioning/audio_base.py``). ``backbone: <path>``
loads any speech-to-text encoder–decoder (``AutoModelForSpeechSeq2Seq``) with its feature
extractor and tokenizer. Metrics: see :mod:`tasks.captioning`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, ClassVar

import torch

from harness.registry import register_task
from harness.task import Example
from tasks.captioning import audio_base
from tasks.captioning import loaders as cl
from tasks.captioning.task import CaptioningConfig, CaptioningTask


@dataclass
class AudioCaptioningConfig(CaptioningConfig):
    # with encoder_memo: the decoder reads the encoder's output over the first this many
    # seconds only (0: the whole window; Whisper encodes 30 s whatever the clip's length)
    encoder_seconds: float = 0.0
    FORMATS: ClassVar[tuple[str, ...]] = ("clotho", "audiocaps", "audiofolder")

    def validate(self) -> None:
        super().validate()
        if self.encoder_seconds < 0:
            raise ValueError(f"encoder_seconds must be >= 0, got {self.encoder_seconds}")
        if self.encoder_seconds and not self.encoder_memo:
            raise ValueError("encoder_seconds needs encoder_memo: true (it trims the remembered output)")


@register_task("audio_captioning")
class AudioCaptioningTask(CaptioningTask):
    """Captioning of audio clips: COCO metric flavours, candidate diversity and mode coverage."""

    Config = AudioCaptioningConfig
    input_modality = "audio"
    version = "3"  # 3: the harder clips (2 s, 1–3 events, overlaps, backgrounds); 2: N distinct beams
    base = audio_base
    semantic = True  # the paper reports SBERT similarity for audio captioning
    rebuild_env = "MCLBENCH_AUDIO_BASE"
    readers = {"clotho": cl.read_clotho, "audiocaps": cl.read_audiocaps,
               "audiofolder": cl.read_folder_metadata}

    def generated_examples(self) -> list[Example]:
        return cl.read_clotho(audio_base.CLIPS / "captions.csv", audio_base.CLIPS / "audio")

    def generated_modes(self) -> dict[str, list[dict]]:
        rows = json.loads((audio_base.CLIPS / "clips.json").read_text())
        return {Path(r["file_name"]).stem: r["captions"][:5] for r in rows}  # the five in captions.csv

    @cached_property
    def processor(self):
        from transformers import AutoFeatureExtractor

        return AutoFeatureExtractor.from_pretrained(self.source)

    # Qwen2-Audio's (base model) captioning prompt
    default_prompt = "<|audio_bos|><|AUDIO|><|audio_eos|>Generate the caption in English:"

    def backbone_spec(self, seed: int) -> dict[str, Any]:
        spec = super().backbone_spec(seed)
        return spec | {"encoder_seconds": self.config.encoder_seconds} if self.encoder_memo else spec

    def memo_frames(self, model: torch.nn.Module) -> int:
        frames_per_second = model.config.max_source_positions / self.processor.chunk_length
        return round(self.config.encoder_seconds * frames_per_second)

    def media(self, paths: list[Path]) -> dict[str, Any]:
        return {"audio": [audio_base.read_audio(p) for p in paths], "sampling_rate": audio_base.RATE}

    def inputs(self, paths: list[Path]) -> dict[str, torch.Tensor]:
        media = self.media(paths)
        feats = self.processor(media["audio"], sampling_rate=media["sampling_rate"], return_tensors="pt")
        return {"input_features": feats["input_features"]}
