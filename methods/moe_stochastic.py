"""Stochastic routing of MoE-LoRA: N greedy candidates per input, each with the router
sampled along its own sequence (Gumbel-max with noise drawn once per sequence and layer,
seeded per input as nucleus). Decodes the adapter ``moe_lora`` trains (one cached artifact)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from harness.registry import register_method
from methods.lora.sampling import input_seed
from methods.moe_lora import MoELoRA, MoETrainConfig


@dataclass
class MoEStochasticConfig(MoETrainConfig):
    num_candidates: int = 2  # N sequences per input, each with its own routing noise

    def validate(self) -> None:
        super().validate()
        if self.num_candidates < 1:
            raise ValueError("need num_candidates >= 1")


def gumbel(shape: tuple[int, ...], generator: torch.Generator) -> torch.Tensor:
    u = torch.rand(shape, generator=generator).clamp_(1e-10, 1 - 1e-10)
    return -torch.log(-torch.log(u))


@register_method("moe_stochastic")
class MoEStochastic(MoELoRA):
    """MoE-LoRA with the router sampled per sequence: N greedy candidates per input."""

    Config = MoEStochasticConfig

    def decode_spec(self) -> dict:
        return {"decoder": "stochastic_routing", "n": self.config.num_candidates}

    def decode_rows(self) -> int:
        return self.config.num_candidates

    def decode_batch(self, model, task, examples, prompt, seed):
        n, layers = self.config.num_candidates, len(model.moe_layers())
        noise = torch.cat([gumbel((n, layers, self.config.num_experts),
                                  torch.Generator().manual_seed(input_seed(seed, ex.id))) for ex in examples])
        try:
            model.route(noise=noise)
            return self.generate_rows(model, task, self.repeat_rows(prompt, n), prompt, n)
        finally:
            model.route()
