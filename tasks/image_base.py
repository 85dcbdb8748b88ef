"""Pre-train the image-captioning task's offline base once: a small ViT → GPT-2 captioner.

The default image-captioning run loads the committed result (``tasks/data/image_base/``);
this seeded script made it and re-creates it::

    python -m tasks.image_base --work .mclbench_cache/image_base

Data: the generated scenes of ``tasks/data/scenes`` (``tasks/image_scenes.py``); the base
learns from scenes ``[0, base_scenes)``, the adapters from the next ``adapter_scenes``, and
the rest is the test split. Every (image, caption) pair is one training example.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from harness.pretraining import Schedule, pretrain_loop

SCENES = Path(__file__).parent / "data" / "scenes"
BASE_DIR = Path(__file__).parent / "data" / "image_base"
SPECIALS = ["<pad>", "<s>", "</s>", "<unk>"]


@dataclass
class ImageBaseRecipe:
    seed: int = 0
    base_scenes: int = 2000
    adapter_scenes: int = 700
    hidden: int = 192
    encoder_layers: int = 4
    decoder_layers: int = 3
    heads: int = 4
    patch: int = 8
    batch_size: int = 64
    steps: int = 2000
    lr: float = 1e-3
    warmup: int = 200
    label_smoothing: float = 0.1


def load_scenes(folder: Path = SCENES):
    """``(pixels uint8 (S, 64, 64, 3), captions per scene, scenes.json rows)``."""
    from PIL import Image

    from harness.caption_loaders import read_coco_captions

    examples = read_coco_captions(folder / "captions.json", folder / "images")
    pixels = np.stack([np.asarray(Image.open(e.source).convert("RGB")) for e in examples])
    return pixels, [e.references for e in examples], json.loads((folder / "scenes.json").read_text())


def split(r: ImageBaseRecipe, n: int) -> tuple[range, range, range]:
    base = range(r.base_scenes)
    adapters = range(r.base_scenes, r.base_scenes + r.adapter_scenes)
    return base, adapters, range(r.base_scenes + r.adapter_scenes, n)


def train_tokenizer(captions: list[str]):
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


def build_model(r: ImageBaseRecipe, vocab_size: int, image_size: int = 64):
    from transformers import GPT2Config, VisionEncoderDecoderConfig, VisionEncoderDecoderModel, ViTConfig

    vit = ViTConfig(image_size=image_size, patch_size=r.patch, num_channels=3, hidden_size=r.hidden,
                    num_hidden_layers=r.encoder_layers, num_attention_heads=r.heads,
                    intermediate_size=2 * r.hidden, hidden_dropout_prob=0.1)
    gpt2 = GPT2Config(vocab_size=vocab_size, n_positions=32, n_embd=r.hidden, n_layer=r.decoder_layers,
                      n_head=r.heads, add_cross_attention=True, is_decoder=True, bos_token_id=1,
                      eos_token_id=2, pad_token_id=0, resid_pdrop=0.1, embd_pdrop=0.1, attn_pdrop=0.0)
    torch.manual_seed(r.seed)
    model = VisionEncoderDecoderModel(VisionEncoderDecoderConfig.from_encoder_decoder_configs(vit, gpt2))
    for cfg in (model.config, model.generation_config):
        cfg.decoder_start_token_id, cfg.pad_token_id, cfg.eos_token_id = 1, 0, 2
    model.generation_config.max_new_tokens = 20
    return model


def image_processor():
    """Pixels in [-1, 1], no resizing: what the base was trained on (slow ViT processor:
    Pillow and numpy only)."""
    from transformers import ViTImageProcessorPil

    return ViTImageProcessorPil(do_resize=False, do_rescale=True, do_normalize=True,
                             image_mean=[0.5] * 3, image_std=[0.5] * 3)


def to_pixel_values(pixels: np.ndarray) -> torch.Tensor:
    """uint8 ``(B, H, W, 3)`` → float ``(B, 3, H, W)`` in [-1, 1], as :func:`image_processor`."""
    return torch.from_numpy(pixels).permute(0, 3, 1, 2).float().div(255).sub(0.5).div(0.5)


@torch.no_grad()
def greedy_captions(model, tokenizer, pixels: np.ndarray, batch_size: int = 100) -> list[str]:
    out = []
    for start in range(0, len(pixels), batch_size):
        seqs = model.generate(pixel_values=to_pixel_values(pixels[start:start + batch_size]),
                              num_beams=1, do_sample=False, max_new_tokens=20)
        out += [t.strip() for t in tokenizer.batch_decode(seqs, skip_special_tokens=True)]
    return out


def multi_ref_bleu(hyps: list[str], refs: list[list[str]]) -> float:
    from harness.metrics.text import corpus_bleu

    return corpus_bleu(hyps, refs)


def pretrain(r: ImageBaseRecipe, work: Path, output: Path) -> dict:
    pixels, captions, _ = load_scenes()
    base, adapters, test = split(r, len(pixels))
    tok_dir = work / "tokenizer"
    if tok_dir.exists():
        from transformers import PreTrainedTokenizerFast
        tokenizer = PreTrainedTokenizerFast.from_pretrained(tok_dir)
    else:
        tokenizer = train_tokenizer([c for i in base for c in captions[i]])
        tokenizer.save_pretrained(tok_dir)
    pairs = [(i, tokenizer(c)["input_ids"]) for i in base for c in captions[i]]
    model = build_model(r, len(tokenizer))

    def batch_at(step: int) -> dict[str, torch.Tensor]:
        # consecutive slices of a seeded permutation per epoch: a pure function of the step
        per_epoch = len(pairs) // r.batch_size
        epoch, offset = divmod(step, per_epoch)
        order = np.random.default_rng([r.seed, epoch]).permutation(len(pairs))
        chosen = [pairs[k] for k in order[offset * r.batch_size:(offset + 1) * r.batch_size]]
        width = max(len(ids) for _, ids in chosen)
        labels = torch.tensor([ids + [-100] * (width - len(ids)) for _, ids in chosen])
        return {"pixel_values": to_pixel_values(pixels[[i for i, _ in chosen]]), "labels": labels}

    monitor = list(adapters)[:200]  # scenes the base never sees; for the curve only

    def evaluate(m) -> dict[str, float]:
        hyps = greedy_captions(m, tokenizer, pixels[monitor])
        return {"monitor200_bleu": multi_ref_bleu(hyps, [captions[i] for i in monitor])}

    schedule = Schedule(steps=r.steps, lr=r.lr, warmup=r.warmup, label_smoothing=r.label_smoothing,
                        seed=r.seed, checkpoint_every=250, eval_every=250)
    log = pretrain_loop(model, batch_at, schedule, work, evaluate, desc="pre-train image base")
    return export(model, tokenizer, r, log, output, pixels, captions, base, test)


def export(model, tokenizer, r, log, output: Path, pixels, captions, base, test) -> dict:
    """fp16 weights, tokenizer, processor, log; greedy captions scored on the test split
    against a caption-frequency baseline (the most frequent training caption, for all)."""
    from collections import Counter

    from transformers import VisionEncoderDecoderModel

    from harness.metrics import coco

    output.mkdir(parents=True, exist_ok=True)
    model.half().save_pretrained(output, safe_serialization=True)
    tokenizer.save_pretrained(output)
    image_processor().save_pretrained(output)
    reloaded = VisionEncoderDecoderModel.from_pretrained(output, dtype=torch.float32).eval()
    refs = [captions[i] for i in test]
    hyps = greedy_captions(reloaded, tokenizer, pixels[list(test)])
    frequent = Counter(c for i in base for c in captions[i]).most_common(1)[0][0]
    values, _ = coco.coco_flavours([[h] for h in hyps], refs, ["cider_d", "bleu_4"])
    baseline, _ = coco.coco_flavours([[frequent] for _ in hyps], refs, ["cider_d", "bleu_4"])
    summary = {
        "recipe": asdict(r), "parameters": sum(p.numel() for p in reloaded.parameters()),
        "test_scenes": len(test),
        "greedy": {k.split("/")[1]: round(v, 4) for k, v in values.items() if k.startswith("top1/")},
        "caption_frequency_baseline": {"caption": frequent, **{k.split("/")[1]: round(v, 4)
                                       for k, v in baseline.items() if k.startswith("top1/")}},
        "greedy_examples": [{"references": refs[k], "greedy": hyps[k]} for k in range(3)],
    }
    (output / "training_summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    keys = list(log[0])
    (output / "training_log.csv").write_text(
        ",".join(keys) + "\n" + "".join(",".join(str(row[k]) for k in keys) + "\n" for row in log))
    print(json.dumps(summary, indent=2))
    return summary


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--work", type=Path, default=Path(".mclbench_cache/image_base"))
    p.add_argument("--output", type=Path, default=BASE_DIR)
    p.add_argument("--steps", type=int, default=ImageBaseRecipe.steps)
    a = p.parse_args(argv)
    pretrain(ImageBaseRecipe(steps=a.steps), a.work, a.output)


if __name__ == "__main__":
    main()
