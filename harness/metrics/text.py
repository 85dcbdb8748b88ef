"""Text quality of N candidates per input, with sacreBLEU. Pure functions.

Inputs everywhere: ``candidates[i][n]`` (N strings per input, the same N for every input)
and ``references[i][m]`` (one or more strings per input; the number may vary).
BLEU and chrF are sacreBLEU's defaults (BLEU: 13a tokenisation, case-sensitive, exp
smoothing; chrF: character 6-grams, β = 2); the signature string says exactly which. BLEU
takes another of sacreBLEU's tokenisations with ``tokenize`` (``intl``, ``zh``, ``char``,
``none``: :data:`harness.metrics.ngrams.TOKENIZERS`); chrF reads characters and has none.

Candidate-set flavours, each a corpus score over one candidate per input, so the three
are comparable with each other and with published single-output numbers:

- ``top1/<m>``: the first candidate of every input (what a user would be shown);
- ``mean/<m>``: the mean over n of the corpus score of every input's n-th candidate;
- ``oracle/<m>``: per input the candidate with the best sentence-level score (ties: the
  first), then the corpus score of those choices: best of N;
- ``max/<m>``: per input the best sentence-level score (BLEU: sacreBLEU's sentence BLEU,
  exp smoothing, effective order — ``sacrebleu.sentence_bleu``'s defaults), then the mean
  over inputs: the paper's oracle (ALMA's ``compute_oracle_sentence_bleu``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sacrebleu.metrics import BLEU, CHRF

from harness.metrics.catalogue import MetricValues


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


QUALITY = ("bleu", "chrf")  # both higher is better, 0..100


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


def flavour_decompositions(candidates: Sequence[Sequence[str]], references: Sequence[Sequence[str]],
                           metrics: Sequence[str] = QUALITY, tokenize: str = "13a") -> dict[str, tuple]:
    """Per flavour: per-input statistics rows and the function that aggregates any subset of
    them into the corpus score (so bootstrap resampling needs no re-tokenisation)."""
    n = check_inputs(candidates, references)
    out = {}
    for name in metrics:
        metric, stats = rank_statistics(name, candidates, references, tokenize)  # (N, inputs, S)

        def corpus(rows, metric=metric):
            return metric._compute_score_from_stats(rows.sum(0).tolist()).score

        def mean_over_ranks(rows, corpus=corpus):  # rows: (inputs, N, S)
            return float(np.mean([corpus(rows[:, k]) for k in range(rows.shape[1])]))

        sentence = np.array([[_sentence_score(name, metric, stats[k, i].tolist()) for k in range(n)]
                             for i in range(stats.shape[1])])
        best = sentence.argmax(1)  # the first best candidate on ties
        out[f"top1/{name}"] = (stats[0], corpus)
        out[f"mean/{name}"] = (stats.transpose(1, 0, 2), mean_over_ranks)
        out[f"oracle/{name}"] = (stats[best, np.arange(len(best))], corpus)
        out[f"max/{name}"] = (sentence.max(1), _mean)
    return out


def _mean(rows: np.ndarray) -> float:
    return float(np.mean(rows))


def quality_flavours(candidates: Sequence[Sequence[str]], references: Sequence[Sequence[str]],
                     metrics: Sequence[str] = QUALITY, tokenize: str = "13a") -> MetricValues:
    """``top1/<m>``, ``mean/<m>``, ``oracle/<m>`` and ``max/<m>`` for every metric name in
    ``metrics`` (``tokenize``: BLEU's sacreBLEU tokenisation)."""
    parts = flavour_decompositions(candidates, references, metrics, tokenize)
    return MetricValues({name: float(aggregate(rows)) for name, (rows, aggregate) in parts.items()})
