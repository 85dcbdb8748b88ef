"""The LoRA method base shared by LoRA-MCL and every LoRA baseline: adapter and trainer
settings, training through :func:`methods.lora.trainer.train_adapters`, loading, batched
decoding helpers and costs. A subclass chooses K, the objective and the decoder."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch

from harness.devices import in_batches
from harness.method import Footprint, Method
from harness.task import MetricInfo, Task
from methods.lora.fast import FastMultiLoRAModel
from methods.lora.model import MultiLoRAConfig, MultiLoRAModel, require_targets
from methods.lora.trainer import TrainSettings, train_adapters


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
    decode_batch_size: int = 64  # halved and retried when a batch runs out of memory
    gradient_checkpointing: bool = False  # recompute the base's activations in the backward
    eval_every: int = 0  # validation NLL every this many steps, where the task has a validation set

    def validate(self) -> None:
        if self.rank < 1 or self.alpha <= 0 or not 0 <= self.dropout < 1:
            raise ValueError("need rank >= 1, alpha > 0 and 0 <= dropout < 1")
        if self.grad_accum_steps < 1 or self.decode_batch_size < 1 or self.eval_every < 0:
            raise ValueError("need grad_accum_steps >= 1, decode_batch_size >= 1 and eval_every >= 0")
        for key in ("steps", "batch_size", "lr"):
            value = getattr(self, key)
            if value is not None and not value > 0:
                raise ValueError(f"{key} must be > 0, got {value!r}")


def target_patterns(targets: str | list[str]) -> str | list[str]:
    """``"all-linear"`` stays a string; a list of name patterns is copied."""
    return targets if isinstance(targets, str) else list(targets)


class LoRAMethod(Method):
    """One trainer for all LoRA methods: subclasses choose K, the objective and the decoder."""

    @property
    def num_hypotheses(self) -> int:
        """K: the adapters trained side by side (1 for LoRA-MLE)."""
        return 1

    model_class = FastMultiLoRAModel  # the reference core plus its fast paths (methods.lora.fast)
    cost_metrics = {
        "trainable_params": MetricInfo(None, "trainable parameters of the method's adapter(s)"),
        "decode_forward_passes": MetricInfo(None, "decoding budget: sequences decoded side by side "
                                            "per input × new tokens (K·b for LoRA-MCL, N otherwise)"),
    }

    def objective(self, nll: torch.Tensor, step: int, model: MultiLoRAModel) -> torch.Tensor:
        return nll.mean()  # maximum likelihood

    def objective_spec(self) -> dict:
        return {"loss": "mle"}

    def fill_defaults(self, task: Task) -> None:
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
        return MultiLoRAConfig(num_hypotheses=self.num_hypotheses, rank=c.rank, alpha=c.alpha,
                               dropout=c.dropout, target_modules=target_patterns(c.target_modules))

    def train_settings(self) -> TrainSettings:
        c = self.config
        return TrainSettings(steps=c.steps, batch_size=c.batch_size, lr=c.lr, weight_decay=c.weight_decay,
                             grad_accum_steps=c.grad_accum_steps, eval_every=c.eval_every)

    def train_spec(self) -> dict:
        settings = asdict(self.train_settings())
        for key, default in (("grad_accum_steps", 1), ("eval_every", 0)):
            if settings[key] == default:  # the keys of runs made before it existed
                del settings[key]
        return {"trainer": "lora", "adapter": asdict(self.adapter_config()),
                "objective": self.objective_spec(), "settings": settings}

    def train(self, backbone, task, seed, out_dir, work_dir, accelerator=None) -> None:
        torch.manual_seed(seed)  # adapter initialisation: the same in every process
        if self.config.gradient_checkpointing:  # less memory, same numbers: not in the train key
            if not getattr(backbone, "supports_gradient_checkpointing", False):
                raise ValueError(f"method {self.name!r}: gradient_checkpointing is set but "
                                 f"{type(backbone).__name__} does not support it; unset it")
            if hasattr(backbone, "activation_checkpointing_enable"):  # transformers >= 5.2's name
                backbone.activation_checkpointing_enable({"use_reentrant": False})
            else:
                backbone.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model = self.model_class(backbone, self.adapter_config())
        history = train_adapters(model, task.training_set(), self.train_settings(),
                                 lambda nll, step: self.objective(nll, step, model), seed,
                                 work_dir, desc=f"train {self.name}", accelerator=accelerator,
                                 validation=task.validation_set() if self.config.eval_every else None)
        if accelerator is None or accelerator.is_main_process:
            model.save_adapters(out_dir)
            (Path(out_dir) / "train_log.json").write_text(json.dumps(history))

    def load(self, backbone, train_dir) -> MultiLoRAModel:
        model = self.model_class.from_saved(backbone, train_dir)
        model.eval()
        return model

    def decode(self, model, task, examples, seed) -> list[list[str]]:
        device = next(model.parameters()).device

        def decode_chunk(chunk):
            prompt = {k: v.to(device) for k, v in task.prompt_batch(chunk).items()}
            return self.decode_batch(model, task, chunk, prompt, seed)

        # a batch that runs out of memory is retried at half the size
        return in_batches(examples, self.config.decode_batch_size, decode_chunk, f"decode {self.name}")

    def decode_batch(self, model, task, examples, prompt, seed) -> list[list[str]]:
        raise NotImplementedError

    def decode_rows(self) -> int:
        """Sequences decoded side by side per input (the decoding budget's width)."""
        raise NotImplementedError

    def footprint(self, skeleton) -> Footprint:
        c = self.config
        trained = self.train_spec() is not None  # decoders of a shared adapter train it too
        params = self.model_class(skeleton, self.adapter_config()).num_trainable_parameters() \
            if trained else 0
        return Footprint(trainable_params=params, rows_per_input=self.num_hypotheses,
                         micro_batch=c.batch_size // c.grad_accum_steps,
                         gradient_checkpointing=c.gradient_checkpointing,
                         decode_rows=c.decode_batch_size * self.decode_rows())

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
    def generate_rows(model, task, rows, prompt, n: int, **kwargs) -> list[list[str]]:
        """Greedy decoding of ``rows`` (``prompt`` with each input repeated n times, perhaps
        altered per row: augmented media, a sampler per row), grouped per input."""
        seqs = model.generate_hypotheses(rows, num_beams=1, do_sample=False,
                                         **task.generation_kwargs(), **kwargs)[0]
        return LoRAMethod.split_per_input(task, prompt, seqs, n)

    @staticmethod
    def repeat_rows(prompt: dict, n: int) -> dict:
        """``prompt`` with each input repeated n times, consecutively."""
        return {k: v.repeat_interleave(n, 0) for k, v in prompt.items()}

    @staticmethod
    def split_per_input(task, prompt, seqs, n: int) -> list[list[str]]:
        """Texts of ``seqs`` (n consecutive rows per input of ``prompt``), grouped per input."""
        texts = task.decode_outputs(LoRAMethod.repeat_rows(prompt, n), seqs)
        return [texts[i * n:(i + 1) * n] for i in range(len(texts) // n)]
