"""Top-k sampling of N candidates on the LoRA-MLE adapter, seeded per input (as nucleus)."""

from __future__ import annotations

from dataclasses import dataclass

from harness.registry import register_method
from methods.lora.base import LoRATrainConfig
from methods.lora.sampling import SamplingMethod


@dataclass
class TopKConfig(LoRATrainConfig):
    num_candidates: int = 4  # N samples per input
    top_k: int = 50  # sample among the k most likely tokens (transformers' default k)
    temperature: float = 1.0

    def validate(self) -> None:
        super().validate()
        if self.num_candidates < 1 or self.top_k < 1 or self.temperature <= 0:
            raise ValueError("need num_candidates >= 1, top_k >= 1 and temperature > 0")


@register_method("top_k")
class TopKSampling(SamplingMethod):
    """Top-k sampling on the LoRA-MLE adapter: N samples per input, seeded per input."""

    Config = TopKConfig

    def sampling(self) -> dict:
        c = self.config
        return {"top_k": c.top_k, "temperature": c.temperature}
