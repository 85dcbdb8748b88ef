"""Beam search with N beams, all N returned, on the LoRA-MLE adapter."""

from __future__ import annotations

from dataclasses import dataclass

from harness.registry import register_method
from methods.lora.base import LoRAMethod, LoRATrainConfig


@dataclass
class BeamConfig(LoRATrainConfig):
    num_candidates: int = 4  # N: beams kept and candidates returned

    def validate(self) -> None:
        super().validate()
        if self.num_candidates < 1:
            raise ValueError("need num_candidates >= 1")


@register_method("beam")
class BeamSearch(LoRAMethod):
    """Beam search on the LoRA-MLE adapter: N beams, the N final beams are the candidates."""

    Config = BeamConfig

    def decode_spec(self) -> dict:
        return {"decoder": "beam", "n": self.config.num_candidates}

    def decode_rows(self) -> int:
        return self.config.num_candidates

    def decode_batch(self, model, task, examples, prompt, seed):
        n = self.config.num_candidates
        return self.generate_n(model, task, prompt, n, num_beams=n, do_sample=False)
