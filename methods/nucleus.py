"""Nucleus (top-p) sampling of N candidates on the LoRA-MLE adapter, seeded per input."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from harness.cache import stable_hash
from harness.registry import register_method
from methods.lora.base import LoRAMethod, LoRATrainConfig


@dataclass
class NucleusConfig(LoRATrainConfig):
    num_candidates: int = 4  # N samples per input
    top_p: float = 0.95
    top_k: int = 0  # 0 = no top-k filter
    temperature: float = 1.0

    def validate(self) -> None:
        super().validate()
        if self.num_candidates < 1 or not 0 < self.top_p <= 1 or self.temperature <= 0 \
                or self.top_k < 0:
            raise ValueError("need num_candidates >= 1, 0 < top_p <= 1, temperature > 0, top_k >= 0")


def input_seed(seed: int, example_id: str) -> int:
    """The sampling seed of one input: a function of the run seed and the input's id only."""
    return int(stable_hash([seed, example_id])[:15], 16)


def sample_per_input(model, task, examples, prompt, seed: int, n: int, top_p: float,
                     top_k: int, temperature: float) -> list[list[str]]:
    """N samples per input, each input drawn from its own seeded generator (batch-independent)."""
    out = []
    for i, ex in enumerate(examples):
        torch.manual_seed(input_seed(seed, ex.id))
        out += LoRAMethod.generate_n(model, task, {k: v[i:i + 1] for k, v in prompt.items()}, n,
                                     do_sample=True, top_p=top_p, top_k=top_k or None,
                                     temperature=temperature)
    return out


@register_method("nucleus")
class NucleusSampling(LoRAMethod):
    """Nucleus sampling on the LoRA-MLE adapter: N samples per input, seeded per input."""

    Config = NucleusConfig

    def decode_spec(self) -> dict:
        c = self.config
        return {"decoder": "nucleus", "n": c.num_candidates, "top_p": c.top_p, "top_k": c.top_k,
                "temperature": c.temperature}

    def decode_rows(self) -> int:
        return self.config.num_candidates

    def decode_batch(self, model, task, examples, prompt, seed):
        c = self.config
        return sample_per_input(model, task, examples, prompt, seed, c.num_candidates, c.top_p,
                                c.top_k, c.temperature)
