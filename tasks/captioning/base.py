"""Pre-training of a captioning task's offline base, shared by the image and audio bases.

A base module supplies its items (an array of images or feature matrices), their caption
lists, the (base, adapters, test) split, a model builder and a processor; this module
trains a word-level tokenizer on the base split's captions, runs the shared MLE loop
(:mod:`tasks.pretraining`) over every (item, caption) pair, and exports fp16 weights,
tokenizer, processor, the log and a summary that sets the base's greedy captions on the
test split against a caption-frequency baseline (CIDEr-D and BLEU-4, pycocoevalcap).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from harness.task import pad
from tasks.pretraining import Schedule, export_fp16, pretrain_loop, save_log

SPECIALS = ["<pad>", "<s>", "</s>", "<unk>"]  # ids 0..3: pad, decoder start, eos, unknown


def consecutive_split(base: int, adapters: int, n: int) -> tuple[range, range, range]:
    """Items ``[0, base)`` pre-train the base, the next ``adapters`` train the adapters, the
    rest up to ``n`` is the test split."""
    return range(base), range(base, base + adapters), range(base + adapters, n)


def train_word_tokenizer(captions: list[str]):
    """Word-level vocabulary of the captions (lower-case words), EOS appended."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.WordLevel(unk_token="<unk>"))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.train_from_iterator(captions, trainers.WordLevelTrainer(special_tokens=SPECIALS))
    tok.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 2)])
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", bos_token="<s>",
                                   eos_token="</s>", unk_token="<unk>")


@torch.no_grad()
def greedy_captions(model, tokenizer, to_inputs: Callable[[np.ndarray], dict], items: np.ndarray,
                    batch_size: int = 100) -> list[str]:
    out = []
    for start in range(0, len(items), batch_size):
        seqs = model.generate(**to_inputs(items[start:start + batch_size]), num_beams=1, do_sample=False,
                              max_new_tokens=20)
        out += [t.strip() for t in tokenizer.batch_decode(seqs, skip_special_tokens=True)]
    return out


def pretrain_captioner(r, work: Path, output: Path, *, items: np.ndarray, captions: list[list[str]],
                       split: tuple[range, range, range], build_model: Callable, processor,
                       to_inputs: Callable[[np.ndarray], dict], desc: str) -> dict:
    base, adapters, test = split
    tok_dir = work / "tokenizer"
    if tok_dir.exists():
        from transformers import PreTrainedTokenizerFast
        tokenizer = PreTrainedTokenizerFast.from_pretrained(tok_dir)
    else:
        tokenizer = train_word_tokenizer([c for i in base for c in captions[i]])
        tokenizer.save_pretrained(tok_dir)
    pairs = [(i, tokenizer(c)["input_ids"]) for i in base for c in captions[i]]
    model = build_model(r, len(tokenizer))

    def batch_at(step: int) -> dict[str, torch.Tensor]:
        # consecutive slices of a seeded permutation per epoch: a pure function of the step
        per_epoch = len(pairs) // r.batch_size
        epoch, offset = divmod(step, per_epoch)
        order = np.random.default_rng([r.seed, epoch]).permutation(len(pairs))
        chosen = [pairs[k] for k in order[offset * r.batch_size:(offset + 1) * r.batch_size]]
        return {**to_inputs(items[[i for i, _ in chosen]]), "labels": pad([ids for _, ids in chosen], -100)}

    monitor = list(adapters)[:200]  # items the base never sees; for the curve only

    def evaluate(m) -> dict[str, float]:
        from harness.metrics.text import corpus_bleu

        hyps = greedy_captions(m, tokenizer, to_inputs, items[monitor])
        return {"monitor200_bleu": corpus_bleu(hyps, [captions[i] for i in monitor])}

    schedule = Schedule(steps=r.steps, lr=r.lr, warmup=r.warmup, label_smoothing=r.label_smoothing,
                        seed=r.seed, checkpoint_every=250, eval_every=250)
    log = pretrain_loop(model, batch_at, schedule, work, evaluate, desc=desc)
    return export(model, tokenizer, processor, r, log, output, items, captions, base, test, to_inputs)


def export(model, tokenizer, processor, r, log, output: Path, items, captions, base, test, to_inputs) -> dict:
    """fp16 weights, tokenizer, processor, log; greedy captions of the fp16 weights scored on
    the test split against a caption-frequency baseline (the most frequent training caption)."""
    from harness.metrics import coco

    reloaded = export_fp16(model, output, tokenizer, processor)
    refs = [captions[i] for i in test]
    hyps = greedy_captions(reloaded, tokenizer, to_inputs, items[list(test)])
    frequent = Counter(c for i in base for c in captions[i]).most_common(1)[0][0]
    values, _ = coco.coco_flavours([[h] for h in hyps], refs, ["cider_d", "bleu_4"])
    baseline, _ = coco.coco_flavours([[frequent] for _ in hyps], refs, ["cider_d", "bleu_4"])
    summary = {
        "recipe": asdict(r), "parameters": sum(p.numel() for p in reloaded.parameters()),
        "test_items": len(test),
        "greedy": {k.split("/")[1]: round(v, 4) for k, v in values.items() if k.startswith("top1/")},
        "caption_frequency_baseline": {"caption": frequent, **{k.split("/")[1]: round(v, 4)
                                       for k, v in baseline.items() if k.startswith("top1/")}},
        "greedy_examples": [{"references": refs[k], "greedy": hyps[k]} for k in range(3)],
    }
    (output / "training_summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    save_log(log, output / "training_log.csv")
    print(json.dumps(summary, indent=2))
    return summary


def cli(module_doc: str, recipe_cls, pretrain: Callable, name: str, base_dir: Path, argv=None) -> None:
    """``python -m tasks.<name>_base [--work DIR] [--output DIR] [--steps N]``."""
    import argparse

    p = argparse.ArgumentParser(description=module_doc.split("\n")[0])
    p.add_argument("--work", type=Path, default=Path(f".mclbench_cache/{name}_base"))
    p.add_argument("--output", type=Path, default=base_dir)
    p.add_argument("--steps", type=int, default=recipe_cls.steps)
    a = p.parse_args(argv)
    pretrain(recipe_cls(steps=a.steps), a.work, a.output)
