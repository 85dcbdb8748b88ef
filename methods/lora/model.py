"""K routed LoRA adapters on one frozen ``transformers`` model: the reference core.

The module under LoRA-MCL (Multiple Choice Learning of Low-Rank Adapters, Letzelter et
al., 2025) and every LoRA baseline of the benchmark, written to be read top to bottom: the
fast paths the methods train and decode with live in :mod:`methods.lora.fast`, each tested
equal to this code (``tests/test_fast_paths.py``).

Every adapted ``nn.Linear`` carries K low-rank updates ``(A_k, B_k)``, stacked into one ``A``
of shape ``(K·r, in)`` and one ``B`` of shape ``(out, K·r)``. A batch of B sequences is laid
out as K·B rows (hypothesis-major) and each row is routed to its own hypothesis, so the K
hypotheses share **one** forward pass of the frozen base. The routing is a masked product:
every row computes ``x Aᵀ`` for all K·r directions, zeroes all but its own r and projects
back with ``B`` — exact, since the zeroed directions contribute exact zeros.

Which row belongs to which hypothesis is held by one :class:`HypothesisRouter` shared by
all layers. ``generate()`` expands rows with ``repeat_interleave`` (``num_beams``,
``num_return_sequences``) and only reorders beams *within* one input's block, so the
router expands its index the same way whenever it sees more rows than it was given.

Any ``transformers`` model works whose target layers are ``nn.Linear`` or ``Conv1D``
(GPT-2's transposed linear): decoder-only, encoder–decoder, and vision or speech encoders
with a text decoder, since only the batch's row dimension is routed. Hypothesis k can be
exported as a standard PEFT LoRA adapter folder (:meth:`MultiLoRAModel.export_peft`).
"""

from __future__ import annotations

import fnmatch
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn
from transformers import GenerationMixin
from transformers.modeling_outputs import BaseModelOutput
from transformers.pytorch_utils import Conv1D


@dataclass
class MultiLoRAConfig:
    num_hypotheses: int = 2
    rank: int = 4
    alpha: float = 8.0
    dropout: float = 0.0
    # Layer-name patterns (fnmatch, on the last name component or the full dotted name),
    # or "all-linear": every linear layer except the output head.
    target_modules: list[str] | str = field(default_factory=lambda: ["q_proj", "k_proj", "v_proj"])

    @property
    def scaling(self) -> float:
        return self.alpha / self.rank


def replace_module(root: nn.Module, name: str, module: nn.Module) -> nn.Module:
    """Put ``module`` at the dotted ``name`` inside ``root``; returns the one it replaced."""
    parent_name, _, leaf = name.rpartition(".")
    parent = root.get_submodule(parent_name) if parent_name else root
    old = getattr(parent, leaf)
    setattr(parent, leaf, module)
    return old


class HypothesisRouter:
    """Per-row hypothesis index, shared by every :class:`MultiLoRALinear` of one model."""

    def __init__(self, num_hypotheses: int, rank: int, scaling: float):
        self.num_hypotheses = num_hypotheses
        self.rank = rank
        self.scaling = scaling
        self.index: torch.Tensor | None = None
        self._mask_cache: tuple[tuple, torch.Tensor] | None = None

    def set_index(self, index: torch.Tensor) -> None:
        if index.min() < 0 or index.max() >= self.num_hypotheses:
            raise ValueError(f"hypothesis index out of range [0, {self.num_hypotheses})")
        self.index = index
        self._mask_cache = None

    def mask(self, x: torch.Tensor) -> torch.Tensor:
        """Keeps each row's own r low-rank directions, times the LoRA scaling.

        Shape ``(rows, 1, ..., 1, K·r)``, broadcasting over the middle dims of ``x``. One
        mask serves every layer of a forward pass (or decoding step): it is cached.
        """
        if self.index is None:
            raise RuntimeError(
                "no hypothesis selected: call the model through MultiLoRAModel."
                "forward_hypotheses / generate_hypotheses, or set router.set_index(...) first"
            )
        rows = x.shape[0]
        key = (rows, x.dim(), x.device, x.dtype)
        if self._mask_cache is not None and self._mask_cache[0] == key:
            return self._mask_cache[1]
        n = self.index.numel()
        if rows % n:
            raise RuntimeError(
                f"batch of {rows} rows does not expand the {n} routed rows; "
                "rows may only be repeated per input (num_beams / num_return_sequences)"
            )
        index = self.index.to(x.device).repeat_interleave(rows // n)
        mask = F.one_hot(index, self.num_hypotheses).to(x.dtype).repeat_interleave(self.rank, dim=1)
        mask = (mask * self.scaling).view(rows, *([1] * (x.dim() - 2)), -1)
        self._mask_cache = (key, mask)
        return mask


def linear_dims(module: nn.Module) -> tuple[int, int] | None:
    """``(in, out)`` of a layer LoRA can adapt, or None."""
    if isinstance(module, nn.Linear):
        return module.in_features, module.out_features
    if isinstance(module, Conv1D):  # weight stored (in, out)
        return module.weight.shape[0], module.nf
    return None


def stacked_lora_factors(base: nn.Module, blocks: int, rank: int) -> tuple[nn.Parameter, nn.Parameter]:
    """``A (blocks·r × in)`` and ``B (out × blocks·r)`` for ``blocks`` LoRA updates of ``base``.

    PEFT's default init for each block: A ~ kaiming-uniform(a=√5) over its r rows, B = 0,
    so every block starts as the base layer.
    """
    d_in, d_out = linear_dims(base)
    device = base.weight.device
    a = nn.Parameter(torch.empty(blocks * rank, d_in, device=device))
    for block in a.data.view(blocks, rank, -1):
        nn.init.kaiming_uniform_(block, a=math.sqrt(5))
    return a, nn.Parameter(torch.zeros(d_out, blocks * rank, device=device))


class MultiLoRALinear(nn.Module):
    """A frozen linear layer plus K LoRA updates, one per hypothesis, routed per row."""

    def __init__(self, base: nn.Module, cfg: MultiLoRAConfig, router: HypothesisRouter):
        super().__init__()
        self.base = base
        self.router = router
        self.lora_A, self.lora_B = stacked_lora_factors(base, cfg.num_hypotheses, cfg.rank)
        self.dropout = nn.Dropout(cfg.dropout) if cfg.dropout > 0 else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = self.lora_A, self.lora_B
        if a.dtype != x.dtype:  # e.g. bf16 activations, fp32 adapters
            a, b = a.to(x.dtype), b.to(x.dtype)
        out = self.base(x)
        return self.add_update(out, x if self.dropout is None else self.dropout(x), a, b)

    def add_update(self, out: torch.Tensor, x: torch.Tensor, a: torch.Tensor, b: torch.Tensor):
        """``out`` plus each row's own update: all K·r directions, the mask keeps the row's r
        (times the LoRA scaling)."""
        return out + F.linear(F.linear(x, a) * self.router.mask(x), b)


def find_targets(model: nn.Module, patterns: list[str] | str) -> list[str]:
    """Names of the layers to adapt; ``"all-linear"`` skips the output head."""
    layers = [n for n, m in model.named_modules() if linear_dims(m) is not None]
    if patterns == "all-linear":
        head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
        return [n for n in layers if model.get_submodule(n) is not head]
    if isinstance(patterns, str):
        patterns = [patterns]
    return [n for n in layers if any(fnmatch.fnmatchcase(n.rsplit(".", 1)[-1], p)
                                     or fnmatch.fnmatchcase(n, p) for p in patterns)]


def require_targets(model: nn.Module, patterns: list[str] | str) -> list[str]:
    """:func:`find_targets`, or ValueError naming the model's linear layers if none match."""
    found = find_targets(model, patterns)
    if not found:
        names = sorted({n.rsplit(".", 1)[-1] for n, m in model.named_modules() if linear_dims(m) is not None})
        raise ValueError(f"target_modules {patterns} match no linear layer of {type(model).__name__}; "
                         f"its linear layers are named: {', '.join(names)}")
    return found


class AdaptedModel(nn.Module):
    """A frozen ``transformers`` model whose target linears are replaced by
    :meth:`make_layer`'s adapted layers, laid out for K hypotheses routed by row (K = 1 for
    a single adapter): batched forward, per-sequence NLL, ``generate`` and save/load. The
    LoRA family's models differ only in their layer (and what they export)."""

    def __init__(self, base_model: nn.Module, cfg: MultiLoRAConfig):
        super().__init__()
        self.cfg = cfg
        self.base_model = base_model
        self.router = self.router_class(cfg.num_hypotheses, cfg.rank, cfg.scaling)
        for p in base_model.parameters():
            p.requires_grad_(False)
        self.target_names = require_targets(base_model, cfg.target_modules)
        for name in self.target_names:
            replace_module(base_model, name, self.make_layer(base_model.get_submodule(name)))

    config_class = MultiLoRAConfig
    router_class = HypothesisRouter

    def make_layer(self, base: nn.Module) -> nn.Module:
        """The adapted replacement of one target layer."""
        raise NotImplementedError

    @property
    def num_hypotheses(self) -> int:
        return self.cfg.num_hypotheses

    @property
    def is_encoder_decoder(self) -> bool:
        return bool(getattr(self.base_model.config, "is_encoder_decoder", False))

    def adapter_state_dict(self) -> dict[str, torch.Tensor]:
        return {n: p.detach().contiguous() for n, p in self.named_parameters() if "lora_" in n}

    def num_trainable_parameters(self) -> int:
        return sum(p.numel() for p in self.adapter_state_dict().values())

    # ----------------------------------------------------------------- batched hypotheses

    def _route_expanded(self, batch: dict) -> dict:
        """Repeat every input K times hypothesis-major and route row block k to hypothesis k."""
        tensors = [t for t in batch.values() if isinstance(t, torch.Tensor)]
        if "encoder_outputs" in batch:  # a given encoder output is repeated like any input
            tensors.append(batch["encoder_outputs"].last_hidden_state)
        rows = tensors[0].shape[0]
        k = self.num_hypotheses
        self.router.set_index(torch.arange(k).repeat_interleave(rows))
        batch = self._in_model_dtype(batch)
        if "encoder_outputs" in batch:
            hidden = batch["encoder_outputs"].last_hidden_state
            batch["encoder_outputs"] = BaseModelOutput(last_hidden_state=hidden.repeat(k, 1, 1))
        return {name: t.repeat(k, *([1] * (t.dim() - 1))) if isinstance(t, torch.Tensor) else t
                for name, t in batch.items()}

    def _in_model_dtype(self, batch: dict) -> dict:
        """Floating inputs (audio features, pixels) in the base's dtype: not every encoder casts
        them itself (Whisper's first convolution does not, ViT's embeddings do)."""
        dtype = getattr(self.base_model, "dtype", None)
        return {n: t.to(dtype) if isinstance(t, torch.Tensor) and t.is_floating_point() and dtype
                and dtype.is_floating_point else t for n, t in batch.items()}

    def forward_hypotheses(self, **batch: torch.Tensor) -> torch.Tensor:
        """Logits of every hypothesis in one forward: shape ``(K, B, T, V)``."""
        batch.pop("labels", None)  # the caller computes the loss of each hypothesis
        out = self.base_model(**self._route_expanded(batch))
        logits = out.logits
        return logits.view(self.num_hypotheses, -1, *logits.shape[1:])

    def forward(self, **batch: torch.Tensor) -> torch.Tensor:
        """``sequence_nll`` of ``batch``: the forward a ``DistributedDataParallel`` wrapper
        calls, so that its gradient hooks fire (see :func:`methods.lora.trainer.train_adapters`)."""
        return self.sequence_nll(batch)

    def sequence_nll(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Per-sequence NLL of every hypothesis, mean over target tokens: shape ``(K, B)``.

        ``labels`` follow the ``transformers`` convention (-100 = prompt or padding). For a
        decoder-only model the labels are aligned with ``input_ids`` and shifted here; for an
        encoder–decoder they are the decoder targets, and the decoder inputs are made from
        them as the model's own loss would.
        """
        inputs, targets, shift = self._teacher_forcing(batch)
        logits = self.forward_hypotheses(**inputs)
        if shift:
            logits = logits[:, :, :-1]
        labels = targets.unsqueeze(0).expand(logits.shape[0], *targets.shape)
        token_nll = F.cross_entropy(
            logits.flatten(0, -2).float(), labels.flatten(), ignore_index=-100, reduction="none"
        ).view(labels.shape)
        return token_nll.sum(-1) / (labels != -100).sum(-1)

    def _teacher_forcing(self, batch: dict[str, torch.Tensor]) -> tuple[dict, torch.Tensor, bool]:
        """``(model inputs, target labels, shift)``: ``shift`` when the logits at position t
        predict the label at t + 1 (a decoder-only model, whose labels are its inputs)."""
        labels = batch["labels"]
        inputs = {k: v for k, v in batch.items() if k != "labels"}
        if self.is_encoder_decoder and "decoder_input_ids" not in inputs:
            inputs["decoder_input_ids"] = self._decoder_inputs(labels)
        shift = not self.is_encoder_decoder
        targets = labels[:, 1:] if shift else labels
        if (targets == -100).all(-1).any():
            raise ValueError("a training sequence has no target token (all labels are -100)")
        return inputs, targets, shift

    def _decoder_inputs(self, labels: torch.Tensor) -> torch.Tensor:
        """Teacher-forcing decoder inputs: labels shifted right after the start token."""
        model = self.base_model
        if hasattr(model, "prepare_decoder_input_ids_from_labels"):
            return model.prepare_decoder_input_ids_from_labels(labels=labels)
        cfg = model.config
        start = getattr(cfg, "decoder_start_token_id", None)
        if start is None:
            raise ValueError(f"{type(model).__name__} has no decoder_start_token_id in its config")
        shifted = labels.new_full(labels.shape, start)
        shifted[:, 1:] = labels[:, :-1]
        return shifted.masked_fill(shifted == -100, cfg.pad_token_id)

    @torch.inference_mode()  # not just no_grad: no version counters or view tracking (3-5 % here)
    def generate_hypotheses(self, inputs: dict[str, torch.Tensor], **generate_kwargs) -> torch.Tensor:
        """All K hypotheses decode in one ``generate`` call: output shape ``(K, B·R, L)``.

        ``inputs`` are the model inputs of B examples (``input_ids``/``attention_mask``,
        ``input_features``, ``pixel_values``, ...); R = ``num_return_sequences``.
        """
        # The generic generate, not a model's override: Whisper's repeats every input
        # num_return_sequences times and keeps one beam of each, so N beams came back as N copies.
        out = GenerationMixin.generate(self.base_model, **self._route_expanded(inputs), **generate_kwargs)
        return out.view(self.num_hypotheses, -1, out.shape[-1])

    # ----------------------------------------------------------------------- save / load

    def save_adapters(self, directory: str | Path) -> None:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        save_file(self.adapter_state_dict(), str(directory / "adapters.safetensors"))
        (directory / "adapter_config.json").write_text(json.dumps(asdict(self.cfg), indent=2))

    def load_adapters(self, directory: str | Path) -> None:
        state = load_file(str(Path(directory) / "adapters.safetensors"))
        expected = set(self.adapter_state_dict())
        if set(state) != expected:
            raise ValueError(
                f"adapter file {directory} does not fit this model: "
                f"{len(set(state) ^ expected)} tensors differ in name"
            )
        self.load_state_dict(state, strict=False)

    @classmethod
    def from_saved(cls, base_model: nn.Module, directory: str | Path) -> AdaptedModel:
        cfg = cls.config_class(**json.loads((Path(directory) / "adapter_config.json").read_text()))
        model = cls(base_model, cfg)
        model.load_adapters(directory)
        return model


class MultiLoRAModel(AdaptedModel):
    """K routed LoRA adapters ("hypotheses"), each one exportable on its own."""

    def make_layer(self, base: nn.Module) -> nn.Module:
        return MultiLoRALinear(base, self.cfg, self.router)

    def hypothesis_state_dict(self, k: int) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        """``{layer name: (A_k (r, in), B_k (out, r))}`` of hypothesis k."""
        if not 0 <= k < self.num_hypotheses:
            raise ValueError(f"hypothesis {k} out of range [0, {self.num_hypotheses})")
        r = self.cfg.rank
        layers = {n: self.base_model.get_submodule(n) for n in self.target_names}
        return {n: (m.lora_A[k * r:(k + 1) * r].detach(), m.lora_B[:, k * r:(k + 1) * r].detach())
                for n, m in layers.items()}

    def single_hypothesis(self, k: int, base_model: nn.Module) -> MultiLoRAModel:
        """Hypothesis k alone (K = 1) on ``base_model``, a fresh copy of the base."""
        cfg = MultiLoRAConfig(1, self.cfg.rank, self.cfg.alpha, self.cfg.dropout,
                              self.cfg.target_modules)
        one = type(self)(base_model, cfg)
        with torch.no_grad():
            for name, (a, b) in self.hypothesis_state_dict(k).items():
                layer = one.base_model.get_submodule(name)
                layer.lora_A.copy_(a)
                layer.lora_B.copy_(b)
        return one.eval()

    def export_peft(self, k: int, directory: str | Path, base_model_name_or_path: str | None = None,
                    task_type: str | None = None) -> None:
        """Write hypothesis k as a PEFT LoRA adapter folder (``PeftModel.from_pretrained``)."""
        from peft import LoraConfig

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        weights = {}
        for name, (a, b) in self.hypothesis_state_dict(k).items():
            weights[f"base_model.model.{name}.lora_A.weight"] = a.contiguous()
            weights[f"base_model.model.{name}.lora_B.weight"] = b.contiguous()
        save_file(weights, str(directory / "adapter_model.safetensors"))
        conv1d = any(isinstance(self.base_model.get_submodule(n).base, Conv1D)
                     for n in self.target_names)
        name_or_path = base_model_name_or_path or getattr(self.base_model.config, "_name_or_path", None)
        LoraConfig(r=self.cfg.rank, lora_alpha=self.cfg.alpha, lora_dropout=self.cfg.dropout,
                   target_modules=list(self.target_names), fan_in_fan_out=conv1d,
                   base_model_name_or_path=name_or_path or None,
                   task_type=task_type).save_pretrained(str(directory))
