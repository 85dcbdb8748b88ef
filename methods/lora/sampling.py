"""The batched, per-row seeded sampler that nucleus, top-k, temperature and MoE-LoRA sampling
share: N samples per input on the LoRA-MLE adapter, each row drawn with its own generator
seeded by (run seed, input id, row), so what is drawn for an input does not depend on the
batch it is in."""

from __future__ import annotations

import torch
from transformers import (
    LogitsProcessor,
    LogitsProcessorList,
    TemperatureLogitsWarper,
    TopKLogitsWarper,
    TopPLogitsWarper,
)

from harness.hashing import stable_hash
from methods.lora.base import LoRAMethod


def input_seed(seed: int, example_id: str, copy: int | None = None) -> int:
    """The random seed of one input (and of one of its copies): a function of the run seed
    and the input's id only, so that what is drawn for it does not depend on the batch."""
    return int(stable_hash([seed, example_id] if copy is None else [seed, example_id, copy])[:15], 16)


class RowSeededSampling(LogitsProcessor):
    """Sampling as greedy decoding of Gumbel-perturbed scores: argmax(warped scores + G),
    G ~ Gumbel(0, 1), is a draw from softmax(warped scores). Each row has its own generator,
    so the rows of a batch are sampled independently of one another and of the batch."""

    def __init__(self, seeds: list[int], top_p: float, top_k: int, temperature: float):
        self.generators = [torch.Generator().manual_seed(s) for s in seeds]
        self.warpers = []  # in transformers' order; each only where it changes the scores
        if temperature != 1.0:
            self.warpers.append(TemperatureLogitsWarper(temperature))
        if top_k > 0:
            self.warpers.append(TopKLogitsWarper(top_k))
        if top_p < 1.0:
            self.warpers.append(TopPLogitsWarper(top_p))

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        for warp in self.warpers:
            scores = warp(input_ids, scores)
        u = torch.stack([torch.rand(scores.shape[-1], generator=g, dtype=torch.float64)
                         for g in self.generators]).clamp_(1e-12, 1 - 1e-12)
        return scores.double() - torch.log(-torch.log(u)).to(scores.device)


def sample_per_input(model, task, examples, prompt, seed: int, n: int, top_p: float,
                     top_k: int, temperature: float) -> list[list[str]]:
    """N samples per input in one batched ``generate``, row j of input i drawn with its own
    generator seeded by (run seed, input id, j): independent of the batch it is in."""
    seeds = [input_seed(seed, ex.id, j) for ex in examples for j in range(n)]
    sampler = RowSeededSampling(seeds, top_p, top_k, temperature)
    return LoRAMethod.generate_rows(model, task, LoRAMethod.repeat_rows(prompt, n), prompt, n,
                                    logits_processor=LogitsProcessorList([sampler]))


class SamplingMethod(LoRAMethod):
    """N samples per input on the LoRA-MLE adapter (:func:`sample_per_input`); a subclass
    names its filters in :meth:`sampling` (those it has of top_p, top_k, temperature)."""

    def sampling(self) -> dict:
        raise NotImplementedError

    def decode_spec(self) -> dict:
        return {"decoder": type(self).name, "n": self.config.num_candidates, **self.sampling()}

    def decode_rows(self) -> int:
        return self.config.num_candidates

    def decode_batch(self, model, task, examples, prompt, seed):
        filters = {"top_p": 1.0, "top_k": 0, "temperature": 1.0, **self.sampling()}
        return sample_per_input(model, task, examples, prompt, seed, self.config.num_candidates, **filters)
