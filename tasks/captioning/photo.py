"""Photo captioning: real photographs with five human captions each (Flickr8k, COCO).

Data (default): ``tasks/data/photos`` — 1 000 Flickr8k photos (read from Flickr8k's own
``captions.txt`` with the Flickr loader) and COCO-mini, 159 MS-COCO 2017 photos (read from
COCO's caption JSONs with the COCO loader); both shrunk to 160 px for the repository.
Split by photo (``tasks/captioning/photo_base.py``, seeded): 200 Flickr8k photos are the
test set, 100 monitor the base's training curve, 700 pre-trained the base. The adapters
train on those 700 base photos again — there are no others; no test or monitor photo is
ever trained on. ``test_set: coco_mini`` scores on the 159 COCO photos instead: another
collection and caption style, out of distribution for base and adapters alike.
Other data: ``annotations`` + ``data_dir`` exactly as ``image_captioning``.

Backbone (default): the committed EfficientNet-Lite0 → GPT-2 captioner
(``tasks/data/photo_base``): a frozen ImageNet encoder at 224 × 224 (its weights are in the
folder; no wheel is needed to run it) under a decoder learnt from the 700 base photos. Its
CIDEr-D against the caption-frequency baseline is in its ``training_summary.json`` and README.
Its encoder's output on a photo is computed once per process (``encoder_memo``: on for it).
There are no known modes on real photos: ``modes_covered`` / ``mode_recall`` are not reported.
"""

from __future__ import annotations

from dataclasses import dataclass

from harness.registry import register_task
from harness.task import Example
from tasks.captioning import photo_base
from tasks.captioning.image import ImageCaptioningConfig, ImageCaptioningTask

TEST_SETS = ("flickr8k", "coco_mini")


@dataclass
class PhotoCaptioningConfig(ImageCaptioningConfig):
    test_set: str = "flickr8k"  # flickr8k: 200 held-out Flickr8k photos; coco_mini: 159 COCO photos
    # None: on for the committed base (its ImageNet encoder is frozen and adapter-free: its
    # output on a photo is computed once), off for any other backbone
    encoder_memo: bool | None = None

    def validate(self) -> None:
        super().validate()
        if self.test_set not in TEST_SETS:
            raise ValueError(f"test_set must be one of {', '.join(TEST_SETS)}, got {self.test_set!r}")


@register_task("photo_captioning")
class PhotoCaptioningTask(ImageCaptioningTask):
    """Captioning of real photos (Flickr8k, COCO-mini): COCO metric flavours and diversity."""

    Config = PhotoCaptioningConfig
    version = "1"
    base = photo_base
    rebuild_env = "MCLBENCH_PHOTO_BASE"
    known_modes = False

    @property
    def encoder_memo(self) -> bool:
        memo = self.config.encoder_memo
        return not self.config.backbone if memo is None else memo

    def default_splits(self) -> tuple[list[Example], list[Example]]:
        examples = photo_base.flickr_examples()
        base, _, test = photo_base.split(photo_base.Recipe(), len(examples))
        if self.config.test_set == "coco_mini":
            return [examples[i] for i in base], photo_base.coco_mini_examples()
        return [examples[i] for i in base], [examples[i] for i in test]
