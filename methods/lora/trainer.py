"""The adapter trainer shared by every LoRA method (LoRA-MCL, LoRA-MLE, ...).

Resumable and deterministic by construction: the batch of step s is a pure function of
``(seed, s)`` (seeded epoch permutations), the RNG is re-seeded each step and the learning
rate is a pure function of the step, so a run restored from a checkpoint continues exactly
as if it had never stopped.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import torch

from harness import checkpoints
from harness.errors import MCLBenchError
from harness.probes import reference_nll
from harness.progress import progress
from harness.task import TrainingSet

_LOG = logging.getLogger("harness.training")  # the CLI prints the engine's log records, one line each

CHECKPOINT = "checkpoint.pt"


class TrainingDivergedError(MCLBenchError, RuntimeError):
    pass


@dataclass
class TrainSettings:
    steps: int
    batch_size: int
    lr: float
    weight_decay: float = 0.0
    warmup_fraction: float = 0.05
    grad_clip: float = 1.0
    grad_accum_steps: int = 1  # micro-batches per step: same batch, less memory
    log_every: int = 25
    checkpoint_every: int = 200
    eval_every: int = 0  # validation NLL every this many steps (and at the start and end); 0: never


def lr_at(step: int, s: TrainSettings) -> float:
    """Linear warm-up, then cosine decay to 10 % of the peak."""
    warmup = max(1, int(s.warmup_fraction * s.steps))
    if step < warmup:
        return s.lr * (step + 1) / warmup
    progress = (step - warmup) / max(1, s.steps - warmup)
    return s.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


def batch_indices(step: int, batch_size: int, n: int, seed: int) -> torch.Tensor:
    """Indices of step ``step``: consecutive slices of a fresh seeded permutation per epoch."""
    positions = torch.arange(step * batch_size, (step + 1) * batch_size)
    epochs, offsets = positions // n, positions % n
    out = torch.empty(batch_size, dtype=torch.long)
    for epoch in epochs.unique().tolist():
        perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed * 100_003 + epoch))
        sel = epochs == epoch
        out[sel] = perm[offsets[sel]]
    return out


def train_adapters(
    model,
    data: TrainingSet,
    settings: TrainSettings,
    objective: Callable[[torch.Tensor, int], torch.Tensor],
    seed: int,
    work_dir: Path,
    desc: str = "train",
    accelerator=None,
    validation: TrainingSet | None = None,
) -> dict:
    """Train the trainable parameters of ``model`` (a MultiLoRAModel) and return the history.

    ``objective(nll, step)`` maps the per-hypothesis sequence NLL ``(K, B)`` to a scalar
    (a mean over the batch). History: every ``log_every`` steps the mean loss, the learning
    rate and how many sequences each hypothesis won (lowest NLL) since the previous entry;
    with ``validation`` and ``eval_every``, ``val_step`` / ``val_nll``: the validation rows'
    oracle NLL (per row the best hypothesis's mean token NLL, averaged; K = 1: the NLL) before
    training and every ``eval_every`` steps — the curve that shows whether training flattened.

    With an ``accelerate.Accelerator`` over P processes, each process takes every P-th
    example of the step's batch and the model is wrapped by ``accelerator.prepare``
    (DDP, or what its config says): the averaged gradient is the whole batch's, so P
    processes follow the one-process run up to float rounding; loss and winner counts
    are reduced over processes, and only the main process writes checkpoints.
    """
    run = _Run.start_from(model, settings, work_dir, desc, accelerator)
    k = model.num_hypotheses
    wins = torch.zeros(k, dtype=torch.long)
    loss_sum, loss_n = 0.0, 0
    evaluate = validation is not None and settings.eval_every > 0 and run.rank == 0
    if evaluate and run.start == 0:
        _validate(model, validation, settings.batch_size, run.history, 0)
    model.train()
    bar = progress(total=settings.steps, initial=run.start, desc=desc, unit="step",
                   **({"disable": True} if run.rank else {}))  # one bar, the main process's
    for step in range(run.start, settings.steps):
        loss, won, lr = _optimizer_step(run, data, step, seed, settings, objective, accelerator, k, desc,
                                        work_dir)
        wins += won.cpu()
        loss_sum, loss_n = loss_sum + loss.item(), loss_n + 1
        done = step + 1
        if done % settings.log_every == 0 or done == settings.steps:
            for key, value in (("step", done), ("loss", loss_sum / loss_n), ("lr", lr),
                               ("winner_counts", wins.tolist())):
                run.history[key].append(value)
            bar.set_postfix(loss=f"{loss_sum / loss_n:.4f}")
            wins.zero_()
            loss_sum, loss_n = 0.0, 0
        if evaluate and (done % settings.eval_every == 0 or done == settings.steps):
            _validate(model, validation, settings.batch_size, run.history, done)
            bar.set_postfix(val_nll=f"{run.history['val_nll'][-1]:.4f}")
        if done % settings.checkpoint_every == 0 and done < settings.steps and run.rank == 0:
            _save_checkpoint(run.checkpoint, model, run.opt, run.history, done)
        bar.update(1)
    bar.close()
    model.eval()
    return run.history


@dataclass
class _Run:
    """One training run's optimiser and where it stands: resumed from its checkpoint, or fresh."""

    params: list[torch.nn.Parameter]
    opt: torch.optim.Optimizer
    forward: torch.nn.Module  # the model, or what ``accelerator.prepare`` wrapped it in
    device: torch.device
    checkpoint: Path
    history: dict[str, list]
    start: int  # the next step
    rank: int
    world: int

    @classmethod
    def start_from(cls, model, settings: TrainSettings, work_dir: Path, desc: str, accelerator) -> _Run:
        params = [p for p in model.parameters() if p.requires_grad]
        opt = torch.optim.AdamW(params, lr=settings.lr, weight_decay=settings.weight_decay)
        ckpt = work_dir / CHECKPOINT
        history, start = _resume(ckpt, model, opt)
        if start:
            _LOG.info(f"{desc}: resuming from the checkpoint at step {start} of {settings.steps} ({ckpt})")
        rank, world = (accelerator.process_index, accelerator.num_processes) if accelerator else (0, 1)
        if settings.batch_size % (world * settings.grad_accum_steps):
            raise ValueError(f"batch_size {settings.batch_size} must be a multiple of {world} processes × "
                             f"{settings.grad_accum_steps} gradient-accumulation steps")
        forward = model
        if accelerator is not None:
            forward, opt = accelerator.prepare(model, opt)
        device = next(model.parameters()).device
        return cls(params, opt, forward, device, ckpt, history, start, rank, world)


def _optimizer_step(run: _Run, data: TrainingSet, step: int, seed: int, settings: TrainSettings,
                    objective, accelerator, k: int, desc: str,
                    work_dir: Path) -> tuple[torch.Tensor, torch.Tensor, float]:
    """One step: the step's learning rate and batch (pure functions of the step), backward in
    micro-batches, clipping, the AdamW update; returns the loss and the winner counts (reduced
    over processes) and the learning rate."""
    torch.manual_seed(seed * 100_003 + step)  # dropout etc.: a function of the step
    lr = lr_at(step, settings)
    for group in run.opt.param_groups:
        group["lr"] = lr
    indices = batch_indices(step, settings.batch_size, len(data), seed)[run.rank::run.world]
    run.opt.zero_grad(set_to_none=True)
    loss, won = _accumulate(run.forward, data, indices, objective, step, settings, accelerator,
                            run.device, k, desc, work_dir)
    if settings.grad_clip:
        clip = torch.nn.utils.clip_grad_norm_ if accelerator is None else accelerator.clip_grad_norm_
        clip(run.params, settings.grad_clip)
    run.opt.step()
    if accelerator is not None:
        won = accelerator.reduce(won, "sum")
        loss = accelerator.reduce(loss, "mean")
    return loss, won, lr


def _resume(ckpt: Path, model, opt) -> tuple[dict[str, list], int]:
    """The history and the next step from the last intact checkpoint (adapters and optimizer
    restored), or a fresh history at step 0."""
    state = checkpoints.load(ckpt)  # None: none yet, or every one damaged (start afresh)
    if state is None:
        return {"step": [], "loss": [], "lr": [], "winner_counts": []}, 0
    model.load_state_dict(state["adapters"], strict=False)
    opt.load_state_dict(state["optimizer"])
    return state["history"], state["step"]


def _validate(model, data: TrainingSet, batch_size: int, history: dict, step: int) -> None:
    """Append the oracle NLL of every validation row at ``step`` to ``history``."""
    training = model.training
    model.eval()
    with torch.no_grad():
        nll = reference_nll(model, data, [0] * len(data), batch_size)["reference_nll"]  # (K, rows)
    model.train(training)
    history.setdefault("val_step", []).append(step)
    history.setdefault("val_nll", []).append(float(nll.min(0).mean()))


def _accumulate(forward, data: TrainingSet, indices: torch.Tensor, objective, step: int,
                settings: TrainSettings, accelerator, device, k: int, desc: str,
                work_dir: Path) -> tuple[torch.Tensor, torch.Tensor]:
    """Backward of one step's batch in ``grad_accum_steps`` micro-batches; returns the
    batch's loss and how many of its sequences each hypothesis won."""
    micro = settings.grad_accum_steps
    step_loss, won = torch.zeros((), device=device), torch.zeros(k, dtype=torch.long, device=device)
    for i, part in enumerate(indices.chunk(micro)):
        last = i == micro - 1
        # all-reduce the gradients once, after the last micro-batch
        sync = accelerator.no_sync(forward) if accelerator is not None and not last else nullcontext()
        with sync:
            batch = {name: t.to(device) for name, t in data.batch(part).items()}
            nll = forward(**batch)
            loss = objective(nll, step) / micro  # the micro-batches' mean: the batch's loss
            if not torch.isfinite(loss):
                raise TrainingDivergedError(
                    f"{desc}: loss is {loss.item()} at step {step}; lower the learning rate "
                    f"(now {settings.lr:g}, e.g. --set method.lr={settings.lr / 3:.2g}). "
                    f"The last checkpoint is kept in {work_dir}."
                )
            loss.backward() if accelerator is None else accelerator.backward(loss)
        step_loss += loss.detach()
        won += torch.bincount(nll.detach().argmin(0), minlength=k)
    return step_loss, won


def _save_checkpoint(path: Path, model, opt, history: dict, step: int) -> None:
    adapters = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    checkpoints.save(path, {"adapters": adapters, "optimizer": opt.state_dict(), "history": history,
                            "step": step})
