"""The method plugin interface: a trainer (optional) plus a decoder that yields N candidates."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from torch import nn

from harness.task import Example, Figure, MetricInfo, Task


@dataclass(frozen=True)
class Footprint:
    """What a cell of the method holds in memory, as ``mclbench estimate`` needs it
    (:mod:`harness.estimate`): the default is a method that trains nothing and decodes one
    sequence at a time."""

    trainable_params: int = 0  # parameters trained and kept in AdamW state (0: nothing trained)
    rows_per_input: int = 1  # sequences one training input occupies side by side (K for LoRA-MCL)
    micro_batch: int = 0  # training inputs per forward and backward
    gradient_checkpointing: bool = False
    decode_rows: int = 1  # sequences decoded side by side (inputs per batch × rows per input)


class Method:
    """Base class of method plugins; register subclasses with ``@register_method(name)``."""

    name: ClassVar[str]
    Config: ClassVar[type]
    version: ClassVar[str] = "1"  # bump when training or decoding change, to invalidate caches
    # Figures of the method's own (e.g. its training log, see harness.task.Figure), and the
    # task figures it appears in as a row: {figure name: row title}.
    figures: ClassVar[tuple[Figure, ...]] = ()
    figure_rows: ClassVar[dict[str, str]] = {}
    # what the method spends, reported beside the task's metrics (reference values, not
    # ranked): {column: its MetricInfo}; :meth:`cost` gives the values
    cost_metrics: ClassVar[dict[str, MetricInfo]] = {}

    def __init__(self, config):
        self.config = config

    def not_applicable(self, task: Task) -> str | None:
        """Why this method cannot run on ``task`` (e.g. image augmentation on a text task),
        or None. The run skips such cells and says so; a run left with none is an error."""
        return None

    def fill_defaults(self, task: Task) -> None:
        """Fill settings the user left unset from the task's defaults (before keys are made)."""

    def check_backbone(self, skeleton: nn.Module) -> None:
        """Raise ValueError (one line: what and what to do) if the method cannot work on this
        backbone (``Task.backbone_skeleton``: modules on the meta device, no weights)."""

    def train_code(self) -> tuple:
        """The classes (or modules) whose source determines training, for the train key
        (:func:`harness.fingerprint.code_fingerprint`). Decoders that share a trained
        state must name the same ones, so that they share its artifact."""
        return (type(self),)

    def train_spec(self) -> dict[str, Any] | None:
        """What determines the trained state (its cache key), or None if nothing is trained.

        Methods that differ only in decoding return the same spec and share one artifact.
        """
        return None

    def train(self, backbone: nn.Module, task: Task, seed: int, out_dir: Path,
              work_dir: Path, accelerator=None) -> None:
        """Train and write the state into ``out_dir``; ``work_dir`` survives interruptions.

        ``accelerator``: an ``accelerate.Accelerator`` when the stage runs in several
        processes (``mclbench run --processes N``); every process calls this, the main one
        writes."""
        raise NotImplementedError

    def load(self, backbone: nn.Module, train_dir: Path | None) -> nn.Module:
        """The model to decode and score with (the backbone plus the trained state)."""
        raise NotImplementedError

    def decode_spec(self) -> dict[str, Any]:
        """What determines decoding, beyond the trained state (its cache key)."""
        raise NotImplementedError

    def decode(self, model: nn.Module, task: Task, examples: list[Example],
               seed: int) -> list[list[str]]:
        """N candidates per example."""
        raise NotImplementedError

    def with_candidates(self, n: int) -> Method | None:
        """This method set to return at least ``n`` candidates per input, best first (for
        best-of-N curves: the first n' of them are its n'-candidate answer), or None when
        its N is fixed (greedy decoding)."""
        return None

    def cost(self, model: nn.Module, task: Task) -> dict[str, float]:
        """Values of :attr:`cost_metrics` (what the method spends), where it knows them."""
        return {}

    def footprint(self, skeleton: nn.Module) -> Footprint:
        """Its cells' memory needs on this backbone (``Task.backbone_skeleton``: modules on the
        meta device) for ``mclbench estimate``."""
        return Footprint()
