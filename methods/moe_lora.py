"""MoE-LoRA: E LoRA experts per target layer mixed by a learned per-token router.

Each adapted layer computes ``base(x) + (α/r) Σ_e p_e(x) B_e A_e x`` with
``p(x) = softmax(W_router x)`` (dense), or that softmax kept on its top-k experts and
renormalised. The router starts at zero, so training starts from a uniform mixture (and,
with B = 0, from the base model). Optional Switch-style load balancing adds
``aux_weight × E Σ_e f_e P_e`` (f_e: share of tokens whose top expert is e, P_e: mean
router probability of e), averaged over layers. Trained by maximum likelihood, then
decoded with beam search or sampling (N candidates). Default: E = 2 experts of rank 4,
LoRA-MCL's default K and r.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from harness.registry import register_method
from methods.lora.base import LoRAMethod, LoRATrainConfig, target_patterns
from methods.lora.fast import EncodeOnce, HeadOnlyNLL
from methods.lora.model import AdaptedModel, MultiLoRAConfig, stacked_lora_factors
from methods.lora.sampling import sample_per_input


def router_probs(logits: torch.Tensor, top_k: int) -> torch.Tensor:
    """Softmax over experts; with ``top_k`` > 0, zero all but the top k and renormalise."""
    probs = torch.softmax(logits.float(), dim=-1)
    if 0 < top_k < probs.shape[-1]:
        top = probs.topk(top_k, dim=-1)
        probs = torch.zeros_like(probs).scatter(-1, top.indices, top.values)
        probs = probs / probs.sum(-1, keepdim=True)
    return probs.to(logits.dtype)


def switch_aux_loss(probs: torch.Tensor) -> torch.Tensor:
    """``E Σ_e f_e P_e`` over tokens ``probs (N, E)``: 1 when balanced, E when collapsed."""
    e = probs.shape[-1]
    f = F.one_hot(probs.argmax(-1), e).float().mean(0)
    return e * (f * probs.float().mean(0)).sum()


@dataclass
class MoELoRAConfig(MultiLoRAConfig):
    num_hypotheses: int = 1  # one model: the experts mix inside every layer
    num_experts: int = 2
    top_k: int = 0  # 0: dense mixture


class MoELoRALinear(nn.Module):
    def __init__(self, base: nn.Module, cfg: MoELoRAConfig):
        super().__init__()
        self.base, self.rank, self.top_k = base, cfg.rank, cfg.top_k
        self.scaling = cfg.scaling
        self.lora_A, self.lora_B = stacked_lora_factors(base, cfg.num_experts, cfg.rank)
        # zero router: a uniform mixture at the start
        self.lora_router = nn.Parameter(torch.zeros(cfg.num_experts, self.lora_A.shape[1],
                                                    device=base.weight.device))
        self.dropout = nn.Dropout(cfg.dropout) if cfg.dropout > 0 else None
        self.aux = torch.zeros(())
        # decoding-time routing (MoELoRAModel.route): one expert alone, or Gumbel noise per row
        self.expert: int | None = None
        self.noise: torch.Tensor | None = None  # (rows, E)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        probs = router_probs(F.linear(x, self.lora_router), self.top_k)  # (..., E)
        if self.expert is not None:
            probs = F.one_hot(torch.full(probs.shape[:-1], self.expert, device=x.device),
                              probs.shape[-1]).to(probs.dtype)
        elif self.noise is not None:  # Gumbel-max: a sample of the router, the noise fixed per row
            noise = self.noise.view(self.noise.shape[0], *[1] * (probs.dim() - 2), -1).to(probs.device)
            pick = (probs.float().log() + noise).argmax(-1)
            probs = F.one_hot(pick, probs.shape[-1]).to(probs.dtype)
        self.aux = switch_aux_loss(probs.reshape(-1, probs.shape[-1]))
        h = F.linear(x if self.dropout is None else self.dropout(x), self.lora_A)  # (..., E·r)
        h = h * probs.repeat_interleave(self.rank, dim=-1) * self.scaling
        return self.base(x) + F.linear(h, self.lora_B)


class MoELoRAModel(EncodeOnce, HeadOnlyNLL, AdaptedModel):
    """A frozen model whose target layers carry E routed LoRA experts (one hypothesis)."""

    config_class = MoELoRAConfig

    def make_layer(self, base: nn.Module) -> nn.Module:
        return MoELoRALinear(base, self.cfg)

    def moe_layers(self) -> list[MoELoRALinear]:
        return [m for m in self.modules() if isinstance(m, MoELoRALinear)]

    def aux_loss(self) -> torch.Tensor:
        """The load-balancing loss of the last forward, averaged over layers."""
        return torch.stack([m.aux for m in self.moe_layers()]).mean()

    def route(self, expert: int | None = None, noise: torch.Tensor | None = None) -> None:
        """How the experts mix in the forwards that follow: the learned router (no argument);
        ``expert`` e alone in every layer; or, with ``noise`` (rows, layers, E) of Gumbel
        draws, per row and token the expert argmax(log p + noise) — a sample of the router
        whose noise is fixed for the whole sequence."""
        for i, layer in enumerate(self.moe_layers()):
            layer.expert = expert
            layer.noise = None if noise is None else noise[:, i]


@dataclass
class MoETrainConfig(LoRATrainConfig):
    """What trains MoE-LoRA: the decoders of its adapter (moe_lora, moe_experts,
    moe_stochastic) share these settings and so one cached adapter."""

    num_experts: int = 2
    top_k: int = 0  # 0: dense; k: top-k experts per token, renormalised
    aux_weight: float = 0.0  # Switch load-balancing loss weight (0: off)

    def validate(self) -> None:
        super().validate()
        if self.num_experts < 1 or not 0 <= self.top_k <= self.num_experts:
            raise ValueError("need num_experts >= 1 and 0 <= top_k <= num_experts")
        if self.aux_weight < 0:
            raise ValueError("need aux_weight >= 0")


@dataclass
class MoELoRAMethodConfig(MoETrainConfig):
    decoder: Literal["beam", "nucleus"] = "beam"
    num_candidates: int = 2  # N
    top_p: float = 0.95
    sample_top_k: int = 0
    temperature: float = 1.0

    def validate(self) -> None:
        super().validate()
        if self.num_candidates < 1:
            raise ValueError("need num_candidates >= 1")


@register_method("moe_lora")
class MoELoRA(LoRAMethod):
    """E LoRA experts mixed by a learned router (MLE); N candidates by beam search or sampling."""

    Config = MoELoRAMethodConfig
    model_class = MoELoRAModel

    def adapter_config(self) -> MoELoRAConfig:
        c = self.config
        return MoELoRAConfig(num_experts=c.num_experts, rank=c.rank, alpha=c.alpha,
                             dropout=c.dropout, target_modules=target_patterns(c.target_modules),
                             top_k=c.top_k)

    def objective(self, nll, step, model):
        loss = nll.mean()
        return loss + self.config.aux_weight * model.aux_loss() if self.config.aux_weight else loss

    def objective_spec(self) -> dict:
        return {"loss": "mle", "aux_weight": self.config.aux_weight}

    def decode_spec(self) -> dict:
        c = self.config
        spec = {"decoder": c.decoder, "n": c.num_candidates}
        if c.decoder == "nucleus":
            spec.update(top_p=c.top_p, top_k=c.sample_top_k, temperature=c.temperature)
        return spec

    def decode_rows(self) -> int:
        return self.config.num_candidates

    def decode_batch(self, model, task, examples, prompt, seed):
        c = self.config
        if c.decoder == "nucleus":
            return sample_per_input(model, task, examples, prompt, seed, c.num_candidates, c.top_p,
                                    c.sample_top_k, c.temperature)
        return self.generate_n(model, task, prompt, c.num_candidates, num_beams=c.num_candidates,
                               do_sample=False)
