"""What the decoder reads of Whisper's 30 s window: the clip's 2 s or all of it, side by side.

Whisper's encoder always encodes 30 s (1 500 output frames); the generated clips last 2 s.
With ``encoder_memo`` the frozen encoder's output is computed once per clip and process
(``tasks/captioning/encoder_memo.py``), so a step costs the decoder only, and
``encoder_seconds`` keeps the first frames of that output for the decoder's cross-attention.
On Whisper base (``configs/pretrained/audio_whisper.yaml``'s settings: K hypotheses of rank
8 on the decoder's attention and MLP, batch B), in one process:

  train step   sequence NLL of B training pairs + WTA backward + AdamW step
  decode       greedy decoding of K candidates for B test clips
  val NLL      the base's mean NLL of the validation captions (no adapters: the window's
               effect on the model itself)

each with the decoder reading 2 s (100 frames) and the full 30 s (1 500 frames). The memo
is filled in the warm-up rounds (the encoder's cost is the same either way and is not
timed); the two windows alternate within each round. Ratio = full median / 2 s median.

    python benchmarks/encoder_window.py [--base whisper-base] [--k 3] [--batch 16] [--repeats 5]
                                        [--json FILE]
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

from encoder_once import lora_steps  # noqa: E402  (the script's own folder is on the path)

TARGETS = ["model.decoder.*.q_proj", "model.decoder.*.k_proj", "model.decoder.*.v_proj",
           "model.decoder.*.out_proj", "model.decoder.*.fc1", "model.decoder.*.fc2"]
WARMUP = 2
WINDOWS = {"2s": 2.0, "30s": 0.0}  # encoder_seconds: 0 keeps the whole window


def workloads(base: str, seconds: float, k: int, batch: int):
    """``{"train": step(), "decode": step()}`` and the base's validation NLL for one window."""
    from methods.lora.fast import FastMultiLoRAModel
    from methods.lora.model import MultiLoRAConfig
    from tasks.captioning.audio import AudioCaptioningConfig, AudioCaptioningTask

    task = AudioCaptioningTask(AudioCaptioningConfig(backbone=base, encoder_memo=True,
                                                     encoder_seconds=seconds, num_validation=25))
    model = FastMultiLoRAModel(task.load_backbone(task.source), MultiLoRAConfig(k, 8, 16.0, 0.0, TARGETS))
    validation = task.validation_set()
    model.eval()
    with torch.no_grad():  # B = 0: every hypothesis is the base
        base_nll = float(model.sequence_nll(dict(validation.batch(torch.arange(len(validation))))).mean())
    return lora_steps(model, task, batch), base_nll


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--base", default="whisper-base", help="a base name, folder or hub id; '' for "
                   "the task's committed Whisper-style base (the smoke test)")
    p.add_argument("--k", type=int, default=3)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--json", help="write the medians, ratios and NLLs here")
    args = p.parse_args()
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    print(f"{args.base or 'the committed base'}, K = {args.k}, batch {args.batch}, {args.repeats} "
          f"alternating repeats after {WARMUP} warm-ups; torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads\n")
    loaded = {w: workloads(args.base, s, args.k, args.batch) for w, s in WINDOWS.items()}
    out: dict[str, dict] = {}
    for work in ("train", "decode"):
        times: dict[str, list[float]] = {w: [] for w in WINDOWS}
        for i in range(WARMUP + args.repeats):
            for w in WINDOWS:
                t = time.perf_counter()
                loaded[w][0][work]()
                if i >= WARMUP:
                    times[w].append(time.perf_counter() - t)
        med = {w: statistics.median(t) for w, t in times.items()}
        out[work] = {"min_s": {w: min(t) for w, t in times.items()}, "median_s": med,
                     "ratio": med["30s"] / med["2s"]}
        print(f"{work:<7} 2 s: min {min(times['2s']):.3f} med {med['2s']:.3f} s   "
              f"30 s: min {min(times['30s']):.3f} med {med['30s']:.3f} s   ratio {out[work]['ratio']:.2f}")
        sys.stdout.flush()
    out["base_validation_nll"] = {w: loaded[w][1] for w in WINDOWS}
    print(f"base validation NLL: 2 s {out['base_validation_nll']['2s']:.4f}, "
          f"30 s {out['base_validation_nll']['30s']:.4f}")
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2) + "\n")
        print(f"written to {args.json}")


if __name__ == "__main__":
    main()
