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
  the same M ≥ 2 for every input: fairseq's definition).
- ``loo_bleu_2refs`` (higher): ``loo_bleu`` on every input's first two references, for data
  whose M varies (Tatoeba's 2–6): a metric of its own, not fairseq's on the full references.
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

Each is registered (:mod:`harness.metrics.registry`) as a set metric; those that are means
of per-input values (mBLEU-4, refs covered, Div-n, unique) return the per-input rows, so they
decompose over inputs for the bootstrap and the significance test. The BLEU-based metrics of
one scoring call share one :class:`~harness.metrics.ngrams.NgramTable`: each string is
tokenised and counted once, with sacreBLEU's statistics.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

import numpy as np

from harness.metrics import ngrams as ng
from harness.metrics.ngrams import NgramTable, tokenizer
from harness.metrics.registry import MetricValues, ScoreInputs, load, register_metric, score
from harness.metrics.text import check_inputs


def tokens(text: str, tokenize: str = "13a") -> list[str]:
    return tokenizer(tokenize)(text).split()


def mbleu_4_rows(candidates: Sequence[Sequence[str]], table: NgramTable | None = None) -> np.ndarray:
    """Per input, the mean over its candidates of each one's sentence BLEU-4 against the others."""
    table = table or NgramTable()
    per_input = []
    for cands in candidates:
        if len(cands) < 2:
            raise ValueError("mBLEU-4 needs at least 2 candidates per input")
        per_input.append(np.mean([
            ng.sentence_bleu(table.stats(c, table.references([o for j, o in enumerate(cands) if j != i])))
            for i, c in enumerate(cands)]))
    return np.asarray(per_input, dtype=float)


def mbleu_4(candidates: Sequence[Sequence[str]], table: NgramTable | None = None) -> float:
    return float(np.mean(mbleu_4_rows(candidates, table)))


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


def refs_covered_rows(candidates: Sequence[Sequence[str]], references: Sequence[Sequence[str]],
                      table: NgramTable | None = None) -> np.ndarray:
    """Per input, the distinct references that are some candidate's best match."""
    table = table or NgramTable()
    return np.asarray([len(set(best_matches(cands, refs, table)))
                       for cands, refs in zip(candidates, references, strict=True)], dtype=float)


def refs_covered(candidates: Sequence[Sequence[str]], references: Sequence[Sequence[str]],
                 table: NgramTable | None = None) -> float:
    return float(np.mean(refs_covered_rows(candidates, references, table)))


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


def div_n_rows(candidates: Sequence[Sequence[str]], n: int, tokenize: str = "13a") -> np.ndarray:
    """Per input, distinct n-grams over its N candidates / their tokens."""
    per_input = []
    for cands in candidates:
        toks = [tokens(c, tokenize) for c in cands]
        total = sum(len(t) for t in toks)
        grams = {tuple(t[k:k + n]) for t in toks for k in range(len(t) - n + 1)}
        per_input.append(len(grams) / total if total else 0.0)
    return np.asarray(per_input, dtype=float)


def div_n(candidates: Sequence[Sequence[str]], n: int, tokenize: str = "13a") -> float:
    return float(np.mean(div_n_rows(candidates, n, tokenize)))


def vocab(candidates: Sequence[Sequence[str]], tokenize: str = "13a") -> float:
    return float(len({tok for cands in candidates for c in cands for tok in tokens(c, tokenize)}))


def unique_rows(candidates: Sequence[Sequence[str]]) -> np.ndarray:
    return np.asarray([len(set(c)) / len(c) for c in candidates], dtype=float)


def unique(candidates: Sequence[Sequence[str]]) -> float:
    return float(np.mean(unique_rows(candidates)))


# ---------------------------------------------------------------- registered
def _table(inputs: ScoreInputs) -> NgramTable:
    """The scoring call's n-gram table: every string tokenised and counted once."""
    return inputs.shared(f"{__name__}.table", lambda: NgramTable(inputs.tokenize))


_13A, _FAIRSEQ = "sacreBLEU {tokenize}", "fairseq examples/translation_moe/score.py"


@register_metric("mbleu_4", kind="set", higher_is_better=False, tokenisation=_13A, per_input=True,
                 needs=("two_candidates",), paper="the LoRA-MCL paper's MT mBLEU-4 (its code)",
                 description="each candidate's sentence BLEU-4 vs. the other N-1, mean over candidates then "
                 "inputs (lower = more diverse)")
def mbleu_4_metric(inputs: ScoreInputs) -> np.ndarray:
    return mbleu_4_rows(inputs.candidates, _table(inputs))


@register_metric("pairwise_bleu", kind="set", higher_is_better=False, tokenisation=_13A,
                 needs=("two_candidates",), paper=_FAIRSEQ + " (pairwise)",
                 description="corpus BLEU over ordered candidate pairs (lower = more diverse)")
def pairwise_bleu_metric(inputs: ScoreInputs) -> float:
    return pairwise_bleu(inputs.candidates, _table(inputs))


@register_metric("loo_bleu", kind="set", higher_is_better=True, tokenisation=_13A,
                 needs=("equal_references",), paper=_FAIRSEQ + " (leave-one-out)",
                 description="leave-one-out multi-reference BLEU: per held-out reference index, corpus "
                 "BLEU of every candidate against the other M-1, mean over indices")
def loo_bleu_metric(inputs: ScoreInputs) -> float:
    return loo_bleu(inputs.candidates, inputs.references, _table(inputs))


@register_metric("loo_bleu_2refs", kind="set", higher_is_better=True, tokenisation=_13A,
                 needs=("two_references",), paper="fairseq's leave-one-out BLEU on the first 2 references",
                 description="loo_bleu on every input's first two references (for data whose number of "
                 "references varies)")
def loo_bleu_2refs(inputs: ScoreInputs) -> float:
    return loo_bleu(inputs.candidates, [r[:2] for r in inputs.references], _table(inputs))


@register_metric("refs_covered", kind="set", higher_is_better=True, tokenisation=_13A, per_input=True,
                 paper="the LoRA-MCL code's refs_covered_metric (ALMA/compute_metrics.py)",
                 description="distinct references best-matched (sacreBLEU sentence BLEU, ties to the "
                 "first) by some candidate")
def refs_covered_metric(inputs: ScoreInputs) -> np.ndarray:
    return refs_covered_rows(inputs.candidates, inputs.references, _table(inputs))


@register_metric("refs_covered_fairseq", kind="set", higher_is_better=True, tokenisation=_13A,
                 paper=_FAIRSEQ + " (multi_ref)",
                 description="as refs_covered with fairseq's add-one smoothed sentence BLEU and seeded "
                 "random ties")
def refs_covered_fairseq_metric(inputs: ScoreInputs) -> float:
    return refs_covered_fairseq(inputs.candidates, inputs.references, _table(inputs))


@register_metric("div_1", kind="set", higher_is_better=True, tokenisation=_13A, per_input=True,
                 description="distinct unigrams / tokens over the N candidates, mean over inputs")
def div_1(inputs: ScoreInputs) -> np.ndarray:
    return div_n_rows(inputs.candidates, 1, inputs.tokenize)


@register_metric("div_2", kind="set", higher_is_better=True, tokenisation=_13A, per_input=True,
                 description="distinct bigrams / tokens over the N candidates, mean over inputs")
def div_2(inputs: ScoreInputs) -> np.ndarray:
    return div_n_rows(inputs.candidates, 2, inputs.tokenize)


@register_metric("vocab", kind="set", higher_is_better=True, tokenisation=_13A,
                 description="distinct tokens over all candidates")
def vocab_metric(inputs: ScoreInputs) -> float:
    return vocab(inputs.candidates, inputs.tokenize)


@register_metric("unique", kind="set", higher_is_better=True, per_input=True,
                 description="distinct candidates / N, mean over inputs")
def unique_metric(inputs: ScoreInputs) -> np.ndarray:
    return unique_rows(inputs.candidates)


def diversity(candidates: Sequence[Sequence[str]], references: Sequence[Sequence[str]],
              tokenize: str = "13a") -> MetricValues:
    """Every metric of this module that applies (through the registry)."""
    check_inputs(candidates, references)
    mine = [m.name for m in load().values() if m.module == __name__]
    return score(candidates, references, mine, tokenize)
