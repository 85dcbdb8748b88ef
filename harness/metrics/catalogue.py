"""What each metric is: its direction, description and tokenisation (the catalogue every
table, task and ``mclbench score`` reads), and the one shape metric functions return.

Flavours of a quality metric ``m`` over N candidates per input: ``top1/m`` (the first
candidate), ``mean/m`` (the mean over candidate ranks of each rank's corpus score) and
``oracle/m`` (the corpus score of each input's best candidate).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class MetricInfo:
    """A metric's direction (None: a reference level such as a bound, never ranked), what it
    measures, and the tokenisation it scores (None: not text, or not tokenised)."""

    higher_is_better: bool | None
    description: str
    tokenisation: str | None = None


class MetricValues(dict):
    """What every metric function returns: ``{metric: value}``, and in ``unavailable``
    ``{metric: reason}`` for the metrics that could not be computed here (n/a, never a
    number)."""

    def __init__(self, values=(), unavailable: dict[str, str] | None = None):
        super().__init__(values)
        self.unavailable = dict(unavailable or {})


_13A, _PTB = "sacreBLEU 13a", "PTB (pycocoevalcap: lower-cased, punctuation removed)"
QUALITY = {  # name: (description, tokenisation)
    "bleu": ("sacreBLEU corpus BLEU", _13A), "chrf": ("sacreBLEU chrF", "characters"),
    **{f"bleu_{n}": (f"COCO BLEU-{n} (PTB tokens)", _PTB) for n in range(1, 5)},
    "meteor": ("COCO METEOR 1.5", _PTB), "rouge_l": ("COCO ROUGE-L", _PTB),
    "cider_d": ("COCO CIDEr-D", _PTB), "spice": ("COCO SPICE", _PTB),
    "spider": ("SPIDEr = (CIDEr-D + SPICE) / 2; oracle: SPIDEr-max", _PTB),
}
DIVERSITY = {
    "mbleu_4": MetricInfo(False, "each candidate's BLEU-4 vs. the other N-1 (lower = more diverse)", _13A),
    "pairwise_bleu": MetricInfo(False, "corpus BLEU over ordered candidate pairs (lower = more diverse)",
                                _13A),
    "loo_bleu": MetricInfo(True, "leave-one-out multi-reference BLEU", _13A),
    "refs_covered": MetricInfo(True, "distinct references best-matched by some candidate", _13A),
    "div_1": MetricInfo(True, "distinct unigrams / tokens over the N candidates", _13A),
    "div_2": MetricInfo(True, "distinct bigrams / tokens over the N candidates", _13A),
    "vocab": MetricInfo(True, "distinct tokens over all candidates", _13A),
    "unique": MetricInfo(True, "distinct candidates / N", None),
}
METRICS = [*QUALITY, *DIVERSITY]


def metric_info(name: str) -> MetricInfo:
    """The catalogue entry of ``name`` (``flavour/metric`` for a quality metric)."""
    base = name.split("/", 1)[-1]
    if base in QUALITY:
        description, tokens = QUALITY[base]
        return MetricInfo(True, f"{description}, {name.split('/')[0]} flavour", tokens)
    return DIVERSITY[base]
