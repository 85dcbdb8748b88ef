"""LoRA-MLE: one LoRA adapter trained by maximum likelihood (the LoRA-MCL code path, K = 1).

Decoded greedily (N = 1). The ``beam`` and ``nucleus`` methods decode the same cached
adapter (same trainer settings, same cache key). Set ``rank`` to K·r to match LoRA-MCL's
trainable-parameter count.
"""

from __future__ import annotations

from dataclasses import dataclass

from harness.registry import register_method
from methods.lora.base import LoRAMethod, LoRATrainConfig


@dataclass
class LoRAMLEConfig(LoRATrainConfig):
    pass


@register_method("lora_mle")
class LoRAMLE(LoRAMethod):
    """One LoRA adapter trained by maximum likelihood, decoded greedily (N = 1)."""

    Config = LoRAMLEConfig
    figure_rows = {"transitions": "LoRA-MLE"}

    def decode_spec(self) -> dict:
        return {"decoder": "greedy"}

    def decode_rows(self) -> int:
        return 1

    def decode_batch(self, model, task, examples, prompt, seed):
        return self.generate_n(model, task, prompt, 1, num_beams=1, do_sample=False)
