"""What every mclbench ``evaluate`` module shares: inputs, the call into ``mclbench score``
(:func:`harness.scoring.score`) and the card fields. A module is a subclass naming its
metrics and its texts (``mclbench/evaluate_modules/<name>/<name>.py``)."""

from __future__ import annotations

import datasets
import evaluate

from harness import scoring

CITATION = """\
@article{letzelter2025loramcl,
  title   = {Multiple Choice Learning of Low-Rank Adapters for Language Modeling},
  author  = {Letzelter, Victor and Malard, Hugo and Fontaine, Mathieu and Richard, Ga{\"e}l and
             Essid, Slim and Bursuc, Andrei and others},
  journal = {arXiv preprint arXiv:2507.10419},
  year    = {2025}
}
"""
INPUTS = """
Args:
    predictions: list of lists of strings, the N candidates of each input (the same N for every input).
    references: list of lists of strings, the references of each input (any number >= 1).
    metrics: optional list, a subset of this module's metrics (a quality metric alone: all
        its reductions top1/, mean/, max/ (the paper's oracle), max@n/, oracle_corpus/; or one
        reduction, e.g. "max/bleu").
    tokenize: optional, sacreBLEU's tokenisation of BLEU and the 13a-based diversity metrics:
        13a (default), intl, zh, char or none (COCO metrics always read PTB tokens).
Returns:
    dict {metric: value}, exactly what `mclbench score --metrics ... --format json` prints;
    None for a metric that cannot run on this machine (e.g. SPICE offline, METEOR without Java).
"""


class CandidateSetMetric(evaluate.Metric):
    """An ``evaluate`` metric over N candidates per input, computed by ``mclbench score``."""

    metric_names: tuple[str, ...] = ()  # `mclbench score --metrics` names this module computes
    summary = ""  # the card's description
    citation = CITATION
    inputs = INPUTS

    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=self.summary, citation=self.citation, inputs_description=self.inputs,
            features=datasets.Features({"predictions": datasets.Sequence(datasets.Value("string")),
                                        "references": datasets.Sequence(datasets.Value("string"))}),
            module_type="metric")

    def _compute(self, predictions, references, metrics=None, reference_modes=None, candidate_modes=None,
                 tokenize="13a"):
        asked = list(metrics) if metrics else list(self.metric_names)
        outside = [m for m in asked if m.split("/", 1)[-1] not in self.metric_names]
        if outside:
            raise ValueError(f"{self.name} has no metric {outside[0]!r}; "
                             f"it has {', '.join(self.metric_names)}")
        asked, _ = scoring.resolve_names(asked)
        values, _ = scoring.score(list(range(len(predictions))), [list(p) for p in predictions],
                                  [list(r) for r in references], asked, reference_modes, candidate_modes,
                                  tokenize)
        return values
