"""multi_candidate_coco: the COCO caption metrics of N candidates per input, in four
flavours (an ``evaluate`` module of mclbench; its card is README.md beside this file)."""

import mclbench.evaluate_base as base
from harness.metrics import registry


class MultiCandidateCoco(base.CandidateSetMetric):
    # the quality metrics on the JVM's PTB tokens
    metric_names = tuple(m.name for m in registry.load().values()
                         if m.kind == "candidate" and m.group == "jvm")
    summary = ("pycocoevalcap's caption metrics (BLEU-1..4, METEOR 1.5, ROUGE-L, CIDEr-D, SPICE, SPIDEr) on "
               'PTB-tokenised text, of N candidates per input: top1/, mean/, max/, max@n/ and oracle_corpus/ '
               'reductions; max/'
               " is aac-metrics' mult_cands_metric(..., selection='max'), the LoRA-MCL paper's captioning "
               'oracle (max/spider = SPIDEr-max). METEOR, the PTB tokenizer and SPICE need Java; SPICE also '
               'its Stanford CoreNLP jars: without them the metric is None.')
