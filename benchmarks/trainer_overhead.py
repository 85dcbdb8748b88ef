"""The single-process trainer did not get slower when it learned accelerate.

``methods.lora.trainer.train_adapters`` (``harness/training.py`` until 01f9bd6) gained
multi-process support (accelerate) and gradient accumulation; this times its default path
(one process, one micro-batch) side by side, in one process, with

    previous  train_adapters as it was at --against (default 9de58c3, read with `git show`)
    bare      the plainest loop: lr, batch, sequence_nll, objective, backward, clip, AdamW

on the Markov task's backbone with LoRA-MCL (K = 2, rank 4), checkpoints off, the variants
alternating ``--repeats`` times. Prints min and median seconds per run and the ratios of
medians to ``trainer`` (the current code): > 1 means the other is slower.

    python benchmarks/trainer_overhead.py [--steps 100] [--repeats 5] [--against REV]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch

from methods.lora.fast import FastMultiLoRAModel
from methods.lora.model import MultiLoRAConfig
from methods.lora.trainer import TrainSettings, batch_indices, lr_at, train_adapters
from methods.lora_mcl import mcl_loss
from tasks.markov import MarkovConfig, MarkovTask


def fresh_model(task: MarkovTask) -> FastMultiLoRAModel:
    torch.manual_seed(0)
    return FastMultiLoRAModel(task.build_backbone(0), MultiLoRAConfig(
        num_hypotheses=2, rank=4, alpha=8.0, target_modules=["q_proj", "k_proj", "v_proj", "out_proj"]))


def objective(nll: torch.Tensor, step: int) -> torch.Tensor:
    return mcl_loss(nll, "annealed", step)


def previous_trainer(rev: str):
    """``train_adapters`` of the commit ``rev``, loaded as a module of its own."""
    root = Path(__file__).resolve().parents[1]
    source = subprocess.run(["git", "show", f"{rev}:harness/training.py"], cwd=root,
                            capture_output=True, text=True, check=True).stdout
    path = Path(tempfile.mkdtemp()) / "previous_training.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("previous_training", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["previous_training"] = module
    spec.loader.exec_module(module)
    return module


def timed_trainer(train, settings_class):
    def run(task, settings) -> None:
        model = fresh_model(task)
        with tempfile.TemporaryDirectory() as work:
            train(model, task.training_set(), settings_class(**{
                k: getattr(settings, k) for k in settings_class.__dataclass_fields__}),
                objective, 0, Path(work))
    return run


def bare(task, settings) -> None:
    model = fresh_model(task)
    data = task.training_set()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=settings.lr)
    model.train()
    for step in range(settings.steps):
        torch.manual_seed(step)
        for group in opt.param_groups:
            group["lr"] = lr_at(step, settings)
        batch = data.batch(batch_indices(step, settings.batch_size, len(data), 0))
        loss = objective(model.sequence_nll(batch), step)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, settings.grad_clip)
        opt.step()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--against", default="9de58c3", help="the commit of the previous trainer")
    p.add_argument("--json", help="write {variant: {min_s, median_s}} and the ratios here")
    args = p.parse_args()
    old = previous_trainer(args.against)
    variants = {"trainer": timed_trainer(train_adapters, TrainSettings),
                "previous": timed_trainer(old.train_adapters, old.TrainSettings), "bare": bare}
    task = MarkovTask(MarkovConfig())
    settings = replace(TrainSettings(steps=args.steps, batch_size=64, lr=5e-3),
                       checkpoint_every=10**9)  # no checkpoint writes: the loop only
    times: dict[str, list[float]] = {name: [] for name in variants}
    variants["trainer"](task, replace(settings, steps=5))  # warm-up (allocator, data)
    for _ in range(args.repeats):
        for name, fn in variants.items():
            start = time.perf_counter()
            fn(task, settings)
            times[name].append(time.perf_counter() - start)
    print(f"{'variant':<8} {'min s':>8} {'median s':>9}   ({args.steps} steps, batch 64, "
          f"{torch.get_num_threads()} threads, {args.repeats} runs each, alternating)")
    for name, ts in times.items():
        print(f"{name:<8} {min(ts):>8.3f} {statistics.median(ts):>9.3f}")
    ours = statistics.median(times["trainer"])
    ratios = {f"{name}_over_trainer": statistics.median(times[name]) / ours for name in ("previous", "bare")}
    for name, ratio in ratios.items():
        print(f"{name.replace('_over_', ' / ')} (medians): {ratio:.3f}")
    if args.json:
        out = {"steps": args.steps, "repeats": args.repeats, **ratios,
               **{name: {"min_s": min(ts), "median_s": statistics.median(ts)} for name, ts in times.items()}}
        Path(args.json).write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
