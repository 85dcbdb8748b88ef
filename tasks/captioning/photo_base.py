"""Pre-train the photo-captioning task's offline base once: a small ViT → GPT-2 captioner
learned from 700 real Flickr8k photos.

The default photo-captioning run loads the committed result (``tasks/data/photo_base/``);
this seeded script made it and re-creates it::

    python -m tasks.captioning.photo_base --work .mclbench_cache/photo_base

Data: ``tasks/data/photos/flickr8k`` (1 000 photos × 5 captions, read with the Flickr
loader), split by photo with a seeded permutation: ``test_photos`` for the test split,
the next ``monitor_photos`` for the training curve only, the rest for the base. The
adapters train on the base's photos again (there are no others; never on a test or
monitor photo). Photos are squashed to 64 × 64 (the task's image processor does the same);
training batches are flipped and shifted by up to 4 pixels at random. ``freeze_encoder``
keeps the ViT at its seeded random initialisation (a random-feature encoder), the
alternative that was measured against a trained one (README, "photo_captioning").
The summary also scores the base's greedy captions on COCO-mini (159 photos, out of
distribution) against the same caption-frequency baseline.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tasks.captioning import image_base
from tasks.captioning.base import against_frequency, cli, pretrain_captioner

PHOTOS = Path(__file__).parents[1] / "data" / "photos"
BASE_DIR = Path(__file__).parents[1] / "data" / "photo_base"
SIZE = 64


@dataclass
class Recipe(image_base.Captioner):
    steps: int = 1500
    test_photos: int = 200
    monitor_photos: int = 100
    freeze_encoder: bool = True  # a random-feature ViT (measured: better than a trained one here)


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
    """Squash to 64 × 64 (bilinear), pixels in [-1, 1]; Pillow and numpy only."""
    from transformers import ViTImageProcessorPil

    return ViTImageProcessorPil(do_resize=True, size={"height": SIZE, "width": SIZE}, do_rescale=True,
                                do_normalize=True, image_mean=[0.5] * 3, image_std=[0.5] * 3)


def load_pixels(paths) -> np.ndarray:
    """uint8 ``(B, 64, 64, 3)``: what :func:`image_processor` feeds the model, before scaling."""
    from PIL import Image

    return np.stack([np.asarray(Image.open(p).convert("RGB").resize((SIZE, SIZE), Image.BILINEAR))
                     for p in paths])


def augment(pixels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A random horizontal flip and a random shift of up to 4 pixels (edges reflected)."""
    out = np.empty_like(pixels)
    padded = np.pad(pixels, ((0, 0), (4, 4), (4, 4), (0, 0)), mode="reflect")
    for k, img in enumerate(padded):
        dy, dx = rng.integers(0, 9, size=2)
        crop = img[dy:dy + SIZE, dx:dx + SIZE]
        out[k] = crop[:, ::-1] if rng.random() < 0.5 else crop
    return out


def build_model(r: Recipe, vocab_size: int):
    model = image_base.build_model(r, vocab_size, image_size=SIZE)
    if r.freeze_encoder:
        model.encoder.requires_grad_(False)
    return model


def pretrain(r: Recipe, work: Path, output: Path) -> dict:
    examples = flickr_examples()
    pixels, captions = load_pixels([e.source for e in examples]), [e.references for e in examples]
    base, monitor, test = split(r, len(examples))
    summary = pretrain_captioner(r, work, output, items=pixels, captions=captions, split=(base, base, test),
                                 build_model=build_model, processor=image_processor(),
                                 to_inputs=image_base.pixel_inputs, augment=augment, monitor=monitor,
                                 desc="pre-train photo base")
    from transformers import PreTrainedTokenizerFast, VisionEncoderDecoderModel

    model = VisionEncoderDecoderModel.from_pretrained(output).float().eval()
    tokenizer = PreTrainedTokenizerFast.from_pretrained(output)
    coco_mini = coco_mini_examples()
    summary["coco_mini"] = against_frequency(
        model, tokenizer, image_base.pixel_inputs, load_pixels([e.source for e in coco_mini]),
        [e.references for e in coco_mini], summary["caption_frequency_baseline"]["caption"])
    (output / "training_summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary["coco_mini"], indent=2))
    return summary


def main(argv=None) -> None:
    cli(__doc__, Recipe, pretrain, "photo", BASE_DIR, argv)


if __name__ == "__main__":
    main()
