"""Sentence-BERT similarity and diversity (:mod:`harness.semantic` runs the model; this module
registers the two metrics).

- ``sbert_sim``: a candidate's score is the mean cosine of its embedding to the references'
  (aac-metrics ``sbert_sim``); reductions ``top1/`` and ``max/`` (the paper's audio
  ``sbert_sim`` max);
- ``sbert_diversity``: per input the mean cosine distance between its candidates, averaged.
"""

from __future__ import annotations

from harness import semantic
from harness.metrics.registry import CandidateScores, MetricUnavailable, ScoreInputs, register_metric


def _similarities(inputs: ScoreInputs):
    def compute():
        try:
            return semantic.similarities(inputs.candidates, inputs.references)
        except semantic.SbertUnavailable as exc:
            return MetricUnavailable(str(exc))

    found = inputs.shared(__name__, compute)
    if isinstance(found, MetricUnavailable):
        raise found
    return found


@register_metric("sbert_sim", kind="candidate", higher_is_better=True, tokenisation="the model's",
                 reductions=("top1", "max"), paper="aac-metrics sbert_sim; max/: the paper's audio sbert_sim",
                 description="SBERT cosine of a candidate to the references (mean over references, "
                 "all-MiniLM-L6-v2)")
def sbert_sim(inputs: ScoreInputs) -> CandidateScores:
    return CandidateScores(_similarities(inputs)[0])


@register_metric("sbert_diversity", kind="set", higher_is_better=True, tokenisation="the model's",
                 needs=("two_candidates",),
                 description="mean SBERT cosine distance between an input's candidates")
def sbert_diversity(inputs: ScoreInputs) -> float:
    return _similarities(inputs)[1]
