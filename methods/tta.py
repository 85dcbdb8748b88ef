"""Test-time augmentation (the paper's baseline): N copies of each input — the input itself,
then N − 1 augmented ones — each decoded greedily by the LoRA-MLE adapter (one cached
artifact with ``lora_mle``). Audio: SpecAugment-style time and frequency masks on the log-mel
features; images: a random resized crop, a horizontal flip and brightness/contrast jitter on
the processor's pixels. Augmentations are seeded per input (as nucleus), so a candidate does
not depend on the batch. Not applicable to text inputs: such cells are skipped.

The mask counts and ratios below are ours (SpecAugment's LibriSpeech "LB" policy has 2 masks
of each kind); set them to the paper's where you reproduce it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from harness.registry import register_method
from methods.lora.base import LoRAMethod, LoRATrainConfig
from methods.lora.sampling import input_seed

MEDIA = {"image": "pixel_values", "audio": "input_features"}  # modality -> the tensor augmented


@dataclass
class TTAConfig(LoRATrainConfig):
    num_candidates: int = 4  # N: the input itself, then N - 1 augmented copies
    time_masks: int = 2  # audio: masks along time per copy ...
    time_mask_ratio: float = 0.1  # ... each at most this share of the frames
    freq_masks: int = 2  # audio: masks along the mel bins ...
    freq_mask_ratio: float = 0.1  # ... each at most this share of the bins
    crop_scale: float = 0.8  # images: the crop keeps at least this share of each side
    flip_prob: float = 0.5  # images: chance of a horizontal flip
    jitter: float = 0.2  # images: brightness and contrast factors in [1 - jitter, 1 + jitter]

    def validate(self) -> None:
        super().validate()
        if self.num_candidates < 1 or min(self.time_masks, self.freq_masks) < 0:
            raise ValueError("need num_candidates >= 1 and mask counts >= 0")
        if not (0 <= self.time_mask_ratio <= 1 and 0 <= self.freq_mask_ratio <= 1
                and 0 < self.crop_scale <= 1 and 0 <= self.flip_prob <= 1 and 0 <= self.jitter < 1):
            raise ValueError("need mask ratios and flip_prob in [0, 1], 0 < crop_scale <= 1, 0 <= jitter < 1")


def _uniform(g: torch.Generator, low: float, high: float) -> float:
    return low + (high - low) * torch.rand((), generator=g).item()


def _randint(g: torch.Generator, high: int) -> int:
    """Uniform in 0 .. high (inclusive)."""
    return int(torch.randint(high + 1, (), generator=g))


def spec_augment(features: torch.Tensor, g: torch.Generator, c: TTAConfig) -> torch.Tensor:
    """``features`` (mel bins, frames) with time and frequency masks set to their mean."""
    out, fill = features.clone(), features.mean()
    bins, frames = out.shape[-2:]
    for count, ratio, size, dim in ((c.time_masks, c.time_mask_ratio, frames, -1),
                                    (c.freq_masks, c.freq_mask_ratio, bins, -2)):
        for _ in range(count):
            width = _randint(g, int(ratio * size))
            start = _randint(g, size - width)
            out.narrow(dim, start, width).fill_(fill)
    return out


def image_augment(pixels: torch.Tensor, g: torch.Generator, c: TTAConfig) -> torch.Tensor:
    """``pixels`` (channels, H, W): a random resized crop, a flip, brightness/contrast jitter
    (in the processor's normalised space, per channel around the image's own mean and std)."""
    _, h, w = pixels.shape
    ch, cw = max(1, round(h * _uniform(g, c.crop_scale, 1))), max(1, round(w * _uniform(g, c.crop_scale, 1)))
    top, left = _randint(g, h - ch), _randint(g, w - cw)
    out = F.interpolate(pixels[None, :, top:top + ch, left:left + cw].float(), size=(h, w),
                        mode="bilinear", align_corners=False)[0]
    if _uniform(g, 0, 1) < c.flip_prob:
        out = out.flip(-1)
    mean, std = out.mean((1, 2), keepdim=True), out.std((1, 2), keepdim=True)
    contrast, brightness = _uniform(g, 1 - c.jitter, 1 + c.jitter), _uniform(g, 1 - c.jitter, 1 + c.jitter)
    return (contrast * (out - mean) + mean + (brightness - 1) * std).to(pixels.dtype)


@register_method("tta")
class TTADecoding(LoRAMethod):
    """Test-time augmentation on the LoRA-MLE adapter: the input and N-1 augmented copies, greedy.

    Image and audio tasks only."""

    Config = TTAConfig

    def not_applicable(self, task) -> str | None:
        if task.input_modality not in MEDIA:
            return (f"test-time augmentation needs image or audio inputs; "
                    f"{task.name!r} reads {task.input_modality}")
        return None

    def decode_spec(self) -> dict:
        return {"decoder": "tta", **{k: v for k, v in vars(self.config).items()
                                     if k in TTAConfig.__dataclass_fields__
                                     and k not in LoRATrainConfig.__dataclass_fields__}}

    def decode_rows(self) -> int:
        return self.config.num_candidates

    def augmented(self, prompt: dict, examples, seed: int, modality: str) -> dict:
        """``prompt`` with each input repeated N times, copies 1 .. N-1 augmented."""
        n, key = self.config.num_candidates, MEDIA[modality]
        augment = spec_augment if modality == "audio" else image_augment
        rows = self.repeat_rows(prompt, n)
        media = rows[key]  # a new tensor: augmented in place
        for i, ex in enumerate(examples):
            g = torch.Generator().manual_seed(input_seed(seed, ex.id))
            for j in range(1, n):
                media[i * n + j] = augment(media[i * n + j].cpu(), g, self.config).to(media.device)
        return rows

    def decode_batch(self, model, task, examples, prompt, seed):
        rows = self.augmented(prompt, examples, seed, task.input_modality)
        return self.generate_rows(model, task, rows, prompt, self.config.num_candidates)
