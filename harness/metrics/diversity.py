"""Diversity of N candidates per input, and how many references they cover. Pure functions.

Tokenisation: BLEU-based scores use sacreBLEU's defaults (13a, case-sensitive); Div-n and
vocabulary split with the same 13a tokenizer, case-sensitive. ``diversity(..., tokenize=)``
takes another of sacreBLEU's tokenisations for all of them (``intl``, ``zh``, ``char``,
``none``). Definitions follow fairseq's ``examples/translation_moe/score.py`` where one exists.

- ``mbleu_4`` (lower = more diverse): per input, each candidate's sentence BLEU-4 against
  the other N−1, averaged over candidates, then over inputs.
- ``pairwise_bleu`` (lower = more diverse): one corpus BLEU over all ordered pairs
  (c_i as hypothesis, c_j as reference, i ≠ j) of every input.
- ``loo_bleu`` (higher): leave-one-out multi-reference BLEU: for each reference index j,
  corpus BLEU of all candidates against the other M−1 references, averaged over j (needs
  the same M ≥ 2 for every input).
- ``refs_covered`` (higher): per input, the number of distinct references that are the
  best match of some candidate, averaged; the match is sacreBLEU's ``sentence_bleu`` (exp
  smoothing, effective order) and ties go to the first reference: this is the LoRA-MCL
  code's ``refs_covered_metric`` (ALMA/compute_metrics.py), not fairseq's original.
- ``refs_covered_fairseq`` (higher): fairseq ``translation_moe/score.py``'s ``multi_ref``
  count: its own sentence BLEU (one added to the matches and totals of orders 2–4, exp
  smoothing, no effective order) and ties broken at random, here with ``random.Random(0)``
  so that a run repeats. The two can differ: 1.90 for both on the 20-input reference
  fixture (tests), 2.7118 vs 2.6682 on the speed benchmark's 5 000 inputs × 5 × 5.
- ``div_1``, ``div_2`` (higher): per input, distinct n-grams over the N candidates / total
  tokens of the N candidates, averaged.
- ``vocab`` (higher): distinct tokens over all candidates of all inputs.
- ``unique`` (higher): distinct candidates / N per input, averaged.

The BLEU-based metrics share one :class:`~harness.metrics.ngrams.NgramTable` per call of
:func:`diversity`: each string is tokenised and counted once, with sacreBLEU's statistics.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

import numpy as np

from harness.metrics import ngrams as ng
from harness.metrics.catalogue import MetricValues
from harness.metrics.ngrams import NgramTable, tokenizer
from harness.metrics.text import check_inputs


def tokens(text: str, tokenize: str = "13a") -> list[str]:
    return tokenizer(tokenize)(text).split()


def mbleu_4(candidates: Sequence[Sequence[str]], table: NgramTable | None = None) -> float:
    table = table or NgramTable()
    per_input = []
    for cands in candidates:
        if len(cands) < 2:
            raise ValueError("mBLEU-4 needs at least 2 candidates per input")
        per_input.append(np.mean([
            ng.sentence_bleu(table.stats(c, table.references([o for j, o in enumerate(cands) if j != i])))
            for i, c in enumerate(cands)]))
    return float(np.mean(per_input))


def pairwise_bleu(candidates: Sequence[Sequence[str]], table: NgramTable | None = None) -> float:
    table = table or NgramTable()
    stats = [table.pair_stats(c, other)
             for cands in candidates for i, c in enumerate(cands)
             for j, other in enumerate(cands) if i != j]
    if not stats:
        raise ValueError("pairwise BLEU needs at least 2 candidates per input")
    return ng.corpus_bleu(stats)


def loo_bleu(candidates: Sequence[Sequence[str]], references: Sequence[Sequence[str]],
             table: NgramTable | None = None) -> float:
    table = table or NgramTable()
    m = len(references[0])
    if m < 2 or any(len(r) != m for r in references):
        raise ValueError("leave-one-out BLEU needs the same number (>= 2) of references per input")
    scores = []
    for held_out in range(m):  # one corpus: every candidate against the other M-1 references
        stats = []
        for cands, refs in zip(candidates, references, strict=True):
            kept = table.references([r for j, r in enumerate(refs) if j != held_out])
            stats.extend(table.stats(c, kept) for c in cands)
        scores.append(ng.corpus_bleu(stats))
    return float(np.mean(scores))


def _pair_scores(candidates, references, table: NgramTable, sentence_bleu) -> list[list[list[float]]]:
    """Per input, per candidate, its sentence BLEU against each reference alone."""
    return [[[sentence_bleu(table.pair_stats(c, r)) for r in refs] for c in cands]
            for cands, refs in zip(candidates, references, strict=True)]


def best_matches(candidates: Sequence[str], references: Sequence[str], table: NgramTable) -> list[int]:
    """Per candidate, the index of the reference with its highest sentence BLEU (ties: the first)."""
    return [int(np.argmax([ng.sentence_bleu(table.pair_stats(c, r)) for r in references]))
            for c in candidates]


def refs_covered(candidates: Sequence[Sequence[str]], references: Sequence[Sequence[str]],
                 table: NgramTable | None = None) -> float:
    table = table or NgramTable()
    return float(np.mean([len(set(best_matches(cands, refs, table)))
                          for cands, refs in zip(candidates, references, strict=True)]))


def refs_covered_fairseq(candidates: Sequence[Sequence[str]], references: Sequence[Sequence[str]],
                         table: NgramTable | None = None, seed: int = 0) -> float:
    rng = random.Random(seed)
    covered = []
    for per_cand in _pair_scores(candidates, references, table or NgramTable(), ng.fairseq_sentence_bleu):
        picked = set()
        for s in per_cand:
            best = max(s)
            picked.add(rng.choice([k for k, v in enumerate(s) if v == best]))
        covered.append(len(picked))
    return float(np.mean(covered))


def div_n(candidates: Sequence[Sequence[str]], n: int, tokenize: str = "13a") -> float:
    per_input = []
    for cands in candidates:
        toks = [tokens(c, tokenize) for c in cands]
        total = sum(len(t) for t in toks)
        grams = {tuple(t[k:k + n]) for t in toks for k in range(len(t) - n + 1)}
        per_input.append(len(grams) / total if total else 0.0)
    return float(np.mean(per_input))


def vocab(candidates: Sequence[Sequence[str]], tokenize: str = "13a") -> float:
    return float(len({tok for cands in candidates for c in cands for tok in tokens(c, tokenize)}))


def unique(candidates: Sequence[Sequence[str]]) -> float:
    return float(np.mean([len(set(c)) / len(c) for c in candidates]))


def diversity(candidates: Sequence[Sequence[str]], references: Sequence[Sequence[str]],
              tokenize: str = "13a") -> MetricValues:
    """Every diversity metric that applies (BLEU-based ones need N >= 2; ``loo_bleu`` M >= 2);
    ``tokenize``: sacreBLEU's tokenisation of the BLEU-based metrics and Div-n (default 13a)."""
    n = check_inputs(candidates, references)
    table = NgramTable(tokenize)  # every string tokenised and counted once for all BLEU-based metrics
    out = {"div_1": div_n(candidates, 1, tokenize), "div_2": div_n(candidates, 2, tokenize),
           "vocab": vocab(candidates, tokenize), "unique": unique(candidates),
           "refs_covered": refs_covered(candidates, references, table),
           "refs_covered_fairseq": refs_covered_fairseq(candidates, references, table)}
    if n >= 2:
        out["mbleu_4"] = mbleu_4(candidates, table)
        out["pairwise_bleu"] = pairwise_bleu(candidates, table)
    m = {len(r) for r in references}
    if len(m) == 1 and m.pop() >= 2:
        out["loo_bleu"] = loo_bleu(candidates, references, table)
    return MetricValues(out)
