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
                       to_inputs: Callable[[np.ndarray], dict], desc: str,
                       augment: Callable[[np.ndarray, np.random.Generator], np.ndarray] | None = None,
                       monitor: list[int] | None = None) -> dict:
    """``augment(items, rng)``: a training batch's items changed at random (seeded by the
    step); ``monitor``: the items of the curve's BLEU (default: the first 200 adapter items)."""
    base, adapters, test = split
    tok_dir = work / "tokenizer"
    if tok_dir.exists():
        from transformers import PreTrainedTokenizerFast
        tokenizer = PreTrainedTokenizerFast.from_pretrained(tok_dir)
    else:
        tokenizer = train_word_tokenizer([c for i in base for c in captions[i]])
        tokenizer.save_pretrained(tok_dir)
    # at most 20 words and EOS, as the tasks truncate their adapters' labels (max_new_tokens + 1)
    pairs = [(i, tokenizer(c)["input_ids"][:21]) for i in base for c in captions[i]]
    model = build_model(r, len(tokenizer))

    def batch_at(step: int) -> dict[str, torch.Tensor]:
        # consecutive slices of a seeded permutation per epoch: a pure function of the step
        per_epoch = len(pairs) // r.batch_size
        epoch, offset = divmod(step, per_epoch)
        order = np.random.default_rng([r.seed, epoch]).permutation(len(pairs))
        chosen = [pairs[k] for k in order[offset * r.batch_size:(offset + 1) * r.batch_size]]
        batch = items[[i for i, _ in chosen]]
        if augment is not None:
            batch = augment(batch, np.random.default_rng([r.seed, step, 1]))
        return {**to_inputs(batch), "labels": pad([ids for _, ids in chosen], -100)}

    monitor = monitor if monitor is not None else list(adapters)[:200]  # unseen items; the curve only

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
    reloaded = export_fp16(model, output, tokenizer, processor)
    frequent = frequency_baseline([c for i in base for c in captions[i]])
    summary = {
        "recipe": asdict(r), "parameters": sum(p.numel() for p in reloaded.parameters()),
        **against_frequency(reloaded, tokenizer, to_inputs, items[list(test)], [captions[i] for i in test],
                            frequent),
    }
    (output / "training_summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    save_log(log, output / "training_log.csv")
    print(json.dumps(summary, indent=2))
    return summary


def frequency_baseline(captions: list[str]) -> str:
    """The caption-frequency baseline's one caption: the most frequent training caption; when
    none repeats (real human captions), the consensus caption — of the captions at least the
    median length (CIDEr-D penalises length gaps), the one whose 1–4-grams (lower-case words)
    are most common among the training captions (mean log count)."""
    top, count = Counter(captions).most_common(1)[0]
    if count > 1:
        return top
    words = [c.lower().split() for c in captions]
    grams = [[tuple(ws[k:k + n]) for n in range(1, 5) for k in range(len(ws) - n + 1)] for ws in words]
    counts = Counter(g for gs in grams for g in gs)
    median = np.median([len(ws) for ws in words])
    scores = [np.mean([np.log(counts[g]) for g in gs]) if gs and len(ws) >= median else -np.inf
              for ws, gs in zip(words, grams, strict=True)]
    return captions[int(np.argmax(scores))]


def against_frequency(model, tokenizer, to_inputs, items: np.ndarray, refs: list[list[str]],
                      frequent: str) -> dict:
    """Greedy CIDEr-D and BLEU-4 (pycocoevalcap) of ``model`` on ``items`` and of the
    caption-frequency baseline (``frequent`` for every item), with three examples."""
    from harness.metrics import coco

    hyps = greedy_captions(model, tokenizer, to_inputs, items)

    def top1(captions: list[str]) -> dict[str, float]:
        values = coco.coco_flavours([[c] for c in captions], refs, ["cider_d", "bleu_4"])
        return {k.split("/")[1]: round(v, 4) for k, v in values.items() if k.startswith("top1/")}

    return {"test_items": len(refs), "greedy": top1(hyps),
            "caption_frequency_baseline": {"caption": frequent, **top1([frequent] * len(refs))},
            "greedy_examples": [{"references": refs[k], "greedy": hyps[k]} for k in range(3)]}


def cli(module_doc: str, recipe_cls, pretrain: Callable, name: str, base_dir: Path, argv=None) -> None:
    """``python -m tasks.<name>_base [--work DIR] [--output DIR] [--steps N]``."""
    import argparse

    p = argparse.ArgumentParser(description=module_doc.split("\n")[0])
    p.add_argument("--work", type=Path, default=Path(f".mclbench_cache/{name}_base"))
    p.add_argument("--output", type=Path, default=base_dir)
    p.add_argument("--steps", type=int, default=recipe_cls.steps)
    a = p.parse_args(argv)
    pretrain(recipe_cls(steps=a.steps), a.work, a.output)
