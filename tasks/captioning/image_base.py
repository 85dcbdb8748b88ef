"""Pre-train the image-captioning task's offline base once: a small ViT → GPT-2 captioner.

The default image-captioning run loads the committed result (``tasks/data/image_base/``);
this seeded script made it and re-creates it::

    python -m tasks.captioning.image_base --work .mclbench_cache/image_base

Data: the generated scenes of ``tasks/data/scenes`` (``tasks/captioning/image_scenes.py``); the base
learns from scenes ``[0, base_scenes)``, the adapters from the next ``adapter_scenes``, and
the rest is the test split. Every (image, caption) pair is one training example.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from tasks.captioning.base import cli, consecutive_split, pretrain_captioner

SCENES = Path(__file__).parents[1] / "data" / "scenes"
BASE_DIR = Path(__file__).parents[1] / "data" / "image_base"


@dataclass
class Captioner:
    """The ViT → GPT-2 captioner's shape and MLE schedule (the photo base's too)."""
    seed: int = 0
    hidden: int = 192
    encoder_layers: int = 4
    decoder_layers: int = 3
    heads: int = 4
    patch: int = 8
    batch_size: int = 64
    steps: int = 2000
    lr: float = 1e-3
    warmup: int = 200
    label_smoothing: float = 0.1


@dataclass
class Recipe(Captioner):
    base_scenes: int = 2000
    adapter_scenes: int = 700


def load_scenes(folder: Path = SCENES):
    """``(pixels uint8 (S, 64, 64, 3), captions per scene)``."""
    from PIL import Image

    from tasks.captioning.loaders import read_coco_captions

    examples = read_coco_captions(folder / "captions.json", folder / "images")
    pixels = np.stack([np.asarray(Image.open(e.source).convert("RGB")) for e in examples])
    return pixels, [e.references for e in examples]


def split(r: Recipe, n: int) -> tuple[range, range, range]:
    return consecutive_split(r.base_scenes, r.adapter_scenes, n)


def build_model(r: Recipe, vocab_size: int, image_size: int = 64):
    from transformers import GPT2Config, VisionEncoderDecoderConfig, VisionEncoderDecoderModel, ViTConfig

    vit = ViTConfig(image_size=image_size, patch_size=r.patch, num_channels=3, hidden_size=r.hidden,
                    num_hidden_layers=r.encoder_layers, num_attention_heads=r.heads,
                    intermediate_size=2 * r.hidden, hidden_dropout_prob=0.1)
    gpt2 = GPT2Config(vocab_size=vocab_size, n_positions=32, n_embd=r.hidden, n_layer=r.decoder_layers,
                      n_head=r.heads, add_cross_attention=True, is_decoder=True, bos_token_id=1,
                      eos_token_id=2, pad_token_id=0, resid_pdrop=0.1, embd_pdrop=0.1, attn_pdrop=0.0)
    torch.manual_seed(r.seed)
    model = VisionEncoderDecoderModel(VisionEncoderDecoderConfig.from_encoder_decoder_configs(vit, gpt2))
    for cfg in (model.config, model.generation_config):
        cfg.decoder_start_token_id, cfg.pad_token_id, cfg.eos_token_id = 1, 0, 2
    model.generation_config.max_new_tokens = 20
    return model


def image_processor():
    """Pixels in [-1, 1], no resizing: what the base was trained on (slow ViT processor:
    Pillow and numpy only)."""
    from transformers import ViTImageProcessorPil

    return ViTImageProcessorPil(do_resize=False, do_rescale=True, do_normalize=True,
                             image_mean=[0.5] * 3, image_std=[0.5] * 3)


def to_pixel_values(pixels: np.ndarray) -> torch.Tensor:
    """uint8 ``(B, H, W, 3)`` → float ``(B, 3, H, W)`` in [-1, 1], as :func:`image_processor`."""
    return torch.from_numpy(pixels).permute(0, 3, 1, 2).float().div(255).sub(0.5).div(0.5)


def pixel_inputs(pixels: np.ndarray) -> dict[str, torch.Tensor]:
    return {"pixel_values": to_pixel_values(pixels)}


def pretrain(r: Recipe, work: Path, output: Path) -> dict:
    pixels, captions = load_scenes()
    return pretrain_captioner(r, work, output, items=pixels, captions=captions, split=split(r, len(pixels)),
                              build_model=build_model, processor=image_processor(), to_inputs=pixel_inputs,
                              desc="pre-train image base")


def main(argv=None) -> None:
    cli(__doc__, Recipe, pretrain, "image", BASE_DIR, argv)


if __name__ == "__main__":
    main()
