"""The encoder run once per input instead of once per hypothesis, side by side.

On the committed image-captioning base (ViT encoder + GPT-2 decoder with cross-attention)
and audio-captioning base (Whisper-style), K LoRA-MCL hypotheses with adapters on the
decoder only (the paper's setting for LLaVA's vision tower), in one process:

  train step   sequence NLL of a batch of B training pairs + WTA backward + AdamW step
  decode       greedy decoding of K candidates for B test inputs

each timed on the old path (the encoder runs on all K·B rows: ``encode_once = False``) and
on the new one (it runs on the B inputs and its output is repeated). The two paths are
timed alternately, after a warm-up, so that drift of the machine hits both alike.
Ratios are old median / new median (> 1: the new path is faster).

    python benchmarks/encoder_once.py [--k 3] [--batch 32] [--repeats 7] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# the decoder's adapted layers only (not its output head): the encoder is adapter-free
WARMUP = 3  # untimed rounds: the first calls of a fresh process run several times slower here
DECODER_TARGETS = {"image_captioning": ["decoder.transformer.*"], "audio_captioning": ["model.decoder.*"]}


def workloads(task_name: str, k: int, batch: int):
    """``{"train": step(), "decode": step()}`` on the task's committed base, and the model."""
    import harness.registry as registry
    from methods.lora.fast import FastMultiLoRAModel
    from methods.lora.model import MultiLoRAConfig

    task_cls = registry.get_task(task_name)
    task = task_cls(task_cls.Config())
    model = FastMultiLoRAModel(task.load_backbone(task.source),
                           MultiLoRAConfig(k, 8, 16.0, 0.0, DECODER_TARGETS[task_name]))
    return model, lora_steps(model, task, batch)


def lora_steps(model, task, batch: int):
    """``{"train": step(), "decode": step()}`` of a LoRA-MCL ``model`` on ``task``: one WTA
    training step on the first ``batch`` training pairs (sequence NLL, backward, AdamW), and
    greedy decoding of its K candidates for the first ``batch`` test inputs."""
    from methods.lora_mcl import wta_loss

    torch.manual_seed(0)
    for n, p in model.named_parameters():  # B = 0 at init would make every hypothesis the base
        if "lora_B" in n:
            p.data.normal_(0, 0.01)
    train_batch = task.training_set().batch(torch.arange(batch))
    prompt = task.prompt_batch(task.test_examples()[:batch])
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-4)

    def train():
        model.train()
        torch.manual_seed(0)
        loss = wta_loss(model.sequence_nll(dict(train_batch)))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    @torch.no_grad()
    def decode():
        model.eval()
        return model.generate_hypotheses(dict(prompt), do_sample=False, **task.generation_kwargs())

    return {"train": train, "decode": decode}


def time_paths(model, step, repeats: int) -> dict[str, list[float]]:
    """Seconds per call of ``step`` on each path: ``WARMUP`` untimed rounds, then ``repeats``
    timed ones, the two paths alternating within each round."""
    times = {"old": [], "new": []}
    for i in range(WARMUP + repeats):
        for path in ("old", "new"):
            model.encode_once = path == "new"
            t = time.perf_counter()
            step()
            if i >= WARMUP:
                times[path].append(time.perf_counter() - t)
    return times


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--k", type=int, default=3)
    p.add_argument("--batch", type=int, default=32, help="inputs per step (default 32: the captioning "
                   "tasks' training batch; decoding batches are 64 by default)")
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--json", help="write the image-captioning ratios (and the audio ones) here")
    args = p.parse_args()
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    print(f"K = {args.k}, batch {args.batch}, {args.repeats} alternating repeats after a warm-up; "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads\n")
    header = f"{'task':<18}{'work':<8}{'old min':>9}{'old med':>9}{'new min':>9}{'new med':>9}{'ratio':>7}"
    print(header)
    print("-" * len(header))
    ratios: dict[str, dict[str, float]] = {}
    for task_name in DECODER_TARGETS:
        model, steps = workloads(task_name, args.k, args.batch)
        ratios[task_name] = {}
        for work, step in steps.items():
            t = time_paths(model, step, args.repeats)
            ratio = statistics.median(t["old"]) / statistics.median(t["new"])
            ratios[task_name][f"{work}_ratio"] = ratio
            print(f"{task_name:<18}{work:<8}{min(t['old']):>9.3f}{statistics.median(t['old']):>9.3f}"
                  f"{min(t['new']):>9.3f}{statistics.median(t['new']):>9.3f}{ratio:>7.2f}")
            sys.stdout.flush()
    print("\nratio = old path median / new path median (> 1: running the encoder once is faster)")
    if args.json:
        out = {**ratios["image_captioning"], "audio": ratios["audio_captioning"]}
        Path(args.json).write_text(json.dumps(out, indent=2) + "\n")
        print(f"written to {args.json}: {out}")


if __name__ == "__main__":
    main()
