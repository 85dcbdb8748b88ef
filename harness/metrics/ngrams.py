"""sacreBLEU's BLEU statistics from word n-grams counted once per distinct string.

The BLEU-based diversity metrics compare the same few strings with each other many times
(5 candidates × 5 references: 25 sentence BLEUs per input for ``refs_covered``, 20 pairs for
``pairwise_bleu`` …). sacreBLEU tokenises and counts n-grams again on every call; here each
distinct string is tokenised (13a by default, case-sensitive, as ``BLEU()``) and counted once, and the
statistics are sacreBLEU's own (``[hyp_len, ref_len, correct_1..4, total_1..4]``, closest
reference length, ties to the shorter), so scores computed from them are sacreBLEU's to the
bit (tests compare with ``sacrebleu.sentence_bleu`` / ``corpus_bleu``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from functools import lru_cache

from sacrebleu.metrics.bleu import BLEU
from sacrebleu.metrics.helpers import extract_all_word_ngrams

ORDER = 4
_CORPUS = BLEU()  # exp smoothing, no effective order: sacreBLEU's corpus defaults
# sacreBLEU's tokenisations that need no further package or download (BLEU(tokenize=...))
TOKENIZERS = ("13a", "intl", "zh", "char", "none")


@lru_cache
def tokenizer(name: str = "13a"):
    """sacreBLEU's tokenizer ``name`` (one of :data:`TOKENIZERS`), as ``BLEU(tokenize=name)`` uses."""
    if name not in TOKENIZERS:
        raise ValueError(f"unknown tokenisation {name!r}; choose one of {', '.join(TOKENIZERS)}")
    return BLEU(tokenize=name).tokenizer


class NgramTable:
    """Word n-grams (orders 1–4) and length of each string, counted on first use."""

    def __init__(self, tokenize: str = "13a") -> None:
        self._tokenize = tokenizer(tokenize)
        self._memo: dict[str, tuple[Counter, int]] = {}
        self._pairs: dict[tuple[str, str], tuple[int, ...]] = {}

    def __call__(self, text: str) -> tuple[Counter, int]:
        hit = self._memo.get(text)
        if hit is None:
            hit = self._memo[text] = extract_all_word_ngrams(self._tokenize(text.rstrip()), 1, ORDER)
        return hit

    def references(self, refs: Sequence[str]) -> tuple[dict, list[int]]:
        """Per n-gram the highest count in any reference, and the reference lengths."""
        if len(refs) == 1:
            grams, length = self(refs[0])
            return grams, [length]
        merged: dict = {}
        lengths = []
        for ref in refs:
            grams, length = self(ref)
            lengths.append(length)
            for gram, count in grams.items():
                if count > merged.get(gram, 0):
                    merged[gram] = count
        return merged, lengths

    def pair_stats(self, hyp: str, ref: str) -> tuple[int, ...]:
        """``stats`` of ``hyp`` against the single reference ``ref``, memoised (several
        metrics compare the same candidate–reference pairs)."""
        key = (hyp, ref)
        hit = self._pairs.get(key)
        if hit is None:
            hit = self._pairs[key] = self.stats(hyp, self.references([ref]))
        return hit

    def stats(self, hyp: str, refs: tuple[dict, list[int]]) -> tuple[int, ...]:
        """sacreBLEU's segment statistics of ``hyp`` against ``self.references(...)``."""
        grams, hyp_len = self(hyp)
        ref_grams, ref_lens = refs
        ref_len = min(ref_lens, key=lambda r: (abs(hyp_len - r), r))
        correct = [0] * ORDER
        total = [0] * ORDER
        for gram, count in grams.items():
            n = len(gram) - 1
            total[n] += count
            if gram in ref_grams:
                correct[n] += min(count, ref_grams[gram])
        return (hyp_len, ref_len, *correct, *total)


@lru_cache(maxsize=1 << 16)
def sentence_bleu(stats: tuple[int, ...]) -> float:
    """= ``sacrebleu.sentence_bleu``: exp smoothing with effective order."""
    return BLEU.compute_bleu(correct=stats[2:6], total=stats[6:10], sys_len=stats[0], ref_len=stats[1],
                             smooth_method="exp", effective_order=True).score


@lru_cache(maxsize=1 << 16)
def fairseq_sentence_bleu(stats: tuple[int, ...]) -> float:
    """fairseq ``translation_moe/score.py``'s ``sentence_bleu``: one added to the matches and
    totals of orders 2–4, exp smoothing, all four orders (no effective order)."""
    correct = [stats[2], *(c + 1 for c in stats[3:6])]
    total = [stats[6], *(t + 1 for t in stats[7:10])]
    return BLEU.compute_bleu(correct=correct, total=total, sys_len=stats[0], ref_len=stats[1],
                             smooth_method="exp", effective_order=False).score


def corpus_bleu(stats: Sequence[Sequence[int]]) -> float:
    """= ``sacrebleu.corpus_bleu`` from summed segment statistics."""
    summed = [sum(column) for column in zip(*stats, strict=True)]
    return _CORPUS._compute_score_from_stats(summed).score
