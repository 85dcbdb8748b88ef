"""LoRA-MLE: one LoRA adapter trained by maximum likelihood (the LoRA-MCL code path, K = 1).

Decoded with greedy search (N = 1), beam search (N beams, N returned) or nucleus
sampling (N samples, seeded per input so the candidates do not depend on batching).
Set ``rank`` to K·r to match LoRA-MCL's trainable-parameter count.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

from harness.cache import stable_hash
from harness.registry import register_method
from methods.lora_mcl import LoRAMethod, LoRATrainConfig


@dataclass
class LoRAMLEConfig(LoRATrainConfig):
    decoder: Literal["greedy", "beam", "nucleus"] = "greedy"
    num_candidates: int = 4  # N for beam and nucleus (greedy always yields 1)
    top_p: float = 0.95
    top_k: int = 0  # 0 = no top-k filter
    temperature: float = 1.0

    def validate(self) -> None:
        super().validate()
        if self.num_candidates < 1 or not 0 < self.top_p <= 1 or self.temperature <= 0:
            raise ValueError("need num_candidates >= 1, 0 < top_p <= 1 and temperature > 0")


@register_method("lora_mle")
class LoRAMLE(LoRAMethod):
    """One LoRA adapter trained by maximum likelihood; greedy, beam or nucleus decoding."""

    Config = LoRAMLEConfig

    def decode_spec(self) -> dict:
        c = self.config
        if c.decoder == "greedy":
            return {"decoder": "greedy"}
        if c.decoder == "beam":
            return {"decoder": "beam", "n": c.num_candidates}
        return {"decoder": "nucleus", "n": c.num_candidates, "top_p": c.top_p, "top_k": c.top_k,
                "temperature": c.temperature}

    def decode_batch(self, model, task, examples, prompt, seed):
        c, gen = self.config, task.generation_kwargs()
        if c.decoder == "nucleus":
            return [self._sample_one(model, task, {k: v[i:i + 1] for k, v in prompt.items()},
                                     ex.id, seed) for i, ex in enumerate(examples)]
        n = 1 if c.decoder == "greedy" else c.num_candidates
        seqs = model.generate_hypotheses(prompt, num_beams=n, num_return_sequences=n,
                                         do_sample=False, **gen)[0]
        texts = task.decode_outputs({k: v.repeat_interleave(n, 0) for k, v in prompt.items()}, seqs)
        return [texts[i * n:(i + 1) * n] for i in range(len(examples))]

    def _sample_one(self, model, task, prompt, example_id, seed) -> list[str]:
        c = self.config
        # A generator per input: the samples of an input do not depend on its batch.
        torch.manual_seed(int(stable_hash([seed, example_id])[:15], 16))
        seqs = model.generate_hypotheses(
            prompt, do_sample=True, top_p=c.top_p, top_k=c.top_k or None,
            temperature=c.temperature, num_return_sequences=c.num_candidates,
            **task.generation_kwargs())[0]
        return task.decode_outputs({k: v.repeat_interleave(c.num_candidates, 0)
                                    for k, v in prompt.items()}, seqs)
