"""Nucleus (top-p) sampling of N candidates on the LoRA-MLE adapter, seeded per input
(the sampler: :mod:`methods.lora.sampling`)."""

from __future__ import annotations

from dataclasses import dataclass

from harness.registry import register_method
from methods.lora.base import LoRATrainConfig
from methods.lora.sampling import SamplingMethod


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


@register_method("nucleus")
class NucleusSampling(SamplingMethod):
    """Nucleus sampling on the LoRA-MLE adapter: N samples per input, seeded per input."""

    Config = NucleusConfig

    def sampling(self) -> dict:
        c = self.config
        return {"top_p": c.top_p, "top_k": c.top_k, "temperature": c.temperature}
