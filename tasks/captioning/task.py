"""What the image and audio captioning tasks share: data splits, any encoder–decoder
checkpoint by path, candidates scored with the COCO caption metrics (every reduction; SPICE
and SPIDEr are left out: they need CoreNLP, not downloadable offline), the paper's
captioning diversity on PTB tokens (mBLEU-4, Div-1/2, vocabulary), unique and, on the
generated sets, ``modes_covered`` / ``mode_recall``: the distinct described subsets (modes)
that some candidate matches best (each reference is tagged with the subset it describes).

A subclass names its generated default data and base module, the readers of its formats,
and how a batch of files becomes model inputs (pixels, log-mel features).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, ClassVar

import torch

from harness.config import ConfigError
from harness.task import Example, TrainingSet, pad
from tasks._pretrained import PretrainedConfig, PretrainedTask, check_pretrained_config
from tasks.captioning.encoder_memo import memoise_encoder
from tasks.captioning.loaders import read_hub_captions
from tasks.captioning.prompted import PromptedCaptionPairs, continuation, processed_prompts

DEFAULT_TRAINING = "default"  # train_annotations: the default data's adapter split


@dataclass
class CaptioningConfig(PretrainedConfig):
    backbone: str = ""  # "": the committed base; else a local path of an encoder-decoder captioner
    format: str = ""  # the reader of `annotations` (the subclass's default when empty)
    annotations: str | None = None  # test captions (and training ones unless train_annotations)
    data_dir: str | None = None  # the folder of the images / audio files
    # training captions in `format` ("default": the default data's adapter split, e.g. train on
    # the generated clips and test on real ones)
    train_annotations: str | None = None
    train_data_dir: str | None = None
    train_fraction: float = 0.8  # without train_annotations: this share of `annotations` trains
    skip_missing: bool = False  # leave out captions whose file is not in data_dir (part of a split)
    # an HF dataset instead of annotations + data_dir: a hub id or a local dataset folder
    hf_dataset: str | None = None
    hf_config: str | None = None  # its configuration (subset)
    train_split: str = "train"  # "": the first train_fraction of test_split trains ("train[:500]": a slice)
    test_split: str = "test"
    media_field: str = ""  # the Image / Audio column ("": "image" or "audio", as the task reads)
    caption_field: str = "caption"  # a column of captions (string or list), or several: "caption_1,caption_2"
    id_field: str = ""  # a column of ids ("": <split>-<row>)
    num_train: int = 0  # 0: all
    num_test: int = 0  # 0: all
    # training inputs (files) held out for the validation NLL of a trainer's eval_every (the
    # last ones; never trained on; 0: none)
    num_validation: int = 0
    max_new_tokens: int = 20
    # an encoder-decoder backbone's frozen encoder runs once per input file and process
    # (tasks/captioning/encoder_memo.py); the adapters must then sit outside the encoder
    encoder_memo: bool = False
    # the text prompt of a prompted multimodal LM backbone (LLaVA, Qwen2-Audio), with its
    # media placeholder ("": the task's default); unused by encoder–decoder captioners
    prompt: str = ""
    FORMATS: ClassVar[tuple[str, ...]] = ()

    def validate(self) -> None:
        if self.format and self.format not in self.FORMATS:
            raise ValueError(f"format must be one of {', '.join(self.FORMATS)}, got {self.format!r}")
        if (self.annotations is None) != (self.data_dir is None):
            raise ValueError("set both annotations and data_dir, or neither (the generated set)")
        if self.hf_dataset and (self.annotations or self.train_annotations):
            raise ValueError("give hf_dataset or annotations + data_dir, not both")
        if self.hf_config and not self.hf_dataset:
            raise ValueError("hf_config needs hf_dataset")
        if self.train_annotations and not self.annotations:
            raise ValueError("train_annotations needs annotations (the test set) too")
        if self.train_annotations == DEFAULT_TRAINING and self.train_data_dir:
            raise ValueError(f"train_annotations: {DEFAULT_TRAINING} trains on the default data; "
                             "leave train_data_dir unset")
        if not 0 < self.train_fraction < 1:
            raise ValueError("train_fraction must lie in (0, 1)")
        check_pretrained_config(self)


class _CaptionPairs(TrainingSet):
    """Every (file, caption) pair of the training examples; inputs are read per batch."""

    def __init__(self, task: CaptioningTask, examples: list[Example]):
        self.task = task
        self.pairs = [(e.source, task.caption_ids(c)) for e in examples for c in e.references]

    def __len__(self) -> int:
        return len(self.pairs)

    def batch(self, indices: torch.Tensor) -> dict[str, torch.Tensor]:
        chosen = [self.pairs[i] for i in indices.tolist()]
        labels = pad([ids for _, ids in chosen], -100)
        return {**self.task.inputs([src for src, _ in chosen]), "labels": labels}


class CaptioningTask(PretrainedTask):
    """Base of the captioning tasks; subclasses set the class attributes and ``inputs``."""

    base: ClassVar[Any]  # the base's module: BASE_DIR, Recipe, split(n), pretrain(recipe, work, out)
    readers: ClassVar[dict[str, Any]]  # format -> reader(annotations, data_dir) -> list[Example]
    training_defaults = {"steps": 400, "batch_size": 32, "lr": 2e-3, "target_modules": "all-linear"}
    bootstrap_metrics = ("top1/cider_d", "oracle_corpus/cider_d", "max/cider_d")
    semantic: ClassVar[bool] = False  # also SBERT similarity and diversity (harness.semantic)
    best_of_n_metric = "cider_d"
    quality_diversity = ("max/cider_d", "mbleu_4_ptb")

    # ------------------------------------------------------------------- subclass hooks
    def generated_examples(self) -> list[Example]:
        """The committed generated set, in order."""
        raise NotImplementedError

    def default_splits(self) -> tuple[list[Example], list[Example]]:
        """``(adapter training, test)`` examples of the default data: the generated set split
        as the base's recipe says."""
        examples = self.generated_examples()
        _, adapters, test = self.base.split(self.base.Recipe(), len(examples))
        return [examples[i] for i in adapters], [examples[i] for i in test]

    @property
    def known_modes(self) -> bool:
        """The test captions are tagged with the subsets they describe (the generated sets)."""
        return self.config.annotations is None and self.config.hf_dataset is None

    def generated_modes(self) -> dict[str, list[dict]]:
        """Tagged captions (``mode``, ``caption``) of the generated set, by example id."""
        raise NotImplementedError

    def media(self, paths: list[Path]) -> dict[str, Any]:
        """The files read for a processor: ``{"images": [...]}`` or ``{"audio": [...],
        "sampling_rate": ...}``."""
        raise NotImplementedError

    def inputs(self, paths: list[Path]) -> dict[str, torch.Tensor]:
        """Encoder inputs of a batch of files (``pixel_values``, ``input_features``)."""
        raise NotImplementedError

    default_prompt: ClassVar[str] = ""  # of a prompted multimodal LM (see CaptioningConfig.prompt)

    def memo_frames(self, model: torch.nn.Module) -> int:
        """With ``encoder_memo``: the first this many output frames are kept (0: all)."""
        return 0

    # ------------------------------------------------------------------------ backbone
    @property
    def encoder_memo(self) -> bool:
        return bool(self.config.encoder_memo)

    def backbone_spec(self, seed: int) -> dict[str, Any]:
        spec = super().backbone_spec(seed)
        return spec | {"encoder_memo": True} if self.encoder_memo else spec

    def ready_backbone(self, model: torch.nn.Module) -> torch.nn.Module:
        if not self.encoder_memo:
            return model
        if not getattr(model.config, "is_encoder_decoder", False):
            raise ConfigError("task.encoder_memo needs an encoder-decoder backbone; "
                             f"{type(model).__name__} has no separate encoder (set task.encoder_memo=false)")
        return memoise_encoder(model, self.memo_frames(model))

    # ---------------------------------------------------------------------------- data
    def metric_names(self) -> list[str]:
        names = ["bleu_1", "bleu_2", "bleu_3", "bleu_4", "meteor", "rouge_l", "cider_d",
                 "mbleu_4_ptb", "div_1_ptb", "div_2_ptb", "vocab_ptb", "unique"]  # the paper's diversity: PTB
        if self.semantic:
            names += ["top1/sbert_sim", "max/sbert_sim", "sbert_diversity"]
        return names + (["modes_covered", "mode_recall"] if self.known_modes else [])

    def mode_labels(self, examples, candidates):
        """On the generated sets, the subset each reference describes."""
        if not self.known_modes:
            return None
        tagged = self.generated_modes()
        return [[t["mode"] for t in tagged[e.id]] for e in examples], None

    @cached_property
    def _splits(self) -> tuple[list[Example], list[Example], list[Example]]:
        """``(adapter training, validation, test)`` examples."""
        c = self.config
        if c.hf_dataset:
            tests = self._read_hub(c.test_split)
            if c.train_split:
                train = self._read_hub(c.train_split)
            else:
                cut = int(len(tests) * c.train_fraction)
                train, tests = tests[:cut], tests[cut:]
        elif c.annotations is None:
            train, tests = self.default_splits()
        else:
            read = self.readers[c.format or next(iter(self.readers))]
            tests = read(c.annotations, c.data_dir, c.skip_missing)
            if c.train_annotations == DEFAULT_TRAINING:
                train = self.default_splits()[0]
            elif c.train_annotations:
                train = read(c.train_annotations, c.train_data_dir or c.data_dir, c.skip_missing)
            else:
                cut = int(len(tests) * c.train_fraction)
                train, tests = tests[:cut], tests[cut:]
        if c.num_validation >= len(train):
            raise ValueError(f"num_validation {c.num_validation}: the training data has only "
                             f"{len(train)} inputs")
        validation = train[len(train) - c.num_validation:]
        train = train[: len(train) - c.num_validation]
        train = train[: c.num_train] if c.num_train else train
        return train, validation, (tests[: c.num_test] if c.num_test else tests)

    def _read_hub(self, split: str) -> list[Example]:
        c = self.config
        fields = [f.strip() for f in c.caption_field.split(",") if f.strip()]
        return read_hub_captions(c.hf_dataset, split, c.hf_config, c.media_field or self.input_modality,
                                 fields, c.id_field or None, self.input_modality)

    def data_fingerprint(self) -> str:
        h = hashlib.sha256()
        for e in self._splits[0] + self._splits[1] + self._splits[2]:
            h.update(repr((e.id, Path(e.source).name, e.references)).encode())
            h.update(hashlib.sha256(Path(e.source).read_bytes()).digest())
        return h.hexdigest()

    def training_set(self) -> TrainingSet:
        return self._pairs(self._splits[0])

    def test_examples(self) -> list[Example]:
        return self._splits[2]

    def validation_set(self) -> TrainingSet | None:
        validation = self._splits[1]
        return self._pairs(validation) if validation else None

    def reference_set(self, examples):
        return self._pairs(examples), [i for i, e in enumerate(examples) for _ in e.references]

    def _pairs(self, examples: list[Example]) -> TrainingSet:
        return PromptedCaptionPairs(self, examples) if self.causal else _CaptionPairs(self, examples)

    # ------------------------------------------------------------------------ backbone
    def model_class(self, config) -> type:
        import transformers

        if config.model_type == "vision-encoder-decoder":
            return transformers.VisionEncoderDecoderModel
        if config.is_encoder_decoder:
            return transformers.AutoModelForSpeechSeq2Seq
        # a multimodal LM: the class its checkpoint names (LlavaForConditionalGeneration, ...)
        name = (getattr(config, "architectures", None) or [""])[0]
        if not hasattr(transformers, name):
            raise ValueError(f"backbone {self.source!r}: its config names no transformers model class "
                             f"({name or 'no architectures'}); save it with save_pretrained")
        return getattr(transformers, name)

    @cached_property
    def multimodal_processor(self):
        from transformers import AutoProcessor

        return AutoProcessor.from_pretrained(self.source)

    def prompted_inputs(self, paths: list[Path]) -> dict[str, torch.Tensor]:
        """The prompted LM's inputs: the prompt with each file's media placeholder expanded."""
        prompt = self.config.prompt or self.default_prompt
        return processed_prompts(self.multimodal_processor, [prompt] * len(paths), self.media(paths))

    def caption_ids(self, caption: str) -> list[int]:
        """A caption's decoder targets: its tokens without a leading decoder start token (the
        model prepends that one when it shifts the targets; Whisper's tokenizer writes
        ``<|startoftranscript|>`` first), up to ``max_new_tokens`` and the end token."""
        ids = self.tokenizer(caption)["input_ids"]
        if ids and ids[0] == self._decoder_start:
            ids = ids[1:]
        return ids[: self.config.max_new_tokens + 1]

    @cached_property
    def _decoder_start(self) -> int | None:
        from transformers import AutoConfig

        return getattr(AutoConfig.from_pretrained(self.source), "decoder_start_token_id", None)

    # ------------------------------------------------------------------------ decoding
    def prompt_batch(self, examples: list[Example]) -> dict[str, torch.Tensor]:
        paths = [e.source for e in examples]
        return self.prompted_inputs(paths) if self.causal else self.inputs(paths)

    def decode_outputs(self, prompt, sequences: torch.Tensor) -> list[str]:
        if self.causal:
            return continuation(self.tokenizer, prompt, sequences)
        return [t.strip() for t in self.tokenizer.batch_decode(sequences, skip_special_tokens=True)]

    def notes(self) -> list[str]:
        return ["spice: n/a — SPICE and SPIDEr are not reported: SPICE needs Stanford CoreNLP 3.6.0, not "
                "downloadable offline (mclbench score computes them where MCLBENCH_CORENLP_DIR has its jars)"]
