"""Text quality of N candidates per input, with sacreBLEU. Pure functions.

Inputs everywhere: ``candidates[i][n]`` (N strings per input, the same N for every input)
and ``references[i][m]`` (one or more strings per input; the number may vary).
BLEU and chrF are sacreBLEU's defaults (BLEU: 13a tokenisation, case-sensitive, exp
smoothing; chrF: character 6-grams, β = 2); the signature string says exactly which. BLEU
takes another of sacreBLEU's tokenisations with ``tokenize`` (``intl``, ``zh``, ``char``,
``none``: :data:`harness.metrics.ngrams.TOKENIZERS`); chrF reads characters and has none.

Registered here: ``bleu`` and ``chrf``, quality metrics whose reductions over the N
candidates (``top1/``, ``mean/``, ``max/`` — the paper's oracle, per input the best sentence
score with sacreBLEU's sentence BLEU: exp smoothing, effective order —, ``max@n/``,
``oracle_corpus/``) :mod:`harness.metrics.registry` derives from each candidate's sentence
statistics, so that every corpus and sentence score comes from one statistics path.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sacrebleu.metrics import BLEU, CHRF

from harness.metrics.registry import (
    CandidateScores,
    MetricValues,
    ScoreInputs,
    register_metric,
    score,
)


class _CHRF(CHRF):
    """sacreBLEU's chrF with its inner loop over every hypothesis n-gram replaced by a
    key-set intersection: the same integer statistics (tests compare every score with
    ``sacrebleu.sentence_chrf`` / ``corpus_chrf``), ~2x faster on multi-reference data."""

    @staticmethod
    def _get_match_statistics(hyp_ngrams, ref_ngrams) -> list[int]:
        match = sum(min(hyp_ngrams[g], ref_ngrams[g]) for g in hyp_ngrams.keys() & ref_ngrams.keys())
        return [hyp_ngrams.total() if ref_ngrams else 0, ref_ngrams.total(), match]


class MetricInputError(ValueError):
    """Candidates or references that cannot be scored, with the first offending input."""


def check_inputs(candidates: Sequence[Sequence[str]], references: Sequence[Sequence[str]],
                 ids: Sequence[str] | None = None) -> int:
    """Validate shapes and types; return N (candidates per input)."""
    label = (lambda i: f"input {ids[i]!r}") if ids is not None else (lambda i: f"input #{i}")
    if len(candidates) != len(references):
        raise MetricInputError(f"{len(candidates)} candidate lists but {len(references)} reference lists")
    if not candidates:
        raise MetricInputError("nothing to score: no inputs")
    for i, cands in enumerate(candidates):
        if isinstance(cands, str) or not isinstance(cands, Sequence):
            raise MetricInputError(f"{label(i)}: candidates must be a list of strings, got {cands!r}")
    n = len(candidates[0])
    for i, (cands, refs) in enumerate(zip(candidates, references, strict=True)):
        if len(cands) != n:
            raise MetricInputError(
                f"{label(i)} has {len(cands)} candidates, the first input has {n}: every input "
                "needs the same number N of candidates")
        if isinstance(refs, str) or not refs:
            raise MetricInputError(f"{label(i)} has no reference (a non-empty list of strings is needed)")
        for what, items in (("candidate", cands), ("reference", refs)):
            bad = [x for x in items if not isinstance(x, str)]
            if bad:
                raise MetricInputError(f"{label(i)}: {what} {bad[0]!r} is not a string")
    if n == 0:
        raise MetricInputError("every input has 0 candidates")
    return n


def reference_streams(references: Sequence[Sequence[str]]) -> list[list[str | None]]:
    """sacreBLEU's layout: one stream per reference index, None where an input has fewer."""
    m = max(len(r) for r in references)
    return [[r[j] if j < len(r) else None for r in references] for j in range(m)]


def corpus_bleu(hyps: Sequence[str], references: Sequence[Sequence[str]]) -> float:
    return BLEU().corpus_score(list(hyps), reference_streams(references)).score


def corpus_chrf(hyps: Sequence[str], references: Sequence[Sequence[str]]) -> float:
    return CHRF().corpus_score(list(hyps), reference_streams(references)).score


_SENTENCE_BLEU = BLEU(effective_order=True)  # sacreBLEU's advice for sentence-level BLEU
_SENTENCE_CHRF = CHRF()


def sentence_bleu(hyp: str, refs: Sequence[str]) -> float:
    return _SENTENCE_BLEU.sentence_score(hyp, list(refs)).score


def sentence_chrf(hyp: str, refs: Sequence[str]) -> float:
    return _SENTENCE_CHRF.sentence_score(hyp, list(refs)).score


def signatures(references: Sequence[Sequence[str]], tokenize: str = "13a") -> dict[str, str]:
    """sacreBLEU signature strings of ``bleu`` and ``chrf`` for these references."""
    streams = reference_streams(references)
    bleu, chrf = BLEU(tokenize=tokenize), CHRF()
    bleu.corpus_score([r or "" for r in streams[0]], streams)  # fixes nrefs in the signature
    chrf.corpus_score([r or "" for r in streams[0]], streams)
    return {"bleu": str(bleu.get_signature()), "chrf": str(chrf.get_signature())}


def rank_statistics(name: str, candidates, references, tokenize: str = "13a"):
    """The metric with the references' statistics computed once, and the per-sentence
    sufficient statistics of every candidate rank: an int array ``(N, inputs, stats)``.

    Uses sacreBLEU's statistics methods so that references are processed once instead of
    in every corpus or sentence call; tests pin the results to its public scores.
    """
    streams = reference_streams(references)
    metric = BLEU(references=streams, tokenize=tokenize) if name == "bleu" else _CHRF(references=streams)
    n = len(candidates[0])
    stats = [metric._extract_corpus_statistics([c[k] for c in candidates], None) for k in range(n)]
    return metric, np.asarray(stats, dtype=np.int64)


def _sentence_score(name: str, metric, s: list[int]) -> float:
    if name == "bleu":  # as sentence_bleu: exp smoothing with effective order
        return BLEU.compute_bleu(correct=s[2:6], total=s[6:10], sys_len=s[0], ref_len=s[1],
                                 smooth_method="exp", effective_order=True).score
    return metric._compute_score_from_stats(s).score


def candidate_scores(name: str, candidates, references, tokenize: str = "13a") -> CandidateScores:
    """Each candidate's sentence score and corpus statistics under ``bleu`` or ``chrf``."""
    check_inputs(candidates, references)
    metric, stats = rank_statistics(name, candidates, references, tokenize)  # (N, inputs, S)

    def corpus(rows):
        return metric._compute_score_from_stats(rows.sum(0).tolist()).score

    sentence = np.array([[_sentence_score(name, metric, stats[k, i].tolist()) for k in range(stats.shape[0])]
                         for i in range(stats.shape[1])])
    return CandidateScores(sentence, stats.transpose(1, 0, 2), corpus)


@register_metric("bleu", kind="candidate", higher_is_better=True, tokenisation="sacreBLEU {tokenize}",
                 description="sacreBLEU BLEU (corpus; sentence BLEU with exp smoothing and effective order "
                 "per candidate)",
                 paper="max/: ALMA's compute_oracle_sentence_bleu (the LoRA-MCL paper's MT oracle BLEU)",
                 signature=lambda refs, tokenize: f"sacreBLEU bleu: {signatures(refs, tokenize)['bleu']}")
def bleu(inputs: ScoreInputs) -> CandidateScores:
    return candidate_scores("bleu", inputs.candidates, inputs.references, inputs.tokenize)


@register_metric("chrf", kind="candidate", higher_is_better=True, tokenisation="characters",
                 description="sacreBLEU chrF (character 6-grams, beta 2)", paper="sacreBLEU chrF",
                 signature=lambda refs, tokenize: f"sacreBLEU chrf: {signatures(refs, tokenize)['chrf']}")
def chrf(inputs: ScoreInputs) -> CandidateScores:
    return candidate_scores("chrf", inputs.candidates, inputs.references)


def quality_flavours(candidates: Sequence[Sequence[str]], references: Sequence[Sequence[str]],
                     metrics: Sequence[str] | None = None, tokenize: str = "13a") -> MetricValues:
    """Every reduction of the sacreBLEU metrics in ``metrics`` (default: both), through the registry."""
    return score(candidates, references, list(metrics or (bleu.__name__, chrf.__name__)), tokenize)
