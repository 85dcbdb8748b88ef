"""The protocol through which a task probes a model right after decoding.

Scoring never loads a model: what a task's metrics need of the model (next-token
distributions, reference NLL per hypothesis, ...) is measured once, after the candidates
are decoded, by ``Task.probe(model, examples)``, and stored with them. Methods whose
model follows :class:`HypothesisModel` (the LoRA family: K hypotheses, K = 1 for a single
adapter) can be probed; a task treats any other model as having no probes.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np
import torch


@runtime_checkable
class HypothesisModel(Protocol):
    """A model with K hypotheses that score a batch side by side."""

    @property
    def num_hypotheses(self) -> int: ...

    def forward_hypotheses(self, **batch: torch.Tensor) -> torch.Tensor:
        """Logits of every hypothesis: ``(K, B, T, V)``."""
        ...

    def sequence_nll(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Per-sequence NLL of every hypothesis (mean over target tokens): ``(K, B)``;
        ``labels`` -100 on prompt and padding."""
        ...


@torch.no_grad()
def reference_nll(model: HypothesisModel, references, owners: list[int],
                  batch_size: int = 32) -> dict[str, np.ndarray]:
    """Every hypothesis's per-token NLL of every (input, reference) pair:
    ``reference_nll`` ``(K, rows)`` and ``reference_owner`` ``(rows,)`` (the input of each
    row). ``references``: a ``TrainingSet`` of the pairs (labels on the reference)."""
    device = next(model.parameters()).device
    rows = []
    for start in range(0, len(references), batch_size):
        batch = references.batch(torch.arange(start, min(start + batch_size, len(references))))
        rows.append(model.sequence_nll({k: v.to(device) for k, v in batch.items()}).float().cpu())
    return {"reference_nll": torch.cat(rows, 1).numpy(),
            "reference_owner": np.asarray(owners, dtype=np.int64)}
