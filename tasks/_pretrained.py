"""The pretrained-backbone task family: tasks whose backbone is a ``transformers`` checkpoint
(the committed offline base, that base rebuilt by its recipe, a packaged base, the user's
folder or hub id). Its base class :class:`PretrainedTask`, the settings its configs share
(:class:`PretrainedConfig`), a checkpoint's cache identity (content hash, hub revision) and
quantised loading. Not a plugin (the leading underscore keeps it out of discovery): the
translation and captioning tasks build on it.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

import torch
from torch import nn

from harness.devices import DTYPES
from harness.hashing import memoised_file_sha256
from harness.task import Task


def checkpoint_spec(source: str) -> dict[str, str]:
    """A backbone's cache identity: a local checkpoint by its files' content (a retrained
    checkpoint at the same path is a new backbone), a hub checkpoint by its name and the
    revision it resolves to."""
    folder = Path(source).expanduser()
    if not folder.is_dir():
        return {"hub": source, "revision": hub_revision(source)}
    h = hashlib.sha256()
    for f in sorted(p for p in folder.rglob("*") if p.is_file() and ".cache" not in p.parts):
        h.update(f.relative_to(folder).as_posix().encode())
        h.update(memoised_file_sha256(f).encode())
    return {"checkpoint": h.hexdigest()}


def hub_revision(repo_id: str, revision: str = "main") -> str:
    """The commit a hub id resolves to: from the local HF cache's refs (no network), else
    asked of the hub; "unresolved" when neither answers (offline, unknown id)."""
    try:
        from huggingface_hub import HfApi, constants
    except ImportError:
        return "unresolved"
    ref = Path(constants.HF_HUB_CACHE, f"models--{repo_id.replace('/', '--')}", "refs", revision)
    if ref.is_file():
        return ref.read_text().strip()
    if constants.HF_HUB_OFFLINE:
        return "unresolved"
    try:
        return HfApi().model_info(repo_id, revision=revision, timeout=10).sha or "unresolved"
    except Exception:  # offline, unknown id, rate limit: the key says it was not resolved
        return "unresolved"


def check_backbone_source(source: str) -> None:
    """Fail early, in one line, on a backbone that cannot be a checkpoint: a path that does
    not exist or is a file. Hub ids (``org/name``) pass; loading them reports its own error."""
    from harness import bases  # not at module level: the bases' code is not part of any stage key

    if not source:
        return
    if bases.is_base(source):
        bases.check_installed(source)
        return
    path = Path(source).expanduser()
    if path.exists():
        if not path.is_dir():
            raise ValueError(f"backbone {source!r} is a file; give the checkpoint's folder "
                             "(with config.json)")
        if not (path / "config.json").is_file():
            raise ValueError(f"backbone {source!r} has no config.json: not a transformers checkpoint folder")
        return
    looks_local = source.startswith(("/", ".", "~")) or source.count("/") > 1 or "\\" in source
    if looks_local:
        raise ValueError(f"backbone {source!r}: no such folder; give an existing checkpoint folder, "
                         f"a hub id such as org/name or a packaged base ({', '.join(bases.BASES)})")


def skeleton_from_checkpoint(source: str, auto_class) -> nn.Module:
    """``auto_class`` (e.g. ``AutoModelForSeq2SeqLM``) built from the checkpoint's config on
    the meta device: its module names and shapes, no weights read."""
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(source)
    build = getattr(auto_class, "from_config", None) or auto_class  # Auto* or a model class
    with torch.device("meta"):
        return build(config)


def load_tokenizer(source: str):
    """A checkpoint's tokenizer, with a pad token (its EOS where it has none)."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(source)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok


@dataclass
class PretrainedConfig:
    """How a :class:`PretrainedTask` loads its backbone (the fields every such task has)."""

    backbone: str = ""  # "": the committed offline base; else a checkpoint folder or hub id
    rebuild_base: bool = False  # re-create the offline base with its pre-training script
    dtype: Literal["float32", "bfloat16", "float16"] = "float32"  # of the frozen base (adapters: fp32)
    load_in_4bit: bool = False  # QLoRA-style NF4 base through bitsandbytes (mclbench[quant], CUDA)
    load_in_8bit: bool = False  # LLM.int8() base through bitsandbytes (mclbench[quant], CUDA)


def check_pretrained_config(config) -> None:
    """The settings every :class:`PretrainedTask` config shares: ``backbone`` (an existing
    folder or a hub id) or ``rebuild_base``, not both; sizes ``num_train`` / ``num_test``
    (0: all), ``num_validation`` and ``max_new_tokens``; a quantised base only where bitsandbytes can run."""
    if config.backbone and config.rebuild_base:
        raise ValueError("rebuild_base re-creates the offline base; it cannot be combined with backbone")
    if config.num_train < 0 or config.num_test < 0 or config.num_validation < 0 or config.max_new_tokens < 1:
        raise ValueError("num_train, num_test and num_validation must be >= 0 and max_new_tokens >= 1")
    check_backbone_source(config.backbone)
    if config.load_in_4bit and config.load_in_8bit:
        raise ValueError("set load_in_4bit or load_in_8bit, not both")


def check_quantization(config) -> None:
    """ValueError (one line) for a quantised base this machine cannot load (checked before a
    run starts, not when the config is read: ``mclbench estimate`` plans for a GPU on any machine)."""
    flag = "load_in_4bit" if config.load_in_4bit else "load_in_8bit" if config.load_in_8bit else None
    if flag is None:
        return
    if importlib.util.find_spec("bitsandbytes") is None:
        raise ValueError(f"{flag} needs bitsandbytes: pip install 'mclbench[quant]' (and a CUDA GPU)")
    if not torch.cuda.is_available():
        raise ValueError(f"{flag}: bitsandbytes quantises on a CUDA GPU and torch sees none here; "
                         "drop it (or use dtype: bfloat16) on this machine")


def quantization_config(config):
    """The ``transformers.BitsAndBytesConfig`` of the task config, or None (full precision)."""
    if not (config.load_in_4bit or config.load_in_8bit):
        return None
    from transformers import BitsAndBytesConfig

    if config.load_in_8bit:
        return BitsAndBytesConfig(load_in_8bit=True)
    # QLoRA's recipe: NF4 weights, double quantisation, compute in the configured dtype
    compute = DTYPES[config.dtype] if config.dtype != "float32" else torch.bfloat16
    return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4",
                              bnb_4bit_use_double_quant=True, bnb_4bit_compute_dtype=compute)


# the PretrainedConfig fields that change how the backbone is loaded (its cache key records them)
LOADING_DEFAULTS = {k: PretrainedConfig.__dataclass_fields__[k].default
                    for k in ("dtype", "load_in_4bit", "load_in_8bit")}


class PretrainedTask(Task):
    """A task whose backbone is a ``transformers`` checkpoint: the committed offline base
    (``base.BASE_DIR``), that base rebuilt by its seeded recipe (``rebuild_base``:
    ``base.pretrain(base.Recipe(), work, out)`` into ``$<rebuild_env>`` or
    ``.mclbench_cache/<name>_base/out``), or the user's (``backbone``: a folder or hub id).
    Its config has ``backbone``, ``rebuild_base`` and ``max_new_tokens``; a subclass names its
    ``base`` module and :meth:`model_class`, and decodes with the checkpoint's tokenizer."""

    base: ClassVar[Any]  # the module of the offline base: BASE_DIR, Recipe, pretrain
    rebuild_env: ClassVar[str]  # environment variable: where rebuild_base writes the base

    def model_class(self, config) -> type:
        """The ``transformers`` class (``Auto*`` or a model class) of a checkpoint's config."""
        raise NotImplementedError

    @functools.cached_property
    def source(self) -> str:
        """Where the backbone and its tokenizer (and processor) come from."""
        c = self.config
        if c.backbone:
            from harness import bases  # (the converted folder's content is the backbone's key)

            return bases.resolve(c.backbone)  # a packaged base: its folder, converted on first use
        if c.rebuild_base:
            return os.environ.get(self.rebuild_env, f".mclbench_cache/{self.name}_base/out")
        return str(self.base.BASE_DIR)

    def backbone_spec(self, seed: int) -> dict[str, Any]:
        c = self.config
        # the recipe is seeded: not the run seed
        spec = {"rebuild": asdict(self.base.Recipe())} if c.rebuild_base else checkpoint_spec(self.source)
        loading = {k: getattr(c, k) for k, default in LOADING_DEFAULTS.items() if getattr(c, k) != default}
        return spec | ({"loading": loading} if loading else {})

    def check_environment(self) -> None:
        check_quantization(self.config)

    def build_backbone(self, seed: int) -> nn.Module:
        if self.config.rebuild_base and not Path(self.source, "model.safetensors").exists():
            out = Path(self.source)
            self.base.pretrain(self.base.Recipe(), out.parent / "work", out)
        return self.pretrained(self.source, quantize=False)  # what the cache keeps: unquantised

    def load_backbone(self, directory) -> nn.Module:
        return self.ready_backbone(self.pretrained(directory))

    def ready_backbone(self, model: nn.Module) -> nn.Module:
        """What the loaded base becomes for training and decoding (an encoder whose output is
        remembered, ...); the backbone stage saves the plain model."""
        return model

    def pretrained(self, directory, quantize: bool = True) -> nn.Module:
        """The frozen base in the configured dtype (the committed bases are fp16 on disk,
        fp32 by default here), quantised on the current CUDA device if configured."""
        from transformers import AutoConfig

        cls = self.model_class(AutoConfig.from_pretrained(directory))
        kwargs: dict[str, Any] = {"dtype": DTYPES[self.config.dtype]}
        quantization = quantization_config(self.config) if quantize else None
        if quantization is not None:
            kwargs.update(quantization_config=quantization, device_map={"": torch.cuda.current_device()})
        return cls.from_pretrained(directory, **kwargs).eval()

    def backbone_skeleton(self, seed: int) -> nn.Module | None:
        from transformers import AutoConfig

        if self.config.rebuild_base and not Path(self.source, "config.json").exists():
            return None  # built by the backbone stage
        config = AutoConfig.from_pretrained(self.source)
        return skeleton_from_checkpoint(self.source, self.model_class(config))

    @functools.cached_property
    def causal(self) -> bool:
        """The backbone is a causal (decoder-only) LM, prompted; else an encoder–decoder."""
        from transformers import AutoConfig

        return not AutoConfig.from_pretrained(self.source).is_encoder_decoder

    @functools.cached_property
    def tokenizer(self):
        return load_tokenizer(self.source)

    def generation_kwargs(self) -> dict[str, Any]:
        tok = self.tokenizer
        return {"max_new_tokens": self.config.max_new_tokens, "pad_token_id": tok.pad_token_id,
                "eos_token_id": tok.eos_token_id}

