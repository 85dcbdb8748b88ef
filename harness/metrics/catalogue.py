"""What each metric is: its direction, description and tokenisation (the catalogue every
table, task and ``mclbench score`` reads), and the one shape metric functions return.

Flavours of a quality metric ``m`` over N candidates per input: ``top1/m`` (the first
candidate), ``mean/m`` (the mean over candidate ranks of each rank's corpus score),
``oracle/m`` (the corpus score of each input's best candidate) and ``max/m`` (per input the
best *sentence* score over the N candidates, then the mean over inputs: the LoRA-MCL
paper's oracle — aac-metrics ``mult_cands_metric(..., "max")``, ALMA's
``compute_oracle_sentence_bleu``; equal to ``oracle/`` for metrics that are means of
sentence scores, CIDEr-D and ROUGE-L, different for BLEU and METEOR).
"""

from __future__ import annotations

from dataclasses import dataclass

FLAVOURS = ("top1", "mean", "oracle", "max")


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
    "refs_covered": MetricInfo(True, "distinct references best-matched (sacreBLEU sentence BLEU, ties to the "
                               "first) by some candidate: the LoRA-MCL code's refs_covered_metric", _13A),
    "refs_covered_fairseq": MetricInfo(True, "as refs_covered with fairseq translation_moe's add-one "
                                       "smoothed sentence BLEU and seeded random ties (its multi_ref count)",
                                       _13A),
    "div_1": MetricInfo(True, "distinct unigrams / tokens over the N candidates", _13A),
    "div_2": MetricInfo(True, "distinct bigrams / tokens over the N candidates", _13A),
    "vocab": MetricInfo(True, "distinct tokens over all candidates", _13A),
    "unique": MetricInfo(True, "distinct candidates / N", None),
    # the LoRA-MCL paper's captioning diversity (its utils_diversity.py), on PTB tokens
    "mbleu_4_ptb": MetricInfo(False, "mean over ranks i of pycocoevalcap corpus BLEU-4 of candidate i vs "
                              "the other N-1 (lower = more diverse; the paper's captioning mBLEU-4)", _PTB),
    "div_1_ptb": MetricInfo(True, "distinct unigrams / (1e-6 + tokens) over the N candidates (paper's Div-1)",
                            _PTB),
    "div_2_ptb": MetricInfo(True, "distinct bigrams / (1e-6 + tokens) over the N candidates (paper's Div-2)",
                            _PTB),
    "vocab_ptb": MetricInfo(True, "distinct tokens over all candidates (the paper's vocabulary size)", _PTB),
}
LIKELIHOOD = {  # measured with the model at decode time (harness.probes); lower is better
    "oracle_nll": MetricInfo(False, "per (input, reference) the lowest per-token NLL over the hypotheses, "
                             "mean over references then inputs (the paper's oracle NLL)", "the backbone's"),
    "top1_nll": MetricInfo(False, "per-token NLL of the references under the first hypothesis",
                           "the backbone's"),
}
PTB_DIVERSITY = ("mbleu_4_ptb", "div_1_ptb", "div_2_ptb", "vocab_ptb")
# Sentence-BERT (harness.semantic: a model, so not computed in harness.metrics)
SEMANTIC = {
    "top1/sbert_sim": MetricInfo(True, "SBERT cosine of the first candidate to the references (mean over "
                                 "references, all-MiniLM-L6-v2), mean over inputs", "the model's"),
    "max/sbert_sim": MetricInfo(True, "per input the best candidate's SBERT cosine to the references, mean "
                                "over inputs (the paper's audio sbert_sim, max)", "the model's"),
    "sbert_diversity": MetricInfo(True, "mean SBERT cosine distance between an input's candidates",
                                  "the model's"),
}
SEMANTIC_FLAVOURS = ("top1", "max")
# modes of the output: given per reference (harness.metrics.modes; `mclbench score` when the
# JSONL rows carry "reference_modes")
MODE_COVERAGE = {
    "modes_covered": MetricInfo(True, "distinct modes of the references that some candidate has (its mode: "
                                "given, or its best-matched reference's by sentence BLEU)", _13A),
    "mode_recall": MetricInfo(True, "modes_covered / the distinct modes of the input's references", _13A),
}
METRICS = [*QUALITY, *DIVERSITY, *MODE_COVERAGE, "sbert_sim", "sbert_diversity"]


def metric_info(name: str) -> MetricInfo:
    """The catalogue entry of ``name`` (``flavour/metric`` for a quality metric)."""
    if name in SEMANTIC:
        return SEMANTIC[name]
    base = name.split("/", 1)[-1]
    if base in QUALITY:
        description, tokens = QUALITY[base]
        flavour = name.split("/")[0]
        if flavour == "max":
            description = f"{description}: per input the best sentence score, mean over inputs"
        return MetricInfo(True, f"{description}, {flavour} flavour", tokens)
    return MODE_COVERAGE[base] if base in MODE_COVERAGE else DIVERSITY[base]
