"""Ancestral sampling at temperature τ of N candidates on the LoRA-MLE adapter, seeded per
input (as nucleus): every token drawn from softmax(logits / τ), no top-k or top-p filter."""

from __future__ import annotations

from dataclasses import dataclass

from harness.registry import register_method
from methods.lora.base import LoRATrainConfig
from methods.lora.sampling import SamplingMethod


@dataclass
class TemperatureConfig(LoRATrainConfig):
    num_candidates: int = 4  # N samples per input
    temperature: float = 0.7  # τ < 1 sharpens the distribution, τ > 1 flattens it

    def validate(self) -> None:
        super().validate()
        if self.num_candidates < 1 or self.temperature <= 0:
            raise ValueError("need num_candidates >= 1 and temperature > 0")


@register_method("temperature")
class TemperatureSampling(SamplingMethod):
    """Ancestral sampling at temperature τ on the LoRA-MLE adapter: N samples per input."""

    Config = TemperatureConfig

    def sampling(self) -> dict:
        return {"temperature": self.config.temperature}
