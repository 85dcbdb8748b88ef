"""mode_coverage: do the N candidates of an input use the different correct outputs (modes)
its references show? (an ``evaluate`` module of mclbench; its card is README.md beside this
file)."""

import mclbench.evaluate_base as base
from harness.metrics import registry


class ModeCoverage(base.CandidateSetMetric):
    metric_names = tuple(m.name for m in registry.load().values() if "modes" in m.needs)
    summary = ('Mode coverage from labelled references: reference_modes gives a mode label (or None) per '
               "reference; a candidate's mode is given (candidate_modes) or is that of the reference it "
               'matches best (sacreBLEU sentence BLEU, ties to the first). modes_covered: per input with a '
               'labelled reference, the distinct reference modes some candidate has; mode_recall: that over '
               "the input's distinct reference modes; both averaged over those inputs.")
    inputs = base.INPUTS.replace("Returns:", """reference_modes: list of lists, per input a mode label
        (a string) or None for each reference.
    candidate_modes: optional list of lists, per input a mode label for each candidate (e.g.
        from a classifier); default: each candidate takes the mode of its best-matched reference.
Returns:""")
