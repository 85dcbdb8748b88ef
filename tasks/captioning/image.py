"""Image captioning: generated ambiguous scenes offline by default, real formats on request.

Data (default): the generated scenes of ``tasks/data/scenes`` (``tasks/captioning/image_scenes.py``):
64×64 drawings of 1–3 shapes, each with ≥ 5 captions that describe different subsets of
the scene. Split as the base's recipe says: the base learned from scenes 0–1999, the
adapters train on 2000–2699, all methods are scored on 2700–2999. Other data:
``annotations`` + ``data_dir`` (the image folder) in ``format`` coco (COCO caption JSON),
flickr (``captions.txt`` / ``results.csv`` / token file), textcaps (JSON) or imagefolder
(``annotations``: the folder's ``metadata.csv`` / ``.jsonl``); ``train_annotations`` likewise
for the adapters (default: the first ``train_fraction`` of ``annotations``). Real photos:
the ``photo_captioning`` task.

Backbone (default): the committed ViT → GPT-2 captioner (``tasks/data/image_base``;
``rebuild_base: true`` re-creates it with ``tasks/captioning/image_base.py``). ``backbone: <path>``
loads any ``VisionEncoderDecoderModel`` checkpoint with its image processor and tokenizer.
Metrics: see :mod:`tasks.captioning`.
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
from tasks.captioning import image_base
from tasks.captioning import loaders as cl
from tasks.captioning.task import CaptioningConfig, CaptioningTask


@dataclass
class ImageCaptioningConfig(CaptioningConfig):
    FORMATS: ClassVar[tuple[str, ...]] = ("coco", "flickr", "textcaps", "imagefolder")


@register_task("image_captioning")
class ImageCaptioningTask(CaptioningTask):
    """Captioning of images: COCO metric flavours, candidate diversity and mode coverage."""

    Config = ImageCaptioningConfig
    input_modality = "image"
    version = "1"
    base = image_base
    rebuild_env = "MCLBENCH_IMAGE_BASE"
    readers = {"coco": cl.read_coco_captions, "flickr": cl.read_flickr, "textcaps": cl.read_textcaps,
               "imagefolder": cl.read_folder_metadata}

    def generated_examples(self) -> list[Example]:
        return cl.read_coco_captions(image_base.SCENES / "captions.json", image_base.SCENES / "images")

    def generated_modes(self) -> dict[str, list[dict]]:
        rows = json.loads((image_base.SCENES / "scenes.json").read_text())
        return {f"scene_{r['image_id']:05d}": r["captions"] for r in rows}

    @cached_property
    def processor(self):
        from transformers import AutoImageProcessor

        return AutoImageProcessor.from_pretrained(self.source, backend="pil")  # no torchvision here

    # LLaVA-1.5/1.6 (Vicuna) conversation format
    default_prompt = "USER: <image>\nDescribe the image in one sentence. ASSISTANT:"

    def media(self, paths: list[Path]) -> dict[str, Any]:
        from PIL import Image

        images = []
        for p in paths:
            try:
                images.append(Image.open(p).convert("RGB"))
            except OSError as exc:
                raise cl.DataFormatError(f"{p}: not a readable image ({exc})") from None
        return {"images": images}

    def inputs(self, paths: list[Path]) -> dict[str, torch.Tensor]:
        return {"pixel_values": self.processor(**self.media(paths), return_tensors="pt")["pixel_values"]}
