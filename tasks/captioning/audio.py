"""Audio captioning: generated ambiguous clips offline by default, real formats on request.

Data (default): the generated clips of ``tasks/data/audio_clips`` (``tasks/captioning/audio_scenes.py``):
1.6 s of one or two events (tones, beeps, whistles, noise, spoken words), five
Clotho-style captions each that describe different subsets of the clip. Split as the
base's recipe says: the base learned from clips 0–799, the adapters train on 800–1049, all
methods are scored on 1050–1199. Other data: ``annotations`` + ``data_dir`` (the audio
folder) in ``format`` clotho (``file_name, caption_1 … caption_5``) or audiocaps (one caption
a row); audio of any rate is read with soundfile and resampled to 16 kHz with scipy.

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
from typing import ClassVar

import torch

from harness.registry import register_task
from harness.task import Example
from tasks.captioning import audio_base
from tasks.captioning import loaders as cl
from tasks.captioning.task import CaptioningConfig, CaptioningTask


@dataclass
class AudioCaptioningConfig(CaptioningConfig):
    FORMATS: ClassVar[tuple[str, ...]] = ("clotho", "audiocaps")


@register_task("audio_captioning")
class AudioCaptioningTask(CaptioningTask):
    """Captioning of audio clips: COCO metric flavours, candidate diversity and mode coverage."""

    Config = AudioCaptioningConfig
    version = "2"  # 2: beam search through Whisper returns N distinct beams (was N copies of the best)
    base = audio_base
    semantic = True  # the paper reports SBERT similarity for audio captioning
    rebuild_env = "MCLBENCH_AUDIO_BASE"
    readers = {"clotho": cl.read_clotho, "audiocaps": cl.read_audiocaps}

    def generated_examples(self) -> list[Example]:
        return cl.read_clotho(audio_base.CLIPS / "captions.csv", audio_base.CLIPS / "audio")

    def generated_modes(self) -> dict[str, list[dict]]:
        rows = json.loads((audio_base.CLIPS / "clips.json").read_text())
        return {Path(r["file_name"]).stem: r["captions"][:5] for r in rows}  # the five in captions.csv

    @cached_property
    def processor(self):
        from transformers import AutoFeatureExtractor

        return AutoFeatureExtractor.from_pretrained(self.source)

    def inputs(self, paths: list[Path]) -> dict[str, torch.Tensor]:
        audio = [audio_base.read_audio(p) for p in paths]
        feats = self.processor(audio, sampling_rate=audio_base.RATE, return_tensors="pt")
        return {"input_features": feats["input_features"]}
