"""The task plugin interface.

A task owns its data, its default backbone and its metrics. Methods see it only through
the hooks below, so a method works on every task whose backbone it can wrap.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from harness.probes import HypothesisModel, reference_nll


@dataclass(frozen=True)
class MetricInfo:
    """A metric a task computes itself (:meth:`Task.score`): its direction (None: a reference
    level such as a bound, never ranked), what it measures, its tokenisation (None: not text)."""

    higher_is_better: bool | None
    description: str
    tokenisation: str | None = None


@dataclass
class Example:
    """One test input: ``source`` is text, an image, audio or token ids; ``modes``, where the
    data gives them: a mode label (or None) per reference (``modes_covered``, ``mode_recall``)."""

    id: str
    source: Any
    references: list[str]
    modes: list[str | None] | None = None


@dataclass(frozen=True)
class Figure:
    """A figure a task or method declares, drawn by :mod:`harness.plots` from the run folder.

    ``kind``:

    - ``"shares"`` (declared by a method): a list-valued series of the method's training log
      (``train_log.json``), normalised per step and stacked, one panel per seed;
      ``options``: ``series``, ``ylabel``, ``label`` (of one component), ``title``;
    - ``"matrices"`` (declared by a task): a reference set of matrices and, per method that
      lists the figure in its ``Method.figure_rows``, the matrices it found, all read from
      the cells' ``details.json``; ``options``: ``reference`` / ``found`` / ``matching``
      (keys in details), ``reference_title``, ``reference_label``, ``title``;
    - ``"bars"`` (declared by a task): per method, bars of the seed mean of each metric in
      ``options["metrics"]`` from the scores; ``options``: ``metrics``, ``labels`` (metric:
      legend text), ``ylabel``, ``title``.
    """

    name: str
    kind: str
    options: dict[str, Any]


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


class Task:
    """Base class of task plugins; register subclasses with ``@register_task(name)``."""

    name: ClassVar[str]
    Config: ClassVar[type]
    version: ClassVar[str] = "1"  # bump when data or scoring change, to invalidate caches
    # Defaults for trainer settings a method leaves unset (steps, batch_size, lr, target_modules).
    training_defaults: ClassVar[dict[str, Any]] = {}
    # Metrics the task computes itself in ``score`` (from its probes), by name: what they are.
    own_metrics: ClassVar[dict[str, MetricInfo]] = {}
    # Reported names that also get a 95 % bootstrap interval over test inputs in the leaderboard
    # (they must decompose over inputs: see docs/metrics.md).
    bootstrap_metrics: ClassVar[tuple[str, ...]] = ()
    # The quality metric of best-of-N curves (its ``max@n/``, n = 1..best_of_n), or None: no curve.
    best_of_n_metric: ClassVar[str | None] = None
    # (quality, diversity) metrics of the quality–diversity plot, or None: no such plot.
    quality_diversity: ClassVar[tuple[str, str] | None] = None
    # Further figures drawn from the cells' details (see Figure).
    figures: ClassVar[tuple[Figure, ...]] = ()
    # What the model reads: "text" (token ids), "image" (``pixel_values``) or "audio"
    # (``input_features``); methods that transform inputs (test-time augmentation) read it.
    input_modality: ClassVar[str] = "text"

    def __init__(self, config):
        self.config = config

    # data
    def data_fingerprint(self) -> str:
        raise NotImplementedError

    def training_set(self) -> TrainingSet:
        raise NotImplementedError

    def test_examples(self) -> list[Example]:
        raise NotImplementedError

    def validation_set(self) -> TrainingSet | None:
        """Held-out training rows whose NLL a trainer may track (``eval_every``); None: none."""
        return None

    # backbone
    def backbone_spec(self, seed: int) -> dict[str, Any]:
        """Everything that determines the backbone (its cache key)."""
        raise NotImplementedError

    def build_backbone(self, seed: int) -> nn.Module:
        raise NotImplementedError

    def load_backbone(self, directory) -> nn.Module:
        raise NotImplementedError

    def check_environment(self) -> None:
        """Raise ValueError (one line) if this machine cannot run the task as configured
        (called before a run starts)."""

    def backbone_skeleton(self, seed: int) -> nn.Module | None:
        """The backbone's modules without weights (on the meta device), so that settings
        such as LoRA target names are checked before any stage runs; None: not known
        before the backbone stage (the check then happens when it is built)."""
        return None

    # decoding
    def prompt_batch(self, examples: list[Example]) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def generation_kwargs(self) -> dict[str, Any]:
        return {}

    def decode_outputs(self, prompt: dict[str, torch.Tensor], sequences: torch.Tensor) -> list[str]:
        raise NotImplementedError

    # scoring
    def metric_names(self) -> list[str]:
        """The registered metrics the task reports (:mod:`harness.metrics.registry`), in column
        order: a quality metric by its base name (every reduction) or one reduction
        (``max/bleu``), a set metric by name. The engine computes them; the probe metrics
        (oracle / top-1 NLL) are added wherever the probes allow."""
        return []

    def mode_labels(self, examples: list[Example],
                    candidates: list[list[str]]) -> tuple[list, list | None] | None:
        """``(reference_modes, candidate_modes or None)`` for the mode-coverage metrics: by
        default the examples' ``modes`` where every example has them, else None."""
        if examples and all(e.modes is not None for e in examples):
            return [e.modes for e in examples], None
        return None

    @property
    def tokenize(self) -> str:
        """sacreBLEU's tokenisation of the task's BLEU-based metrics: its config's
        ``tokenize`` where it has one, else 13a (the significance and bootstrap stages
        recompute those metrics per input with it)."""
        return getattr(self.config, "tokenize", "13a")

    def notes(self) -> list[str]:
        """Lines for the table footer that a reader needs to reproduce the scores (the
        registered metrics' signatures are added by the engine)."""
        return []

    def reference_set(self, examples: list[Example]) -> tuple[TrainingSet, list[int]] | None:
        """Every (input, reference) pair of ``examples`` as training rows (labels on the
        reference) and the index of each row's input — what ``oracle_nll`` scores; None:
        the task has no reference likelihood."""
        return None

    def probe(self, model, examples: list[Example]) -> dict[str, np.ndarray]:
        """What scoring needs of the model besides the candidates, measured once right after
        decoding and kept with the candidates: ``{name: array}``. By default every
        hypothesis's NLL of every reference (for ``oracle_nll`` / ``top1_nll``) where the
        model follows :class:`harness.probes.HypothesisModel` and the task has
        :meth:`reference_set`; a task adds its own (call this one too)."""
        pairs = self.reference_set(examples) if isinstance(model, HypothesisModel) else None
        return {} if pairs is None else reference_nll(model, *pairs)

    def score(self, examples: list[Example], candidates: list[list[str]],
              probes: dict[str, np.ndarray]) -> tuple[dict[str, float], dict[str, Any]]:
        """The task's own metrics (``own_metrics``), and JSON-able details kept as an artifact
        (e.g. recovered matrices): a pure function of the candidates, the references and the
        probes (no model). The registered metrics are the engine's (``metric_names``)."""
        return {}, {}
