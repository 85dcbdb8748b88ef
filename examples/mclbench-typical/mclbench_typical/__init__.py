"""Locally typical sampling (Meister et al., 2023) as an mclbench method, in one file.

It decodes the LoRA-MLE adapter, so it trains nothing of its own: its trainer settings are
LoRA-MLE's (same ``train_spec``), and the runner reuses that cached adapter.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from harness.registry import register_method
from methods.lora.base import LoRAMethod, LoRATrainConfig


@dataclass
class TypicalConfig(LoRATrainConfig):
    num_candidates: int = 4  # N samples per input
    typical_p: float = 0.9  # keep the most typical tokens up to this probability mass

    def validate(self) -> None:
        super().validate()
        if self.num_candidates < 1 or not 0 < self.typical_p <= 1:
            raise ValueError("need num_candidates >= 1 and 0 < typical_p <= 1")


@register_method("typical")
class TypicalSampling(LoRAMethod):
    """Locally typical sampling on the LoRA-MLE adapter: N samples per input (plugin example)."""

    Config = TypicalConfig

    def decode_spec(self) -> dict:
        return {"decoder": "typical", "n": self.config.num_candidates, "typical_p": self.config.typical_p}

    def decode_rows(self) -> int:
        return self.config.num_candidates

    def decode_batch(self, model, task, examples, prompt, seed):
        torch.manual_seed(seed)
        n = self.config.num_candidates
        return self.generate_n(model, task, prompt, n, num_beams=1, do_sample=True,
                               typical_p=self.config.typical_p, top_k=None)
