"""How likely each method's model finds the references: oracle and top-1 NLL. Pure numpy.

Inputs: ``nll`` ``(K, rows)``, hypothesis k's per-token NLL (mean over the reference's
tokens, given the input) of every (input, reference) pair, and ``owner`` ``(rows,)``, the
input of each row (measured at decode time, :func:`harness.probes.reference_nll`).

- ``oracle_nll``: per (input, reference) pair the lowest NLL over the K hypotheses — the
  quantity the winner-takes-all loss minimises, on held-out pairs — averaged over the
  input's references, then over inputs (the LoRA-MCL paper's oracle NLL; with several
  references each one is scored on its own, as a training pair would be);
- ``top1_nll``: the same with the first hypothesis only (the model a user would deploy).

With one hypothesis (LoRA-MLE and every decoder of its adapter, MoE-LoRA) the two are equal:
the adapter's held-out NLL.
"""

from __future__ import annotations

import numpy as np

from harness.metrics.registry import MetricValues, ScoreInputs, register_metric


def nll_per_input(nll: np.ndarray, owner: np.ndarray) -> dict[str, np.ndarray]:
    """``oracle_nll`` and ``top1_nll`` of each input (the mean over its references), in the
    order of the input indices; the metrics are their means."""
    nll, owner = np.asarray(nll, dtype=np.float64), np.asarray(owner)
    inputs = np.unique(owner)
    per_row = {"oracle_nll": nll.min(0), "top1_nll": nll[0]}
    return {name: np.array([rows[owner == i].mean() for i in inputs]) for name, rows in per_row.items()}


def nll_flavours(nll: np.ndarray, owner: np.ndarray) -> MetricValues:
    """``oracle_nll`` and ``top1_nll`` (see the module docstring)."""
    return MetricValues({name: float(np.mean(rows)) for name, rows in nll_per_input(nll, owner).items()})


def _per_input(inputs: ScoreInputs, name: str) -> np.ndarray:
    probes = inputs.probes or {}
    return nll_per_input(probes["reference_nll"], probes["reference_owner"])[name]


@register_metric("oracle_nll", kind="probe", higher_is_better=False, tokenisation="the backbone's",
                 needs=("reference_nll",), paper="the LoRA-MCL paper's oracle NLL",
                 description="per (input, reference) the lowest per-token NLL over the hypotheses, mean over "
                 "references then inputs")
def oracle_nll(inputs: ScoreInputs) -> np.ndarray:
    return _per_input(inputs, "oracle_nll")


@register_metric("top1_nll", kind="probe", higher_is_better=False, tokenisation="the backbone's",
                 needs=("reference_nll",),
                 description="per-token NLL of the references under the first hypothesis, mean over "
                 "references then inputs")
def top1_nll(inputs: ScoreInputs) -> np.ndarray:
    return _per_input(inputs, "top1_nll")
