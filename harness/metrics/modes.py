"""Mode coverage from labelled references: do the N candidates use the different correct
outputs an input has? Pure functions.

Each reference carries a mode label (e.g. the form of address a translation uses, the
subset of a scene a caption describes; ``None``: no mode). A candidate's mode is given
(``candidate_modes``, e.g. from a classifier) or is the mode of the reference it matches
best (sacreBLEU sentence BLEU, 13a, ties to the first reference — as ``refs_covered``).
Per input with at least one labelled reference:

- ``modes_covered``: the distinct modes of its references that some candidate has;
- ``mode_recall``: that over the distinct modes of its references;

each averaged over those inputs (the Tatoeba task's ``modes_covered`` / ``mode_recall`` with
its address-form classifier as ``candidate_modes``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from harness.metrics.catalogue import MetricValues
from harness.metrics.diversity import best_matches
from harness.metrics.ngrams import NgramTable


def mode_coverage(candidates: Sequence[Sequence[str]], references: Sequence[Sequence[str]],
                  reference_modes: Sequence[Sequence[str | None]],
                  candidate_modes: Sequence[Sequence[str | None]] | None = None,
                  tokenize: str = "13a") -> MetricValues:
    """``modes_covered`` and ``mode_recall`` (see the module docstring); n/a when no input
    has a labelled reference. ``tokenize``: the sentence BLEU's sacreBLEU tokenisation."""
    if len(reference_modes) != len(references):
        raise ValueError(f"reference_modes has {len(reference_modes)} rows for {len(references)} inputs")
    table = NgramTable(tokenize)
    covered, recall = [], []
    for i, (cands, refs, labels) in enumerate(zip(candidates, references, reference_modes, strict=True)):
        if len(labels) != len(refs):
            raise ValueError(f"input {i}: {len(labels)} mode labels for {len(refs)} references")
        wanted = {m for m in labels if m is not None}
        if not wanted:
            continue
        if candidate_modes is not None:
            used = set(candidate_modes[i])
        else:
            used = {labels[j] for j in best_matches(cands, refs, table)}
        hit = wanted & used
        covered.append(len(hit))
        recall.append(len(hit) / len(wanted))
    if not covered:
        reason = "no input has a reference with a mode label"
        return MetricValues(unavailable={"modes_covered": reason, "mode_recall": reason})
    return MetricValues({"modes_covered": float(np.mean(covered)), "mode_recall": float(np.mean(recall))})
