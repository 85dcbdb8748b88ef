"""Expert-specific decoding of MoE-LoRA (the paper's baseline): each of the E experts alone
decodes one candidate greedily, N = E. Decodes the adapter ``moe_lora`` trains (same
settings, one cached artifact)."""

from __future__ import annotations

from dataclasses import dataclass

from harness.registry import register_method
from methods.moe_lora import MoELoRA, MoETrainConfig


@dataclass
class MoEExpertsConfig(MoETrainConfig):
    pass


@register_method("moe_experts")
class MoEExperts(MoELoRA):
    """MoE-LoRA with each expert alone in every layer: E greedy candidates, one per expert."""

    Config = MoEExpertsConfig

    def decode_spec(self) -> dict:
        return {"decoder": "experts", "n": self.config.num_experts}

    def decode_rows(self) -> int:
        return self.config.num_experts

    def with_candidates(self, n: int) -> None:
        return None  # N is the number of experts

    def decode_batch(self, model, task, examples, prompt, seed):
        per_expert = []
        try:
            for expert in range(self.config.num_experts):
                model.route(expert=expert)
                per_expert.append(self.generate_n(model, task, prompt, 1, num_beams=1, do_sample=False))
        finally:
            model.route()
        return [[cands[i][0] for cands in per_expert] for i in range(len(examples))]
