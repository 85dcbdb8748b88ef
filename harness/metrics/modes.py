"""Mode coverage from labelled references: do the N candidates use the different correct
outputs an input has? Pure functions.

Each reference carries a mode label (e.g. the form of address a translation uses, the
subset of a scene a caption describes; ``None``: no mode). A candidate's mode is given
(``candidate_modes``, e.g. from a classifier) or is the mode of the reference it matches
best (sacreBLEU sentence BLEU, 13a, ties to the first reference — as ``refs_covered``).
Per input with at least one labelled reference:

- ``modes_covered``: the distinct modes of its references that some candidate has;
- ``mode_recall``: that over the distinct modes of its references;

each averaged over those inputs. Both decompose over inputs (a row per input, NaN where
neither is defined) for the bootstrap and the significance test. The one definition of both
names (registered below): the Tatoeba task gives its address-form classifier's labels as
``reference_modes`` and ``candidate_modes``, the generated captioning sets the described
subset of each caption as ``reference_modes``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from harness.metrics.diversity import best_matches
from harness.metrics.ngrams import NgramTable
from harness.metrics.registry import MetricUnavailable, MetricValues, ScoreInputs, register_metric


def modes_used(labels: Sequence[str | None], best: Sequence[int],
               candidate_modes: Sequence[str | None] | None = None) -> set[str | None]:
    """One input's modes that its candidates have: each candidate's given mode, else that of
    its best-matched reference (``best``: :func:`~harness.metrics.diversity.best_matches`)."""
    return set(candidate_modes) if candidate_modes is not None else {labels[j] for j in best}


_NO_LABELS = "no input has a reference with a mode label"


def mode_rows(candidates: Sequence[Sequence[str]], references: Sequence[Sequence[str]],
              reference_modes: Sequence[Sequence[str | None]],
              candidate_modes: Sequence[Sequence[str | None]] | None = None,
              tokenize: str = "13a") -> dict[str, np.ndarray]:
    """``modes_covered`` and ``mode_recall`` per input, NaN for an input without a labelled
    reference (neither is defined there). ``tokenize``: the sentence BLEU's sacreBLEU
    tokenisation."""
    if len(reference_modes) != len(references):
        raise ValueError(f"reference_modes has {len(reference_modes)} rows for {len(references)} inputs")
    table = NgramTable(tokenize)
    covered = np.full(len(references), np.nan)
    recall = np.full(len(references), np.nan)
    for i, (cands, refs, labels) in enumerate(zip(candidates, references, reference_modes, strict=True)):
        if len(labels) != len(refs):
            raise ValueError(f"input {i}: {len(labels)} mode labels for {len(refs)} references")
        wanted = {m for m in labels if m is not None}
        if not wanted:
            continue
        given = None if candidate_modes is None else candidate_modes[i]
        best = best_matches(cands, refs, table) if given is None else ()  # needed only without given modes
        hit = wanted & modes_used(labels, best, given)
        covered[i] = len(hit)
        recall[i] = len(hit) / len(wanted)
    return {"modes_covered": covered, "mode_recall": recall}


def mode_coverage(candidates: Sequence[Sequence[str]], references: Sequence[Sequence[str]],
                  reference_modes: Sequence[Sequence[str | None]],
                  candidate_modes: Sequence[Sequence[str | None]] | None = None,
                  tokenize: str = "13a") -> MetricValues:
    """``modes_covered`` and ``mode_recall`` (see the module docstring): the mean of
    :func:`mode_rows` over the inputs with a labelled reference; n/a when there is none."""
    rows = mode_rows(candidates, references, reference_modes, candidate_modes, tokenize)
    if np.isnan(rows["modes_covered"]).all():
        return MetricValues(unavailable={name: _NO_LABELS for name in rows})
    return MetricValues({name: float(np.nanmean(r)) for name, r in rows.items()})


def _rows(inputs: ScoreInputs, name: str) -> np.ndarray:
    i = inputs
    rows = i.shared(__name__, lambda: mode_rows(i.candidates, i.references, i.reference_modes,
                                                i.candidate_modes, i.tokenize))[name]
    if np.isnan(rows).all():
        raise MetricUnavailable(_NO_LABELS)
    return rows


_TOKENS = "sacreBLEU {tokenize} (the best-match sentence BLEU)"


@register_metric("modes_covered", kind="set", higher_is_better=True, tokenisation=_TOKENS, needs=("modes",),
                 per_input=True,
                 description="distinct modes of the references that some candidate has (its mode: given, "
                 "or its best-matched reference's by sentence BLEU), per input with a labelled reference")
def modes_covered(inputs: ScoreInputs) -> np.ndarray:
    return _rows(inputs, "modes_covered")


@register_metric("mode_recall", kind="set", higher_is_better=True, tokenisation=_TOKENS, needs=("modes",),
                 per_input=True,
                 description="modes_covered / the distinct modes of the input's references")
def mode_recall(inputs: ScoreInputs) -> np.ndarray:
    return _rows(inputs, "mode_recall")
