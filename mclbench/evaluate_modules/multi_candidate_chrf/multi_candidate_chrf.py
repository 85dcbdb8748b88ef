"""multi_candidate_chrf: sacreBLEU chrF of N candidates per input, in four flavours (an
``evaluate`` module of mclbench; its card is README.md beside this file)."""

import mclbench.evaluate_base as base


class MultiCandidateChrf(base.CandidateSetMetric):
    metric_names = ("chrf",)
    summary = ('sacreBLEU chrF (character 6-grams, beta 2) of N candidates per input: top1/chrf, mean/chrf, '
               "oracle_corpus/chrf (corpus chrF of each input's best candidate by sentence chrF) and "
               "max/chrf (per "
               'input the best sentence chrF, mean over inputs), max@n/chrf for every n <= N.')
