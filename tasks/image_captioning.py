"""Image captioning: generated ambiguous scenes offline by default, real formats on request.

Data (default): the generated scenes of ``tasks/data/scenes`` (``tasks/image_scenes.py``):
64×64 drawings of 1–3 shapes, each with ≥ 5 captions that describe different subsets of
the scene (the *modes*). Split as the base's recipe says: the base learned from scenes
0–1999, the adapters train on 2000–2699, all methods are scored on 2700–2999. Other data:
``annotations`` + ``image_dir`` in ``format`` coco (COCO caption JSON), flickr
(``results.csv`` / token file) or textcaps (JSON); ``train_annotations`` likewise for the
adapters (default: the same file's first ``train_fraction``).

Backbone (default): the committed ViT → GPT-2 captioner (``tasks/data/image_base``;
``rebuild_base: true`` re-creates it). ``backbone: <path>`` loads any ``transformers``
image-to-text encoder–decoder (``AutoModelForVision2Seq``) with its processor and tokenizer.

Metrics: the COCO caption metrics in the ``top1/``, ``mean/``, ``oracle/`` flavours (SPICE /
SPIDEr "n/a" offline, with the reason in the footer), mBLEU-4, Div-1/2, vocab, unique; on
the generated scenes also ``modes_covered`` / ``mode_recall``: the distinct described
subsets that some candidate matches best (by sentence BLEU over the tagged references).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import torch

from harness import caption_loaders as cl
from harness import scoring
from harness.metrics import coco
from harness.metrics import diversity as dv
from harness.metrics.text import sentence_bleu
from harness.registry import register_task
from harness.task import Example, MetricInfo, Task, TrainingSet
from tasks import image_base as ib

READERS = {"coco": cl.read_coco_captions, "flickr": cl.read_flickr, "textcaps": cl.read_textcaps}
COCO_NAMES = [m for m in coco.COCO if m not in coco.NEEDS_SPICE]


@dataclass
class ImageCaptioningConfig:
    backbone: str = ""  # "": the committed base; else a local path of an image-to-text model
    rebuild_base: bool = False
    format: str = "coco"  # coco | flickr | textcaps
    annotations: str | None = None  # test captions (and training ones unless train_annotations)
    image_dir: str | None = None
    train_annotations: str | None = None
    train_image_dir: str | None = None
    train_fraction: float = 0.8  # without train_annotations: this share of `annotations` trains
    num_train: int = 0  # 0: all
    num_test: int = 0  # 0: all
    max_new_tokens: int = 20

    def validate(self) -> None:
        if self.format not in READERS:
            raise ValueError(f"format must be one of {', '.join(READERS)}, got {self.format!r}")
        if (self.annotations is None) != (self.image_dir is None):
            raise ValueError("set both annotations and image_dir, or neither (the generated scenes)")
        if self.train_annotations and not self.annotations:
            raise ValueError("train_annotations needs annotations (the test set) too")
        if not 0 < self.train_fraction < 1:
            raise ValueError("train_fraction must lie in (0, 1)")
        if self.backbone and self.rebuild_base:
            raise ValueError("rebuild_base re-creates the offline base; it cannot be combined with backbone")


class _ImageCaptionSet(TrainingSet):
    def __init__(self, task: ImageCaptioningTask, examples: list[Example]):
        self.task = task
        tok = task.tokenizer
        self.pairs = [(e.source, tok(c)["input_ids"][: task.config.max_new_tokens + 1])
                      for e in examples for c in e.references]

    def __len__(self) -> int:
        return len(self.pairs)

    def batch(self, indices: torch.Tensor) -> dict[str, torch.Tensor]:
        chosen = [self.pairs[i] for i in indices.tolist()]
        width = max(len(ids) for _, ids in chosen)
        labels = torch.tensor([ids + [-100] * (width - len(ids)) for _, ids in chosen])
        return {"pixel_values": self.task.pixels([src for src, _ in chosen]), "labels": labels}


@register_task("image_captioning")
class ImageCaptioningTask(Task):
    """Captioning of images: COCO metric flavours, candidate diversity and mode coverage."""

    Config = ImageCaptioningConfig
    version = "1"
    training_defaults = {"steps": 400, "batch_size": 32, "lr": 2e-3, "target_modules": "all-linear"}

    @property
    def metrics(self) -> dict[str, MetricInfo]:  # type: ignore[override]
        names = [f"{f}/{m}" for m in COCO_NAMES for f in ("top1", "mean", "oracle")]
        names += ["mbleu_4", "div_1", "div_2", "vocab", "unique"]
        out = {n: scoring.metric_info(n) for n in names}
        if self._scene_rows is not None:
            out["modes_covered"] = MetricInfo(True, "distinct described subsets best-matched by a candidate")
            out["mode_recall"] = MetricInfo(True, "modes_covered / the scene's described subsets")
        return out

    # ---------------------------------------------------------------------------- data
    @cached_property
    def _splits(self) -> tuple[list[Example], list[Example]]:
        c = self.config
        if c.annotations is None:
            examples = cl.read_coco_captions(ib.SCENES / "captions.json", ib.SCENES / "images")
            _, adapters, test = ib.split(ib.ImageBaseRecipe(), len(examples))
            train, tests = [examples[i] for i in adapters], [examples[i] for i in test]
        else:
            examples = READERS[c.format](c.annotations, c.image_dir)
            if c.train_annotations:
                train = READERS[c.format](c.train_annotations, c.train_image_dir or c.image_dir)
                tests = examples
            else:
                cut = int(len(examples) * c.train_fraction)
                train, tests = examples[:cut], examples[cut:]
        train = train[: c.num_train] if c.num_train else train
        return train, (tests[: c.num_test] if c.num_test else tests)

    @cached_property
    def _scene_rows(self) -> dict[str, dict] | None:
        """Ground truth of the generated scenes (None for other data)."""
        if self.config.annotations is not None:
            return None
        rows = json.loads((ib.SCENES / "scenes.json").read_text())
        return {f"scene_{r['image_id']:05d}": r for r in rows}

    def data_fingerprint(self) -> str:
        h = hashlib.sha256()
        for e in self._splits[0] + self._splits[1]:
            h.update(repr((e.id, Path(e.source).name, e.references)).encode())
            h.update(hashlib.sha256(Path(e.source).read_bytes()).digest())
        return h.hexdigest()

    def training_set(self) -> TrainingSet:
        return _ImageCaptionSet(self, self._splits[0])

    def test_examples(self) -> list[Example]:
        return self._splits[1]

    # ------------------------------------------------------------------------ backbone
    @property
    def _source(self) -> str:
        c = self.config
        if c.backbone:
            return c.backbone
        if c.rebuild_base:
            return os.environ.get("MCLBENCH_IMAGE_BASE", ".mclbench_cache/image_base/out")
        return str(ib.BASE_DIR)

    def backbone_spec(self, seed: int) -> dict[str, Any]:
        if self.config.rebuild_base:
            from dataclasses import asdict

            return {"rebuild": asdict(ib.ImageBaseRecipe())}
        h = hashlib.sha256()
        for f in sorted(p for p in Path(self._source).iterdir() if p.is_file()):
            h.update(f.name.encode() + f.read_bytes())
        return {"checkpoint": h.hexdigest()}

    def build_backbone(self, seed: int):
        if self.config.rebuild_base and not Path(self._source, "model.safetensors").exists():
            out = Path(self._source)
            ib.pretrain(ib.ImageBaseRecipe(), out.parent / "work", out)
        return self.load_backbone(self._source)

    def load_backbone(self, directory):
        from transformers import AutoModelForImageTextToText, VisionEncoderDecoderModel

        try:
            return VisionEncoderDecoderModel.from_pretrained(directory, dtype=torch.float32).eval()
        except (ValueError, OSError):
            return AutoModelForImageTextToText.from_pretrained(directory, dtype=torch.float32).eval()

    @cached_property
    def tokenizer(self):
        from transformers import AutoTokenizer

        tok = AutoTokenizer.from_pretrained(self._source)
        if tok.pad_token is None:
            tok.pad_token = tok.eos_token
        return tok

    @cached_property
    def processor(self):
        from transformers import AutoImageProcessor

        return AutoImageProcessor.from_pretrained(self._source, use_fast=False)

    def pixels(self, paths: list[Path]) -> torch.Tensor:
        from PIL import Image

        images = []
        for p in paths:
            try:
                images.append(Image.open(p).convert("RGB"))
            except OSError as exc:
                raise cl.DataFormatError(f"{p}: not a readable image ({exc})") from None
        return self.processor(images=images, return_tensors="pt")["pixel_values"]

    # ------------------------------------------------------------------------ decoding
    def prompt_batch(self, examples: list[Example]) -> dict[str, torch.Tensor]:
        return {"pixel_values": self.pixels([e.source for e in examples])}

    def generation_kwargs(self) -> dict[str, Any]:
        tok = self.tokenizer
        return {"max_new_tokens": self.config.max_new_tokens, "pad_token_id": tok.pad_token_id,
                "eos_token_id": tok.eos_token_id}

    def decode_outputs(self, prompt, sequences: torch.Tensor) -> list[str]:
        return [t.strip() for t in self.tokenizer.batch_decode(sequences, skip_special_tokens=True)]

    # ------------------------------------------------------------------------- scoring
    def score(self, model, examples, candidates):
        refs = [e.references for e in examples]
        values, missing = coco.coco_flavours(candidates, refs, COCO_NAMES)
        div = dv.diversity(candidates, refs)
        values.update({k: v for k, v in div.items() if k in self.metrics})
        if self._scene_rows is not None:
            tagged = [self._scene_rows[e.id]["captions"] for e in examples]
            covered, recall = mode_coverage(candidates, tagged)
            values.update(modes_covered=covered, mode_recall=recall)
        return values, {"unavailable": missing}

    def notes(self) -> list[str]:
        missing = coco.unavailable(coco.COCO)
        lines = ["COCO metrics: pycocoevalcap on PTB-tokenised text; 0–1 scale (CIDEr-D 0–10)"]
        lines += [f"{m}: n/a — {reason}" for m, reason in missing.items()]
        return lines


def mode_coverage(candidates: list[list[str]], tagged: list[list[dict]]) -> tuple[float, float]:
    """Per input: the modes of the references that some candidate matches best (sentence
    BLEU, ties: the first); returns the mean count and the mean share of the input's modes."""
    counts, shares = [], []
    for cands, caps in zip(candidates, tagged, strict=True):
        hit = set()
        for c in cands:
            scores = [sentence_bleu(c.lower(), [t["caption"].lower()]) for t in caps]
            hit.add(caps[int(np.argmax(scores))]["mode"])
        counts.append(len(hit))
        shares.append(len(hit) / len({t["mode"] for t in caps}))
    return float(np.mean(counts)), float(np.mean(shares))
