"""multi_candidate_bleu: sacreBLEU BLEU of N candidates per input, in four flavours (an
``evaluate`` module of mclbench; its card is README.md beside this file)."""

import mclbench.evaluate_base as base


class MultiCandidateBleu(base.CandidateSetMetric):
    metric_names = ("bleu",)
    summary = ('sacreBLEU corpus BLEU (13a, case-sensitive) of N candidates per input: top1/bleu (the first '
               "candidate), mean/bleu (mean over candidate ranks of each rank's corpus BLEU), "
               "oracle_corpus/bleu "
               "(corpus BLEU of each input's best candidate by sentence BLEU) and max/bleu (per input the "
               "best sentence BLEU, mean over inputs: the LoRA-MCL paper's oracle BLEU, ALMA's "
               'compute_oracle_sentence_bleu) and max@n/bleu for every n <= N.')
