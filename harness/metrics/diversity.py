"""Diversity of N candidates per input, and how many references they cover. Pure functions.

Tokenisation: BLEU-based scores use sacreBLEU's defaults (13a, case-sensitive); Div-n and
vocabulary split with the same 13a tokenizer, case-sensitive. Definitions follow fairseq's
``examples/translation_moe/score.py`` where one exists.

- ``mbleu_4`` (lower = more diverse): per input, each candidate's sentence BLEU-4 against
  the other N−1, averaged over candidates, then over inputs.
- ``pairwise_bleu`` (lower = more diverse): one corpus BLEU over all ordered pairs
  (c_i as hypothesis, c_j as reference, i ≠ j) of every input.
- ``loo_bleu`` (higher): leave-one-out multi-reference BLEU: for each reference index j,
  corpus BLEU of all candidates against the other M−1 references, averaged over j (needs
  the same M ≥ 2 for every input).
- ``refs_covered`` (higher): per input, the number of distinct references that are the
  best match (sentence BLEU) of some candidate, averaged (fairseq breaks ties at random;
  here: the first).
- ``div_1``, ``div_2`` (higher): per input, distinct n-grams over the N candidates / total
  tokens of the N candidates, averaged.
- ``vocab`` (higher): distinct tokens over all candidates of all inputs.
- ``unique`` (higher): distinct candidates / N per input, averaged.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sacrebleu.tokenizers.tokenizer_13a import Tokenizer13a

from harness.metrics.catalogue import MetricValues
from harness.metrics.text import check_inputs, corpus_bleu, rank_statistics, sentence_bleu

_TOKENIZE = Tokenizer13a()


def tokens(text: str) -> list[str]:
    return _TOKENIZE(text).split()


def mbleu_4(candidates: Sequence[Sequence[str]]) -> float:
    per_input = []
    for cands in candidates:
        if len(cands) < 2:
            raise ValueError("mBLEU-4 needs at least 2 candidates per input")
        per_input.append(np.mean([sentence_bleu(c, [o for j, o in enumerate(cands) if j != i])
                                  for i, c in enumerate(cands)]))
    return float(np.mean(per_input))


def pairwise_bleu(candidates: Sequence[Sequence[str]]) -> float:
    hyps, refs = [], []
    for cands in candidates:
        for i, c in enumerate(cands):
            for j, other in enumerate(cands):
                if i != j:
                    hyps.append(c)
                    refs.append([other])
    if not hyps:
        raise ValueError("pairwise BLEU needs at least 2 candidates per input")
    return corpus_bleu(hyps, refs)


def loo_bleu(candidates: Sequence[Sequence[str]], references: Sequence[Sequence[str]]) -> float:
    m = len(references[0])
    if m < 2 or any(len(r) != m for r in references):
        raise ValueError("leave-one-out BLEU needs the same number (>= 2) of references per input")
    scores = []
    for held_out in range(m):
        refs = [[r for j, r in enumerate(refs_i) if j != held_out] for refs_i in references]
        metric, stats = rank_statistics("bleu", candidates, refs)  # one corpus: every candidate
        scores.append(metric._compute_score_from_stats(stats.sum((0, 1)).tolist()).score)
    return float(np.mean(scores))


def refs_covered(candidates: Sequence[Sequence[str]], references: Sequence[Sequence[str]]) -> float:
    covered = []
    for cands, refs in zip(candidates, references, strict=True):
        best = {int(np.argmax([sentence_bleu(c, [r]) for r in refs])) for c in cands}
        covered.append(len(best))
    return float(np.mean(covered))


def div_n(candidates: Sequence[Sequence[str]], n: int) -> float:
    per_input = []
    for cands in candidates:
        toks = [tokens(c) for c in cands]
        total = sum(len(t) for t in toks)
        grams = {tuple(t[k:k + n]) for t in toks for k in range(len(t) - n + 1)}
        per_input.append(len(grams) / total if total else 0.0)
    return float(np.mean(per_input))


def vocab(candidates: Sequence[Sequence[str]]) -> float:
    return float(len({tok for cands in candidates for c in cands for tok in tokens(c)}))


def unique(candidates: Sequence[Sequence[str]]) -> float:
    return float(np.mean([len(set(c)) / len(c) for c in candidates]))


def diversity(candidates: Sequence[Sequence[str]],
              references: Sequence[Sequence[str]]) -> MetricValues:
    """Every diversity metric that applies (BLEU-based ones need N >= 2; ``loo_bleu`` M >= 2)."""
    n = check_inputs(candidates, references)
    out = {"div_1": div_n(candidates, 1), "div_2": div_n(candidates, 2),
           "vocab": vocab(candidates), "unique": unique(candidates),
           "refs_covered": refs_covered(candidates, references)}
    if n >= 2:
        out["mbleu_4"] = mbleu_4(candidates)
        out["pairwise_bleu"] = pairwise_bleu(candidates)
    m = {len(r) for r in references}
    if len(m) == 1 and m.pop() >= 2:
        out["loo_bleu"] = loo_bleu(candidates, references)
    return MetricValues(out)
