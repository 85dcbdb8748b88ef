"""Pre-train the translation task's offline base model once: a small Marian en→de.

The default translation run loads the committed result (``tasks/data/translation_base/``:
fp16 safetensors, tokenizer, ``config.json``, training log and curve); this script is the
seeded recipe that made it, so anyone can re-create it::

    python -m tasks.translation.base --work .mclbench_cache/translation_base

It checkpoints every ``--checkpoint-every`` steps into ``--work`` and resumes from there
when restarted (batch order, dropout RNG and learning rate are functions of the step).
Efficiency on a 2-core CPU: length-bucketed batches of about ``max_tokens`` target tokens,
label smoothing, linear warm-up then inverse-square-root decay, a joint 8k BPE.

The base sees only its part of ``train`` (``base_split`` below); the adapters of the
benchmark are trained on the rest.
"""

from __future__ import annotations

import argparse
import json
import random
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from harness.task import Example, pad
from tasks.pretraining import Schedule, export_fp16, pretrain_loop, save_log
from tasks.translation.loaders import read_parallel

DATA = Path(__file__).parents[1] / "data" / "multi30k"
BASE_DIR = Path(__file__).parents[1] / "data" / "translation_base"
SPECIALS = ["<pad>", "</s>", "<unk>"]


@dataclass
class Recipe:
    seed: int = 0
    base_pairs: int = 22_000  # of the 29 000 training pairs; the rest is for the adapters
    vocab_size: int = 8_000
    d_model: int = 256
    layers: int = 3
    heads: int = 4
    ffn_dim: int = 1024
    dropout: float = 0.1
    max_tokens: int = 2_500  # target tokens per batch
    steps: int = 2_000
    lr: float = 1e-3
    warmup: int = 400
    label_smoothing: float = 0.1
    max_len: int = 64


def base_split(n: int, base_pairs: int, seed: int = 0) -> tuple[list[int], list[int]]:
    """Seeded disjoint (base, adapter) index lists over the ``n`` training pairs."""
    order = list(range(n))
    random.Random(seed).shuffle(order)
    return sorted(order[:base_pairs]), sorted(order[base_pairs:])


def train_tokenizer(texts: list[str], vocab_size: int):
    """Joint BPE over both languages; Metaspace keeps decoding lossless (detokenised text)."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Metaspace(), pre_tokenizers.Punctuation(behavior="isolated")]
    )
    tok.decoder = decoders.Metaspace()
    tok.train_from_iterator(texts, trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIALS))
    tok.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 1)])
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="<pad>", eos_token="</s>", unk_token="<unk>",
        model_max_length=512,
    )


def build_model(r: Recipe, vocab_size: int):
    from transformers import MarianConfig, MarianMTModel

    config = MarianConfig(
        vocab_size=vocab_size, decoder_vocab_size=vocab_size, d_model=r.d_model,
        encoder_layers=r.layers, decoder_layers=r.layers,
        encoder_attention_heads=r.heads, decoder_attention_heads=r.heads,
        encoder_ffn_dim=r.ffn_dim, decoder_ffn_dim=r.ffn_dim, activation_function="relu",
        dropout=r.dropout, attention_dropout=0.0, activation_dropout=0.0,
        max_position_embeddings=128, pad_token_id=0, eos_token_id=1, decoder_start_token_id=0,
        forced_eos_token_id=1, scale_embedding=True, share_encoder_decoder_embeddings=True,
        tie_word_embeddings=True, max_length=r.max_len, num_beams=1,
    )
    torch.manual_seed(r.seed)
    return MarianMTModel(config)


def token_batches(src: list[list[int]], tgt: list[list[int]], max_tokens: int, seed: int) -> list[list[int]]:
    """Length-bucketed batches (similar target lengths together), in a seeded order."""
    rng = random.Random(seed)
    order = sorted(range(len(tgt)), key=lambda i: (len(tgt[i]), len(src[i]), rng.random()))
    batches, current, longest = [], [], 0
    for i in order:
        longest_if = max(longest, len(tgt[i]), len(src[i]))
        if current and longest_if * (len(current) + 1) > max_tokens:
            batches.append(current)
            current, longest_if = [], max(len(tgt[i]), len(src[i]))
        current.append(i)
        longest = longest_if
    if current:
        batches.append(current)
    rng.shuffle(batches)
    return batches


def collate(ids: list[int], src, tgt) -> dict[str, torch.Tensor]:
    input_ids = pad([src[i] for i in ids], 0)
    labels = pad([tgt[i] for i in ids], -100)
    return {"input_ids": input_ids, "attention_mask": (input_ids != 0).long(), "labels": labels}


@torch.no_grad()
def greedy_bleu(model, tokenizer, examples: list[Example], batch_size: int = 100) -> float:
    """sacreBLEU corpus BLEU of greedy translations against every reference of each example."""
    from harness.metrics.text import corpus_bleu

    hyps = []
    for start in range(0, len(examples), batch_size):
        enc = tokenizer([e.source for e in examples[start:start + batch_size]], return_tensors="pt",
                        padding=True)
        out = model.generate(**enc, num_beams=1, do_sample=False, max_new_tokens=64)
        hyps += tokenizer.batch_decode(out, skip_special_tokens=True)
    return corpus_bleu(hyps, [e.references for e in examples])


def pretrain(r: Recipe, work: Path, output: Path, checkpoint_every: int = 250, eval_every: int = 500):
    train = read_parallel(DATA / "train.en.gz", [DATA / "train.de.gz"])
    base_ids, _ = base_split(len(train), r.base_pairs, r.seed)
    test_sets = {"val": read_parallel(DATA / "val.en.gz", [DATA / "val.de.gz"]),
                 "test_2016_flickr": read_parallel(DATA / "test_2016_flickr.en.gz",
                                                   [DATA / "test_2016_flickr.de.gz"])}
    pairs = [(train[i].source, train[i].references[0]) for i in base_ids]
    dev = ("val300_bleu", test_sets["val"][:300])
    fit(r, pairs, dev, test_sets, work, output, checkpoint_every, eval_every)


def fit(r: Recipe, pairs: list[tuple[str, str]], dev: tuple[str, list[Example]],
        test_sets: dict[str, list[Example]], work: Path, output: Path, checkpoint_every: int = 250,
        eval_every: int = 500) -> None:
    """Train a base on (source, target) ``pairs`` by recipe ``r`` (resumable in ``work``),
    log greedy BLEU on ``dev = (name, examples)`` as it goes, export it to ``output`` with
    its greedy BLEU on each of ``test_sets``."""
    src_text, tgt_text = [s for s, _ in pairs], [t for _, t in pairs]
    tok_dir = work / "tokenizer"
    if tok_dir.exists():
        from transformers import PreTrainedTokenizerFast
        tokenizer = PreTrainedTokenizerFast.from_pretrained(tok_dir)
    else:
        tokenizer = train_tokenizer(src_text + tgt_text, r.vocab_size)
        tokenizer.save_pretrained(tok_dir)
    src = [s[: r.max_len] for s in tokenizer(src_text)["input_ids"]]
    tgt = [t[: r.max_len] for t in tokenizer(tgt_text)["input_ids"]]
    model = build_model(r, len(tokenizer))
    epoch_batches: dict[int, list[list[int]]] = {}

    def batch_at(s: int) -> dict[str, torch.Tensor]:
        # epoch e's batches are a pure function of (seed, e): resuming replays the same order
        epoch, total = 0, 0
        while True:
            if epoch not in epoch_batches:
                epoch_batches[epoch] = token_batches(src, tgt, r.max_tokens, r.seed * 1000 + epoch)
            n = len(epoch_batches[epoch])
            if s < total + n:
                return collate(epoch_batches[epoch][s - total], src, tgt)
            total, epoch = total + n, epoch + 1

    def evaluate(m) -> dict[str, float]:
        return {dev[0]: greedy_bleu(m, tokenizer, dev[1])}

    schedule = Schedule(steps=r.steps, lr=r.lr, warmup=r.warmup, label_smoothing=r.label_smoothing,
                        seed=r.seed, checkpoint_every=checkpoint_every, eval_every=eval_every)
    log_rows = pretrain_loop(model, batch_at, schedule, work, evaluate)
    export(model, tokenizer, r, log_rows, output, test_sets)


def export(model, tokenizer, r, log_rows: list[dict], output: Path,
           test_sets: dict[str, list[Example]]) -> None:
    """fp16 safetensors + tokenizer + log; the test BLEU is measured on the fp16 weights."""
    reloaded = export_fp16(model, output, tokenizer)
    summary = {"recipe": asdict(r), "parameters": sum(p.numel() for p in reloaded.parameters())}
    for name, examples in test_sets.items():
        summary[f"greedy_bleu_{name}"] = round(greedy_bleu(reloaded, tokenizer, examples), 2)
    (output / "training_summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    save_log(log_rows, output / "training_log.csv")
    print(json.dumps(summary, indent=2))


def cli(doc: str, pretrain_fn, recipe: type, output: Path, work: str, argv=None) -> None:
    """The command line of a base's pre-training script (this one's and Tatoeba's)."""
    p = argparse.ArgumentParser(description=doc.split("\n")[0])
    p.add_argument("--work", type=Path, default=Path(work))
    p.add_argument("--output", type=Path, default=output)
    p.add_argument("--steps", type=int, default=recipe.steps)
    p.add_argument("--checkpoint-every", type=int, default=250)
    p.add_argument("--eval-every", type=int, default=500)
    a = p.parse_args(argv)
    pretrain_fn(recipe(steps=a.steps), a.work, a.output, a.checkpoint_every, a.eval_every)


if __name__ == "__main__":
    cli(__doc__, pretrain, Recipe, BASE_DIR, ".mclbench_cache/translation_base")
