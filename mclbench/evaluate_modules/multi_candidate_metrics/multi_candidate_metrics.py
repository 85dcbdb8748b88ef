"""multi_candidate_metrics: every metric of mclbench's registry by name, over N candidates per
input (an ``evaluate`` module of mclbench; its card is README.md beside this file). A metric
registered anywhere (a file in ``harness/metrics/``, a ``mclbench.metrics`` entry point) is
here without an edit."""

import mclbench.evaluate_base as base
from harness.metrics import registry


class MultiCandidateMetrics(base.CandidateSetMetric):
    metric_names = tuple(m.name for m in registry.load().values()  # every text metric (not the probes)
                         if m.kind != "probe" and "modes" not in m.needs)
    summary = ("Every metric of mclbench's registry (docs/metrics.md) by name, over N candidates per input: "
               "a quality metric with all its reductions (top1/, mean/, max/ — the LoRA-MCL paper's oracle "
               "—, max@n/, oracle_corpus/) or one of them, and the set metrics (diversity, references "
               "covered). Pass metrics=[...] to choose; the default is every metric this machine can run.")
