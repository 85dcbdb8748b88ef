"""The MLE loop that pre-trains a task's offline base model once (translation, captioning).

An encoder–decoder learns ``labels`` from its inputs (``input_ids`` or ``pixel_values``
or ``input_features``) with label-smoothed cross-entropy, AdamW (0.9, 0.98), linear
warm-up then inverse-square-root decay, gradient clipping at 1.0. Resumable: the batch of
step s is ``batch_at(s)`` (a pure function of s), the RNG is re-seeded every step and the
learning rate depends only on the step, so a run restarted from its checkpoint continues
exactly; and stopping at step s equals a run planned for s steps.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.nn import functional as F

from harness import checkpoints
from harness.progress import progress


@dataclass
class Schedule:
    steps: int
    lr: float
    warmup: int
    label_smoothing: float = 0.1
    seed: int = 0
    checkpoint_every: int = 250
    eval_every: int = 500


def lr_at(step: int, s: Schedule) -> float:
    """Linear warm-up, then inverse-square-root decay (the Transformer schedule)."""
    if step < s.warmup:
        return s.lr * (step + 1) / s.warmup
    return s.lr * math.sqrt(s.warmup / (step + 1))


def smoothed_nll(model, batch: dict[str, torch.Tensor], label_smoothing: float) -> torch.Tensor:
    """Label-smoothed token cross-entropy; decoder inputs are the labels shifted right."""
    labels = batch["labels"]
    start = model.config.decoder_start_token_id
    decoder_input_ids = torch.cat([torch.full_like(labels[:, :1], start), labels[:, :-1].clamp(min=0)], 1)
    inputs = {k: v for k, v in batch.items() if k != "labels"}
    logits = model(**inputs, decoder_input_ids=decoder_input_ids).logits
    return F.cross_entropy(logits.flatten(0, 1).float(), labels.flatten(),
                           ignore_index=-100, label_smoothing=label_smoothing)


def export_fp16(model, output: Path, *companions):
    """Save the weights as fp16 safetensors with their tokenizer / processor ``companions``;
    return the saved model reloaded in fp32, so what gets evaluated is what was committed."""
    output.mkdir(parents=True, exist_ok=True)
    model.half().save_pretrained(output, safe_serialization=True)
    for companion in companions:
        companion.save_pretrained(output)
    return type(model).from_pretrained(output, dtype=torch.float32).eval()


def save_log(rows: list[dict], path: Path) -> None:
    """The training curve (one row per evaluation) as CSV."""
    keys = list(rows[0])
    path.write_text(",".join(keys) + "\n" + "".join(",".join(str(r[k]) for k in keys) + "\n" for r in rows))


def pretrain_loop(model, batch_at: Callable[[int], dict[str, torch.Tensor]], s: Schedule, work: Path,
                  evaluate: Callable[[object], dict[str, float]], desc: str = "pre-train base") -> list[dict]:
    """Train ``model`` for ``s.steps`` steps; returns the log (one row per evaluation)."""
    work.mkdir(parents=True, exist_ok=True)
    opt = torch.optim.AdamW(model.parameters(), lr=s.lr, betas=(0.9, 0.98), eps=1e-9, weight_decay=1e-4)
    step, log_rows = 0, []
    ckpt = work / "checkpoint.pt"
    state = checkpoints.load(ckpt)  # verified, weights_only: the folder may be shared
    if state is not None:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        step, log_rows = state["step"], state["log"]
        print(f"resumed at step {step}")
    model.train()
    started, window = time.time(), []
    bar = progress(total=s.steps, initial=step, desc=desc, unit="step")
    while step < s.steps:
        torch.manual_seed(s.seed * 1_000_003 + step)
        for group in opt.param_groups:
            group["lr"] = lr_at(step, s)
        loss = smoothed_nll(model, batch_at(step), s.label_smoothing)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        window.append(loss.item())
        step += 1
        bar.update(1)
        if step % s.eval_every == 0 or step == s.steps:
            model.eval()
            with torch.no_grad():
                metrics = evaluate(model)
            model.train()
            log_rows.append({"step": step, "train_loss": round(sum(window) / len(window), 4),
                             **{k: round(v, 2) for k, v in metrics.items()}, "lr": lr_at(step - 1, s),
                             "seconds": round(time.time() - started, 1)})
            print(json.dumps(log_rows[-1]), flush=True)
            window = []
        if step % s.checkpoint_every == 0 or step == s.steps:
            checkpoints.save(ckpt, {"model": model.state_dict(), "optimizer": opt.state_dict(),
                                    "step": step, "log": log_rows})
    bar.close()
    model.eval()
    return log_rows
