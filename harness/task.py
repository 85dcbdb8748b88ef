"""The task plugin interface.

A task owns its data, its default backbone and its metrics. Methods see it only through
the hooks below, so a method works on every task whose backbone it can wrap.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn


@dataclass
class Example:
    """One test input: ``source`` is text, an image, audio or token ids."""

    id: str
    source: Any
    references: list[str]


@dataclass(frozen=True)
class MetricInfo:
    """A metric's direction (None: a reference level such as a bound, never ranked)."""

    higher_is_better: bool | None
    description: str


class TrainingSet:
    """Training sequences a trainer samples from by index."""

    def __len__(self) -> int:
        raise NotImplementedError

    def batch(self, indices: torch.Tensor) -> dict[str, torch.Tensor]:
        """``input_ids``, ``attention_mask``, ``labels`` (-100 on prompt and padding)."""
        raise NotImplementedError


def pad(seqs: list[list[int]], value: int) -> torch.Tensor:
    """Right-pad token lists to one tensor (``value``: the pad id, or -100 for labels)."""
    width = max(len(s) for s in seqs)
    return torch.tensor([s + [value] * (width - len(s)) for s in seqs])


def checkpoint_spec(source: str) -> dict[str, str]:
    """A backbone's cache identity: a local checkpoint by its files' content (a retrained
    checkpoint at the same path is a new backbone), a hub checkpoint by its name."""
    folder = Path(source)
    if not folder.is_dir():
        return {"hub": source}
    h = hashlib.sha256()
    for f in sorted(p for p in folder.iterdir() if p.is_file()):
        h.update(f.name.encode() + f.read_bytes())
    return {"checkpoint": h.hexdigest()}


def load_tokenizer(source: str):
    """A checkpoint's tokenizer, with a pad token (its EOS where it has none)."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(source)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok


class Task:
    """Base class of task plugins; register subclasses with ``@register_task(name)``."""

    name: ClassVar[str]
    Config: ClassVar[type]
    version: ClassVar[str] = "1"  # bump when data or scoring change, to invalidate caches
    # Defaults for trainer settings a method leaves unset (steps, batch_size, lr, target_modules).
    training_defaults: ClassVar[dict[str, Any]] = {}
    metrics: ClassVar[dict[str, MetricInfo]] = {}
    # Metrics that also get a 95 % bootstrap interval over test inputs in the leaderboard
    # (they must decompose over inputs: sacreBLEU and COCO names, see harness.scoring).
    bootstrap_metrics: ClassVar[tuple[str, ...]] = ()
    # The oracle metric of best-of-N curves (``oracle_score``), or None: no curve.
    best_of_n_metric: ClassVar[str | None] = None
    # (quality, diversity) metrics of the quality–diversity plot, or None: no such plot.
    quality_diversity: ClassVar[tuple[str, str] | None] = None

    def __init__(self, config):
        self.config = config

    # data
    def data_fingerprint(self) -> str:
        raise NotImplementedError

    def training_set(self) -> TrainingSet:
        raise NotImplementedError

    def test_examples(self) -> list[Example]:
        raise NotImplementedError

    # backbone
    def backbone_spec(self, seed: int) -> dict[str, Any]:
        """Everything that determines the backbone (its cache key)."""
        raise NotImplementedError

    def build_backbone(self, seed: int) -> nn.Module:
        raise NotImplementedError

    def load_backbone(self, directory) -> nn.Module:
        raise NotImplementedError

    # decoding
    def prompt_batch(self, examples: list[Example]) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def generation_kwargs(self) -> dict[str, Any]:
        return {}

    def decode_outputs(self, prompt: dict[str, torch.Tensor], sequences: torch.Tensor) -> list[str]:
        raise NotImplementedError

    # scoring
    def notes(self) -> list[str]:
        """Lines for the table footer that a reader needs to reproduce the scores (e.g.
        metric signature strings)."""
        return []

    def oracle_score(self, examples: list[Example], candidates: list[list[str]]) -> float:
        """``best_of_n_metric`` of these candidates (each input scored by its best one)."""
        raise NotImplementedError

    def score(self, model, examples: list[Example],
              candidates: list[list[str]]) -> tuple[dict[str, float], dict[str, Any]]:
        """Metric values, and JSON-able details kept as an artifact (e.g. recovered matrices)."""
        raise NotImplementedError
