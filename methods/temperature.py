"""Ancestral sampling at temperature τ of N candidates on the LoRA-MLE adapter, seeded per
input (as nucleus): every token drawn from softmax(logits / τ), no top-k or top-p filter."""

from __future__ import annotations

from dataclasses import dataclass

from harness.registry import register_method
from methods.lora.base import LoRAMethod, LoRATrainConfig
from methods.nucleus import sample_per_input


@dataclass
class TemperatureConfig(LoRATrainConfig):
    num_candidates: int = 4  # N samples per input
    temperature: float = 0.7  # τ < 1 sharpens the distribution, τ > 1 flattens it

    def validate(self) -> None:
        super().validate()
        if self.num_candidates < 1 or self.temperature <= 0:
            raise ValueError("need num_candidates >= 1 and temperature > 0")


@register_method("temperature")
class TemperatureSampling(LoRAMethod):
    """Ancestral sampling at temperature τ on the LoRA-MLE adapter: N samples per input."""

    Config = TemperatureConfig

    def decode_spec(self) -> dict:
        c = self.config
        return {"decoder": "temperature", "n": c.num_candidates, "temperature": c.temperature}

    def decode_rows(self) -> int:
        return self.config.num_candidates

    def decode_batch(self, model, task, examples, prompt, seed):
        c = self.config
        return sample_per_input(model, task, examples, prompt, seed, c.num_candidates, top_p=1.0,
                                top_k=0, temperature=c.temperature)
