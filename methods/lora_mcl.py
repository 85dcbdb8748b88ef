"""LoRA-MCL: K LoRA adapters on one frozen model, trained with a winner-takes-all loss.

Multiple Choice Learning of Low-Rank Adapters (Letzelter et al., 2025). Every adapted
``nn.Linear`` carries K low-rank updates ``(A_k, B_k)``. A batch of B sequences is laid out
as K·B rows (hypothesis-major) and each row is routed to its own hypothesis, so the K
hypotheses share **one** forward pass of the frozen base.

How the routing works: the K rank-r factors are stacked into one ``A`` of shape
``(K·r, in)`` and one ``B`` of shape ``(out, K·r)``. A row that belongs to hypothesis k
computes ``x Aᵀ`` for all K·r directions, zeroes all but its own r, and projects back with
``B``. That is two dense matmuls (the cost of one rank-K·r LoRA) instead of a gather or a
Python loop, and it is exactly hypothesis k's ``x A_kᵀ B_kᵀ`` because the zeroed
directions contribute exact zeros.

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
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Literal

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn
from transformers import GenerationMixin
from transformers.pytorch_utils import Conv1D

from harness.method import Method
from harness.progress import progress
from harness.registry import register_method
from harness.task import Task
from harness.training import TrainSettings, train_adapters

# --------------------------------------------------------------------------- the module


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
        h = F.linear(x if self.dropout is None else self.dropout(x), a)
        # decoding runs this once per layer per token: the mask carries the scaling too
        return self.base(x) + F.linear(h * self.router.mask(x), b)


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


class MultiLoRAModel(nn.Module):
    """A frozen ``transformers`` model whose target linears carry K routed LoRA adapters."""

    def __init__(self, base_model: nn.Module, cfg: MultiLoRAConfig):
        super().__init__()
        self.cfg = cfg
        self.base_model = base_model
        self.router = HypothesisRouter(cfg.num_hypotheses, cfg.rank, cfg.scaling)
        for p in base_model.parameters():
            p.requires_grad_(False)
        self.target_names = require_targets(base_model, cfg.target_modules)
        for name in self.target_names:
            parent_name, _, leaf = name.rpartition(".")
            parent = base_model.get_submodule(parent_name) if parent_name else base_model
            setattr(parent, leaf, self.make_layer(getattr(parent, leaf)))

    config_class = MultiLoRAConfig

    def make_layer(self, base: nn.Module) -> nn.Module:
        """The adapted replacement of one target layer."""
        return MultiLoRALinear(base, self.cfg, self.router)

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
        """Repeat every tensor K times hypothesis-major and route row block k to hypothesis k."""
        tensors = [t for t in batch.values() if isinstance(t, torch.Tensor)]
        rows = tensors[0].shape[0]
        k = self.num_hypotheses
        self.router.set_index(torch.arange(k).repeat_interleave(rows))
        return {name: t.repeat(k, *([1] * (t.dim() - 1))) if isinstance(t, torch.Tensor) else t
                for name, t in batch.items()}

    def forward_hypotheses(self, **batch: torch.Tensor) -> torch.Tensor:
        """Logits of every hypothesis in one forward: shape ``(K, B, T, V)``."""
        batch.pop("labels", None)  # the caller computes the loss of each hypothesis
        out = self.base_model(**self._route_expanded(batch))
        logits = out.logits
        return logits.view(self.num_hypotheses, -1, *logits.shape[1:])

    def forward(self, **batch: torch.Tensor) -> torch.Tensor:
        """``sequence_nll`` of ``batch``: the forward a ``DistributedDataParallel`` wrapper
        calls, so that its gradient hooks fire (see :func:`harness.training.train_adapters`)."""
        return self.sequence_nll(batch)

    def sequence_nll(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Per-sequence NLL of every hypothesis, mean over target tokens: shape ``(K, B)``.

        ``labels`` follow the ``transformers`` convention (-100 = prompt or padding). For a
        decoder-only model the labels are aligned with ``input_ids`` and shifted here; for an
        encoder–decoder they are the decoder targets, and the decoder inputs are made from
        them as the model's own loss would.
        """
        labels = batch["labels"]
        inputs = {k: v for k, v in batch.items() if k != "labels"}
        if self.is_encoder_decoder and "decoder_input_ids" not in inputs:
            inputs["decoder_input_ids"] = self._decoder_inputs(labels)
        logits = self.forward_hypotheses(**inputs)
        if not self.is_encoder_decoder:
            logits, labels = logits[:, :, :-1], labels[:, 1:]
        labels = labels.unsqueeze(0).expand(logits.shape[0], *labels.shape)
        token_nll = F.cross_entropy(
            logits.flatten(0, -2).float(), labels.flatten(), ignore_index=-100, reduction="none"
        ).view(labels.shape)
        counts = (labels != -100).sum(-1)
        if (counts == 0).any():
            raise ValueError("a training sequence has no target token (all labels are -100)")
        return token_nll.sum(-1) / counts

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

    @torch.no_grad()
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
    def from_saved(cls, base_model: nn.Module, directory: str | Path) -> MultiLoRAModel:
        cfg = cls.config_class(**json.loads((Path(directory) / "adapter_config.json").read_text()))
        model = cls(base_model, cfg)
        model.load_adapters(directory)
        return model

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
        one = MultiLoRAModel(base_model, cfg)
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


# --------------------------------------------------------------------------- the losses


def wta_loss(nll: torch.Tensor) -> torch.Tensor:
    """Winner-takes-all: ``mean_b min_k nll[k, b]``; only each sequence's best hypothesis learns."""
    return nll.min(dim=0).values.mean()


def relaxed_wta_loss(nll: torch.Tensor, epsilon: float) -> torch.Tensor:
    """Winner weighted ``1 - ε``, every other hypothesis ``ε / (K - 1)``."""
    k = nll.shape[0]
    if k == 1:
        return nll.mean()
    weights = torch.full_like(nll, epsilon / (k - 1))
    weights.scatter_(0, nll.argmin(dim=0, keepdim=True), 1.0 - epsilon)
    return (weights * nll).sum(0).mean()


def annealed_wta_loss(nll: torch.Tensor, temperature: float) -> torch.Tensor:
    """Weights ``softmax(-nll / T)`` over hypotheses, with no gradient through the weights."""
    weights = torch.softmax(-nll.detach() / temperature, dim=0)
    return (weights * nll).sum(0).mean()


def annealing_temperature(step: int, t0: float, t_final: float, rho: float) -> float:
    """``T = t_final + (t0 - t_final) · rho^step``."""
    return t_final + (t0 - t_final) * rho**step


def mcl_loss(nll: torch.Tensor, loss: str, step: int, epsilon: float = 0.05,
             t0: float = 1.0, t_final: float = 1e-3, rho: float = 0.995) -> torch.Tensor:
    """The configured MCL objective at a training step (``nll`` has shape ``(K, B)``)."""
    if loss == "wta":
        return wta_loss(nll)
    if loss == "relaxed":
        return relaxed_wta_loss(nll, epsilon)
    if loss == "annealed":
        temperature = annealing_temperature(step, t0, t_final, rho)
        # Once the temperature has reached its floor the softmax is the hard argmin anyway.
        return wta_loss(nll) if temperature <= t_final else annealed_wta_loss(nll, temperature)
    raise ValueError(f"unknown loss {loss!r}; expected wta, relaxed or annealed")


# --------------------------------------------------------------------------- the plugins


@dataclass
class LoRATrainConfig:
    """Adapter and trainer settings shared by every LoRA method (None = the task's default)."""

    rank: int = 4
    alpha: float = 8.0
    dropout: float = 0.0
    target_modules: list[str] | str | None = None  # patterns or "all-linear"
    steps: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    weight_decay: float = 0.0
    grad_accum_steps: int = 1  # split each step's batch into this many micro-batches
    decode_batch_size: int = 64

    def validate(self) -> None:
        if self.rank < 1 or self.alpha <= 0 or not 0 <= self.dropout < 1:
            raise ValueError("need rank >= 1, alpha > 0 and 0 <= dropout < 1")
        if self.grad_accum_steps < 1 or self.decode_batch_size < 1:
            raise ValueError("need grad_accum_steps >= 1 and decode_batch_size >= 1")
        for key in ("steps", "batch_size", "lr"):
            value = getattr(self, key)
            if value is not None and not value > 0:
                raise ValueError(f"{key} must be > 0, got {value!r}")


def target_patterns(targets: str | list[str]) -> str | list[str]:
    """``"all-linear"`` stays a string; a list of name patterns is copied."""
    return targets if isinstance(targets, str) else list(targets)


class LoRAMethod(Method):
    """One trainer for all LoRA methods: subclasses choose K, the objective and the decoder."""

    def num_hypotheses(self) -> int:
        return 1

    model_class = MultiLoRAModel

    def objective(self, nll: torch.Tensor, step: int, model: MultiLoRAModel) -> torch.Tensor:
        return nll.mean()  # maximum likelihood

    def objective_spec(self) -> dict:
        return {"loss": "mle"}

    def resolve(self, task: Task) -> None:
        for key in ("steps", "batch_size", "lr", "target_modules"):
            if getattr(self.config, key) is None:
                if key not in task.training_defaults:
                    raise ValueError(
                        f"method {self.name!r}: set method.{key}; task {task.name!r} has no default"
                    )
                setattr(self.config, key, task.training_defaults[key])
        if self.config.batch_size % self.config.grad_accum_steps:
            raise ValueError(f"method {self.name!r}: batch_size {self.config.batch_size} is not a "
                             f"multiple of grad_accum_steps {self.config.grad_accum_steps}")

    def train_code(self) -> tuple:
        # the classes that define the objective and the adapted model: not the decoder's
        # module, so that every decoder of the LoRA-MLE adapter shares one train artifact
        mro = type(self).__mro__
        return tuple(dict.fromkeys(next(c for c in mro if name in vars(c))
                                   for name in ("objective", "model_class", "train")))

    def check_backbone(self, skeleton) -> None:
        try:
            require_targets(skeleton, target_patterns(self.config.target_modules))
        except ValueError as exc:
            raise ValueError(f"method {self.name!r}: {exc}") from None

    def adapter_config(self) -> MultiLoRAConfig:
        c = self.config
        return MultiLoRAConfig(num_hypotheses=self.num_hypotheses(), rank=c.rank, alpha=c.alpha,
                               dropout=c.dropout, target_modules=target_patterns(c.target_modules))

    def train_settings(self) -> TrainSettings:
        c = self.config
        return TrainSettings(steps=c.steps, batch_size=c.batch_size, lr=c.lr,
                             weight_decay=c.weight_decay, grad_accum_steps=c.grad_accum_steps)

    def train_spec(self) -> dict:
        settings = asdict(self.train_settings())
        if settings["grad_accum_steps"] == 1:  # the keys of runs made before it existed
            del settings["grad_accum_steps"]
        return {"trainer": "lora", "adapter": asdict(self.adapter_config()),
                "objective": self.objective_spec(), "settings": settings}

    def train(self, backbone, task, seed, out_dir, work_dir, accelerator=None) -> None:
        torch.manual_seed(seed)  # adapter initialisation: the same in every process
        model = self.model_class(backbone, self.adapter_config())
        history = train_adapters(model, task.training_set(), self.train_settings(),
                                 lambda nll, step: self.objective(nll, step, model), seed,
                                 work_dir, desc=f"train {self.name}", accelerator=accelerator)
        if accelerator is None or accelerator.is_main_process:
            model.save_adapters(out_dir)
            (Path(out_dir) / "train_log.json").write_text(json.dumps(history))

    def load(self, backbone, train_dir) -> MultiLoRAModel:
        model = self.model_class.from_saved(backbone, train_dir)
        model.eval()
        return model

    def decode(self, model, task, examples, seed) -> list[list[str]]:
        out: list[list[str]] = []
        size = self.config.decode_batch_size
        for i in progress(range(0, len(examples), size), desc=f"decode {self.name}", unit="batch"):
            chunk = examples[i:i + size]
            out.extend(self.decode_batch(model, task, chunk, task.prompt_batch(chunk), seed))
        return out

    def decode_batch(self, model, task, examples, prompt, seed) -> list[list[str]]:
        raise NotImplementedError

    def decode_rows(self) -> int:
        """Sequences decoded side by side per input (the decoding budget's width)."""
        raise NotImplementedError

    def with_candidates(self, n: int) -> LoRAMethod | None:
        if not hasattr(self.config, "num_candidates"):
            return None
        return type(self)(replace(self.config, num_candidates=n))

    def cost(self, model, task) -> dict[str, float]:
        steps = task.generation_kwargs().get("max_new_tokens", 0)
        return {"trainable_params": float(model.num_trainable_parameters()),
                "decode_forward_passes": float(self.decode_rows() * steps)}

    @staticmethod
    def generate_n(model, task, prompt, n: int, **kwargs) -> list[list[str]]:
        """N candidates per input from the (single) adapter, in one ``generate`` call."""
        seqs = model.generate_hypotheses(prompt, num_return_sequences=n,
                                         **task.generation_kwargs(), **kwargs)[0]
        return LoRAMethod.split_per_input(task, prompt, seqs, n)

    @staticmethod
    def split_per_input(task, prompt, seqs, n: int) -> list[list[str]]:
        """Texts of ``seqs`` (n consecutive rows per input of ``prompt``), grouped per input."""
        texts = task.decode_outputs({k: v.repeat_interleave(n, 0) for k, v in prompt.items()}, seqs)
        return [texts[i * n:(i + 1) * n] for i in range(len(texts) // n)]


@dataclass
class LoRAMCLConfig(LoRATrainConfig):
    num_hypotheses: int = 2
    # Annealed by default: with B = 0 at init every hypothesis ties on every sequence, so
    # hard WTA sends the whole first gradient to one hypothesis; whether the others ever win
    # then depends on the run (results/markov/loss_wta recovered; a hidden-64 prototype
    # collapsed onto one hypothesis). Annealing does not rely on that.
    loss: Literal["wta", "relaxed", "annealed"] = "annealed"
    epsilon: float = 0.05
    t0: float = 1.0
    t_final: float = 1e-3
    rho: float = 0.99
    num_beams: int = 1  # beam width b of each hypothesis
    num_return: int = 1  # beams each hypothesis returns: N = K·num_return candidates

    def validate(self) -> None:
        super().validate()
        if self.num_hypotheses < 1 or self.num_beams < 1:
            raise ValueError("need num_hypotheses >= 1 and num_beams >= 1")
        if not 1 <= self.num_return <= self.num_beams:
            raise ValueError("need 1 <= num_return <= num_beams (each hypothesis returns its best beams)")
        if not 0 <= self.epsilon < 1 or self.t0 <= 0 or self.t_final <= 0 or not 0 < self.rho <= 1:
            raise ValueError("need 0 <= epsilon < 1, t0 > 0, t_final > 0 and 0 < rho <= 1")


@register_method("lora_mcl")
class LoRAMCL(LoRAMethod):
    """K LoRA hypotheses trained with winner-takes-all; each decodes one candidate (N = K)
    or, with ``num_return`` r, its r best beams (N = K·r)."""

    Config = LoRAMCLConfig

    def num_hypotheses(self) -> int:
        return self.config.num_hypotheses

    def objective(self, nll, step, model):
        c = self.config
        return mcl_loss(nll, c.loss, step, c.epsilon, c.t0, c.t_final, c.rho)

    def objective_spec(self) -> dict:
        c = self.config
        spec = {"loss": c.loss}
        if c.loss == "relaxed":
            spec["epsilon"] = c.epsilon
        if c.loss == "annealed":
            spec.update(t0=c.t0, t_final=c.t_final, rho=c.rho)
        return spec

    def decode_spec(self) -> dict:
        spec = {"decoder": "per_hypothesis_beam", "num_beams": self.config.num_beams}
        if self.config.num_return > 1:
            spec["num_return"] = self.config.num_return
        return spec

    def decode_rows(self) -> int:
        return self.config.num_hypotheses * self.config.num_beams

    def with_candidates(self, n: int) -> LoRAMCL:
        c = self.config
        r = -(-n // c.num_hypotheses)  # ceil: N = K·r >= n
        return LoRAMCL(replace(c, num_return=r, num_beams=max(c.num_beams, r)))

    def decode_batch(self, model, task, examples, prompt, seed):
        r = self.config.num_return
        seqs = model.generate_hypotheses(prompt, num_beams=self.config.num_beams, num_return_sequences=r,
                                         do_sample=False, **task.generation_kwargs())
        repeated = {k: v.repeat_interleave(r, 0) for k, v in prompt.items()}
        texts = [task.decode_outputs(repeated, seqs[k]) for k in range(seqs.shape[0])]
        # rank-major: every hypothesis's best beam first, so the first K are the K-candidate answer
        return [[texts[k][i * r + j] for j in range(r) for k in range(len(texts))]
                for i in range(len(examples))]
