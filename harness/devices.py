"""Where models run and in what precision: ``--device`` and a task's ``dtype``.

``auto`` is the first CUDA device when torch sees one, else the CPU. A device the machine
lacks is a one-line error before any work. The device is part of the train and decode
keys when it is not the CPU (a GPU's kernels round differently, so its results are its
own); the dtype is part of the backbone's key (the pretrained task family's ``backbone_spec``).
"""

from __future__ import annotations

import logging
import re

import torch

from harness.errors import MCLBenchError

log = logging.getLogger(__name__)

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


class DeviceError(MCLBenchError, ValueError):
    pass


def resolve_device(name: str) -> str:
    """``auto|cpu|cuda|cuda:N|mps`` -> a torch device string this machine has."""
    name = name.strip().lower()
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cpu":
        return name
    if re.fullmatch(r"cuda(:\d+)?", name):
        if not torch.cuda.is_available():
            raise DeviceError(f"--device {name}: torch sees no CUDA device here (torch "
                              f"{torch.__version__}); use --device cpu or auto")
        index = int(name.partition(":")[2] or 0)
        if index >= torch.cuda.device_count():
            raise DeviceError(f"--device {name}: this machine has {torch.cuda.device_count()} "
                              f"CUDA device(s), numbered from 0")
        return name
    if name == "mps":
        if not torch.backends.mps.is_available():
            raise DeviceError("--device mps: the Apple MPS backend is not available here; use --device cpu")
        return name
    raise DeviceError(f"--device {name!r}: expected auto, cpu, cuda, cuda:N or mps")


def device_key(device: str) -> dict[str, str]:
    """What a stage key records of the device: nothing on the CPU, else its type."""
    kind = torch.device(device).type
    return {} if kind == "cpu" else {"device": kind}


def is_out_of_memory(exc: BaseException) -> bool:
    """A device (or host) allocation failure that a smaller batch may avoid."""
    return isinstance(exc, torch.OutOfMemoryError) or (
        isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower())


def free_cached_memory() -> None:
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def in_batches(items: list, size: int, work, desc: str) -> list:
    """``work(batch)`` over consecutive batches of ``items`` (a list of results per item),
    with a progress bar; a batch that runs out of memory is retried at half the size (and
    later batches keep that size) down to one item, then a one-line error."""
    from harness.progress import progress

    out: list = []
    with progress(total=len(items), desc=desc, unit="input") as bar:
        while len(out) < len(items):
            batch = items[len(out):len(out) + size]
            try:
                results = work(batch)
            except RuntimeError as exc:  # torch.OutOfMemoryError is one
                if not is_out_of_memory(exc):
                    raise
                free_cached_memory()
                if size == 1:
                    raise DeviceError(f"{desc}: out of memory with a single input per batch; use "
                                      "a smaller dtype (task.dtype=bfloat16), a quantised base "
                                      "(task.load_in_4bit=true) or a larger device") from None
                size //= 2
                log.warning("%s: out of memory; retrying with batches of %d", desc, size)
                continue
            out.extend(results)
            bar.update(len(batch))
    return out


def to_device(model, device: str):
    """``model`` on ``device``; a quantised model stays where bitsandbytes placed it, and a
    backbone that is no module (a plugin's stand-in, None) is returned as it is."""
    placed = getattr(model, "is_quantized", False) or getattr(model, "hf_device_map", None)
    if placed or not hasattr(model, "to"):
        return model
    return model.to(device)
