"""TER (translation edit rate, sacreBLEU's defaults: case-sensitive, no normalisation), a
quality metric where lower is better: the registry derives ``top1/ter`` (the corpus TER of the
first candidates), ``mean/ter``, ``min/ter`` (per input the best sentence TER, mean over inputs),
``min@n/ter`` and ``oracle_corpus/ter`` from each candidate's sufficient statistics (edits,
average reference length), so sentence and corpus scores share one statistics path.

The worked example of docs/adding-a-metric.md, as a third-party package (TER's edit distance
with shifts is slow — ~37 s on the metric benchmark's 25 000 candidates — so it is not a
built-in): installed, this one file puts TER into ``mclbench score``, ``mclbench metrics``,
task files' ``metrics:``, the significance test and the ``multi_candidate_metrics`` evaluate
module, with no edit to any of them (``tests/test_ter.py``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sacrebleu.metrics import TER

from harness.metrics.registry import CandidateScores, ScoreInputs, register_metric
from harness.metrics.text import reference_streams


def _signature(references: Sequence[Sequence[str]], tokenize: str) -> str:
    streams = reference_streams(references)
    ter = TER()
    ter.corpus_score([r or "" for r in streams[0]], streams)  # fixes nrefs in the signature
    return f"sacreBLEU ter: {ter.get_signature()}"


@register_metric("ter", kind="candidate", higher_is_better=False, tokenisation="sacreBLEU TER (none)",
                 description="sacreBLEU TER: edits / average reference length × 100 (lower is better)",
                 paper="sacreBLEU corpus_ter / sentence_ter", signature=_signature)
def ter(inputs: ScoreInputs) -> CandidateScores:
    metric = TER(references=reference_streams(inputs.references))
    n = inputs.n_candidates
    stats = np.asarray([metric._extract_corpus_statistics([c[k] for c in inputs.candidates], None)
                        for k in range(n)], dtype=float).transpose(1, 0, 2)  # (inputs, N, [edits, ref len])

    def corpus(rows: np.ndarray) -> float:
        return metric._compute_score_from_stats(rows.sum(0).tolist()).score

    sentence = np.array([[corpus(stats[i, k][None]) for k in range(n)] for i in range(len(stats))])
    return CandidateScores(sentence, stats, corpus)
