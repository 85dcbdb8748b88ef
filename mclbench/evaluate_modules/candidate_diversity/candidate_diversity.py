"""candidate_diversity: how different the N candidates of an input are, and how many
references they cover (an ``evaluate`` module of mclbench; its card is README.md beside
this file)."""

import mclbench.evaluate_base as base
from harness.metrics import registry


class CandidateDiversity(base.CandidateSetMetric):
    metric_names = tuple(m.name for m in registry.load().values()  # every set metric but mode coverage
                         if m.kind == "set" and "modes" not in m.needs and m.tokenisation != "the model's")
    summary = ("Diversity of N candidates per input and reference coverage: mbleu_4 (each candidate's BLEU-4"
               ' against the other N-1), pairwise_bleu, loo_bleu (leave-one-out multi-reference BLEU; needs '
               "the same M >= 2 references for every input), refs_covered (the LoRA-MCL code's "
               "refs_covered_metric), refs_covered_fairseq (fairseq translation_moe's multi_ref count), "
               'div_1, div_2, vocab, unique on sacreBLEU 13a tokens; mbleu_4_ptb, div_1_ptb, div_2_ptb, '
               "vocab_ptb: the LoRA-MCL paper's captioning diversity on PTB tokens (Java).")
