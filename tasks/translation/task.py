"""Machine translation: Multi30k English→German offline by default, any checkpoint on request.

Data (default): Multi30k task 1, committed in ``tasks/data/multi30k``. The adapters train on
the 7 000 training pairs the base never saw (``translation_base.base_split``); every method
is scored on all 1 000 pairs of ``test_2016_flickr``. Other data: ``train_source`` +
``train_target`` (line-aligned files, optionally .gz) or ``train_jsonl``; ``test_source`` +
``test_references`` (one file per reference: a sacrebleu-style multi-reference set) or
``test_jsonl`` (``{"id", "source", "references"}``). See :mod:`tasks.translation.loaders`.
Training uses every (source, reference) pair: an input with three references (a
``train_jsonl`` row with three, or three reference files) gives three training examples.

Backbone (default): the committed 7.6 M-parameter Marian pre-trained on the other 22 000
pairs (``tasks/data/translation_base``; ``rebuild_base: true`` re-creates it with
:mod:`tasks.translation.base`, about an hour on 2 CPU cores). ``backbone: <path or hub
name>`` loads any seq2seq or causal-LM checkpoint instead; a causal LM is prompted
ALMA-style (``prompt`` below) and its candidate is the first line it writes.

Metrics (by name, from :mod:`harness.metrics.registry`): sacreBLEU BLEU and chrF with every
reduction (``top1/``, ``mean/``, ``max/`` — the paper's oracle —, ``max@n/``,
``oracle_corpus/``), and the diversity of the N candidates; leave-one-out BLEU when every test
input has the same number of references, refs covered when each has several. The sacreBLEU
signatures go in the table footer.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cached_property

import torch

from harness.registry import register_task
from harness.task import Example, TrainingSet, pad
from tasks._pretrained import PretrainedConfig, PretrainedTask, check_pretrained_config
from tasks.translation import base as tb
from tasks.translation.loaders import Columns, read_examples, read_hub, read_parallel

ALMA_PROMPT = "Translate this from {src} to {tgt}:\n{src}: {text}\n{tgt}:"


@dataclass
class TranslationConfig(PretrainedConfig):
    backbone: str = ""  # "": the committed Multi30k base; else a local path or hub name
    train_source: str | None = None
    train_target: str | None = None
    train_jsonl: str | None = None
    test_source: str | None = None
    test_references: list[str] | None = None
    test_jsonl: str | None = None
    # any tabular data: a .jsonl/.json/.csv/.parquet file or a folder of them (HF datasets)
    train_file: str | None = None
    test_file: str | None = None
    # an HF dataset: a hub id (wmt/wmt14) or a local dataset folder, read with datasets.load_dataset
    hf_dataset: str | None = None
    hf_config: str | None = None  # its configuration, e.g. "de-en" for wmt/wmt14
    # the split of a folder or hf_dataset to read ("train[:20000]": a slice; with hf_dataset,
    # train_split "" keeps the task's default training pairs)
    train_split: str = "train"
    test_split: str = "test"
    source_field: str = "source"  # column names of train_file / test_file / *_jsonl / hf_dataset
    # (a dotted name reads a nested field: translation.en)
    references_field: str = "references"  # a list of strings, or one string
    id_field: str = "id"
    # a column of per-reference mode labels (a list aligned with the references; null: no mode):
    # adds modes_covered and mode_recall (harness.metrics.modes)
    modes_field: str = ""
    tokenize: str = "13a"  # sacreBLEU's: 13a, intl, zh, char or none (BLEU, the diversity metrics, Div-n)
    num_train: int = 0  # adapter training pairs to use (0: all)
    num_test: int = 0  # test inputs to score (0: all)
    # training inputs held out for the validation NLL of a trainer's eval_every (the last ones;
    # never trained on; 0: none)
    num_validation: int = 0
    max_source_tokens: int = 64
    max_new_tokens: int = 64
    source_language: str = "English"
    target_language: str = "German"
    prompt: str = ALMA_PROMPT  # causal LMs only

    def validate(self) -> None:
        if (self.train_source is None) != (self.train_target is None):
            raise ValueError("set both train_source and train_target (line-aligned files), or neither")
        if self.test_source is not None and not self.test_references:
            raise ValueError("test_source needs test_references (one or more reference files)")
        for split in ("train", "test"):
            given = [k for k in (f"{split}_jsonl", f"{split}_source", f"{split}_file") if getattr(self, k)]
            if len(given) > 1:
                raise ValueError(f"give one of {split}_jsonl, {split}_source and {split}_file, "
                                 f"not {' and '.join(given)}")
        if self.hf_dataset and (self.test_jsonl or self.test_source or self.test_file):
            raise ValueError("give hf_dataset (its test_split) or a test file, not both")
        if self.hf_config and not self.hf_dataset:
            raise ValueError("hf_config needs hf_dataset")
        check_pretrained_config(self)


class _PairSet(TrainingSet):
    """Tokenised (source, target) pairs, padded per batch."""

    def __init__(self, rows: list[tuple[list[int], list[int]]], pad: int, causal: bool):
        self.rows, self.pad, self.causal = rows, pad, causal

    def __len__(self) -> int:
        return len(self.rows)

    def batch(self, indices: torch.Tensor) -> dict[str, torch.Tensor]:
        rows = [self.rows[i] for i in indices.tolist()]
        if self.causal:  # prompt + target in one sequence; loss on the target only
            inputs = [p + t for p, t in rows]
            labels = [[-100] * len(p) + t for p, t in rows]
        else:
            inputs, labels = [s for s, _ in rows], [t for _, t in rows]
        return {"input_ids": pad(inputs, self.pad), "attention_mask": pad([[1] * len(s) for s in inputs], 0),
                "labels": pad(labels, -100)}


@register_task("translation")
class TranslationTask(PretrainedTask):
    """Translation (Multi30k en→de by default): BLEU/chrF flavours and candidate diversity."""

    Config = TranslationConfig
    version = "1"
    training_defaults = {
        "steps": 500, "batch_size": 32, "lr": 2e-3,
        "target_modules": ["q_proj", "k_proj", "v_proj", "out_proj"],
    }
    bootstrap_metrics = ("top1/bleu", "oracle_corpus/bleu", "max/bleu")
    best_of_n_metric = "bleu"
    quality_diversity = ("max/bleu", "mbleu_4")

    def metric_names(self) -> list[str]:
        names = ["bleu", "chrf", "mbleu_4", "pairwise_bleu", "div_1", "div_2", "vocab", "unique"]
        counts = {len(e.references) for e in self._test}
        if min(counts) >= 2:
            names += [*self.loo_metric(counts), "refs_covered", "refs_covered_fairseq"]
        if self.config.modes_field:
            names += ["modes_covered", "mode_recall"]
        return names

    def loo_metric(self, counts: set[int]) -> list[str]:
        """Leave-one-out BLEU where it is defined: fairseq's needs the same M for every input."""
        return ["loo_bleu"] if len(counts) == 1 else []

    # ---------------------------------------------------------------------------- data
    @cached_property
    def _train_pairs(self) -> list[Example]:
        c = self.config
        pairs = self._train_inputs[: len(self._train_inputs) - c.num_validation]
        return pairs[: c.num_train] if c.num_train else pairs

    @cached_property
    def _validation(self) -> list[Example]:
        n = self.config.num_validation
        return self._train_inputs[-n:] if n else []

    @cached_property
    def _train_inputs(self) -> list[Example]:
        c = self.config
        if c.train_jsonl or c.train_file:
            pairs = self._read(c.train_jsonl or c.train_file, c.train_split, test=False)
        elif c.train_source:
            pairs = read_parallel(c.train_source, [c.train_target])
        elif c.hf_dataset and c.train_split:  # train_split "": the default training pairs
            pairs = self._read_hub(c.train_split, test=False)
        else:
            pairs = self.default_train()
        if c.num_validation >= len(pairs):
            raise ValueError(f"num_validation {c.num_validation}: the training data has only "
                             f"{len(pairs)} inputs")
        return pairs

    def default_train(self) -> list[Example]:
        """The adapters' training inputs when the config names none: Multi30k's pairs the
        base never saw."""
        train = read_parallel(tb.DATA / "train.en.gz", [tb.DATA / "train.de.gz"])
        _, adapter_ids = tb.base_split(len(train), tb.Recipe.base_pairs, tb.Recipe.seed)
        return [train[i] for i in adapter_ids]

    def default_test(self) -> list[Example]:
        """The test inputs when the config names none: Multi30k test_2016_flickr."""
        return read_parallel(tb.DATA / "test_2016_flickr.en.gz", [tb.DATA / "test_2016_flickr.de.gz"])

    @cached_property
    def _test(self) -> list[Example]:
        c = self.config
        if c.test_jsonl or c.test_file:
            examples = self._read(c.test_jsonl or c.test_file, c.test_split, test=True)
        elif c.test_source:
            examples = read_parallel(c.test_source, c.test_references)
        elif c.hf_dataset:
            examples = self._read_hub(c.test_split, test=True)
        else:
            examples = self.default_test()
        return examples[: c.num_test] if c.num_test else examples

    def _columns(self, test: bool) -> Columns:
        """The config's column names; mode labels are read for the test inputs only."""
        c = self.config
        return Columns(c.source_field, c.references_field, c.id_field, c.modes_field if test else "")

    def _read(self, path: str, split: str, test: bool) -> list[Example]:
        return read_examples(path, split, self._columns(test))

    def _read_hub(self, split: str, test: bool) -> list[Example]:
        return read_hub(self.config.hf_dataset, split, self.config.hf_config, self._columns(test))

    def data_fingerprint(self) -> str:
        h = hashlib.sha256()
        for e in self._train_pairs + self._validation + self._test:
            h.update(repr((e.id, e.source, e.references) if e.modes is None else
                          (e.id, e.source, e.references, e.modes)).encode())
        return h.hexdigest()

    def training_set(self) -> TrainingSet:
        # every (source, reference) pair of an input is a training example: the different
        # correct translations are what multiple-choice learning splits between its heads
        return self._pair_set([(e.source, r) for e in self._train_pairs for r in e.references])

    def validation_set(self) -> TrainingSet | None:
        return self._pair_set([(e.source, r) for e in self._validation for r in e.references]) \
            if self._validation else None

    def reference_set(self, examples):
        pairs = [(e.source, r) for e in examples for r in e.references]
        return self._pair_set(pairs), [i for i, e in enumerate(examples) for _ in e.references]

    def _pair_set(self, pairs: list[tuple[str, str]]) -> _PairSet:
        """(source, target) text pairs tokenised as training rows."""
        tok, c = self.tokenizer, self.config
        if self.causal:
            # the prompt with the tokenizer's own special tokens (Gemma's BOS: without it, BLEU drops)
            prompts = [tok(self._prompt(src))["input_ids"] for src, _ in pairs]
            targets = [tok(" " + tgt, add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
                       for _, tgt in pairs]
        else:
            prompts = [ids[: c.max_source_tokens] for ids in tok([src for src, _ in pairs])["input_ids"]]
            targets = tok(text_target=[tgt for _, tgt in pairs])["input_ids"]
            targets = [t[: c.max_new_tokens] for t in targets]
        return _PairSet(list(zip(prompts, targets, strict=True)), tok.pad_token_id, self.causal)

    def test_examples(self) -> list[Example]:
        return self._test

    # ------------------------------------------------------------------------ backbone
    base = tb
    rebuild_env = "MCLBENCH_TRANSLATION_BASE"

    def model_class(self, config) -> type:
        from transformers import AutoModelForCausalLM, AutoModelForSeq2SeqLM

        return AutoModelForSeq2SeqLM if config.is_encoder_decoder else AutoModelForCausalLM

    def _prompt(self, text: str) -> str:
        c = self.config
        return c.prompt.format(src=c.source_language, tgt=c.target_language, text=text)

    # ------------------------------------------------------------------------ decoding
    def prompt_batch(self, examples: list[Example]) -> dict[str, torch.Tensor]:
        tok = self.tokenizer
        if self.causal:
            tok.padding_side = "left"
            return dict(tok([self._prompt(e.source) for e in examples], return_tensors="pt", padding=True))
        tok.padding_side = "right"
        return dict(tok([e.source for e in examples], return_tensors="pt", padding=True, truncation=True,
                        max_length=self.config.max_source_tokens))

    def decode_outputs(self, prompt, sequences: torch.Tensor) -> list[str]:
        if self.causal:
            new = sequences[:, prompt["input_ids"].shape[1]:]
            texts = self.tokenizer.batch_decode(new, skip_special_tokens=True)
            return [t.strip().split("\n")[0].strip() for t in texts]
        return [t.strip() for t in self.tokenizer.batch_decode(sequences, skip_special_tokens=True)]
