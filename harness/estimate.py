"""``mclbench estimate``: what each cell of a run needs in memory, before any download.

Per cell, from the backbone's weightless skeleton (its config on the meta device: a local
checkpoint or the committed base is read from disk, a hub id fetches ``config.json`` only)
and the method's adapted model built on it:

- ``base_params`` / ``adapter_params``: parameters of the frozen base and of the adapters;
- ``weights``: the base in the task's ``dtype``; with ``load_in_4bit`` / ``load_in_8bit`` its
  linear layers (not the output head) at 4.13 / 8.06 bits per weight (NF4 with double
  quantisation: an 8-bit scale per 64 weights and an fp32 one per 256 of those; LLM.int8:
  its per-row scales neglected), the rest in ``dtype``;
- ``adapter_state``: adapters, their gradients and AdamW's two moments, all fp32: 16 bytes
  per adapter parameter;
- ``activations``: what the backward keeps for one micro-batch of K·B rows of ``seq_len``
  tokens — 34·s·rows·h bytes per layer at 16 bits (Korthikanti et al., 2022, without the
  attention-matrix term: SDPA does not keep it), scaled to the dtype; with gradient
  checkpointing one hidden state per layer plus one layer's full set;
- ``logits``: B rows' fp32 logits and their softmax, plus the K·B·s·h gradient the head NLL
  keeps. The head pass is transient and runs in chunks of up to 2²⁷ logits over the target
  positions of all K hypotheses, so its real peak is min(K·B·targets·V, 2²⁷) logits: at
  most K× this term where the vocabulary is small, at most 1 GiB for a large one;
- ``kv_cache``: decoding: keys and values of every layer for the decode batch's rows
  (``decode_batch_size`` × the method's rows per input) over ``seq_len`` tokens;
- ``train`` = weights + adapter_state + activations + logits; ``decode`` = weights + kv_cache.

These are estimates (no allocator overhead, framework buffers or fragmentation), meant to
tell which GPU a configuration needs, not to the last MiB.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from torch import nn

from harness.config import RunSpec
from harness.plan import resolve

BYTES = {"float32": 4, "bfloat16": 2, "float16": 2}
QUANTISED_BITS = {"load_in_4bit": 4 + 8 / 64 + 32 / (64 * 256), "load_in_8bit": 8}


@dataclass
class TextDims:
    layers: int
    hidden: int
    heads: int
    kv_heads: int
    vocab: int


def text_dims(config) -> TextDims:
    """The language model's sizes from a ``transformers`` config (multimodal: its text part;
    encoder–decoder: both stacks' layers)."""
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    if getattr(config, "model_type", "") == "vision-encoder-decoder":
        text = config.decoder

    def first(*names, default=None):
        return next((getattr(text, n) for n in names if getattr(text, n, None) is not None), default)

    layers = first("num_hidden_layers", "n_layer", "num_layers", "decoder_layers")
    layers += getattr(text, "encoder_layers", 0) if getattr(text, "is_encoder_decoder", False) else 0
    heads = first("num_attention_heads", "n_head", "decoder_attention_heads", "num_heads")
    return TextDims(layers=layers, hidden=first("hidden_size", "n_embd", "d_model"), heads=heads,
                    kv_heads=first("num_key_value_heads", default=heads), vocab=first("vocab_size"))


def output_head(model: nn.Module) -> nn.Module | None:
    get = getattr(model, "get_output_embeddings", None)
    return get() if get is not None else None


def weight_bytes(model: nn.Module, dtype: str, quantisation: str | None) -> float:
    """The frozen base's weights: ``dtype``, or quantised linear layers (not the head)."""
    head = output_head(model)
    quantised = 0
    if quantisation:
        quantised = sum(m.weight.numel() for m in model.modules()
                        if isinstance(m, nn.Linear) and m is not head)
    total = sum(p.numel() for p in model.parameters())
    return (total - quantised) * BYTES[dtype] + quantised * QUANTISED_BITS.get(quantisation, 0) / 8


def cell_estimate(task, method, seed: int, seq_len: int) -> dict[str, Any] | None:
    """The memory figures of one cell (bytes), or None if its backbone has no skeleton yet."""
    skeleton = task.backbone_skeleton(seed)
    if skeleton is None:
        return None
    c = task.config
    dtype = getattr(c, "dtype", "float32")
    quantisation = next((k for k in ("load_in_4bit", "load_in_8bit") if getattr(c, k, False)), None)
    base_params = sum(p.numel() for p in skeleton.parameters())
    weights = weight_bytes(skeleton, dtype, quantisation)
    dims = text_dims(skeleton.config)
    out: dict[str, Any] = {"task": task.name, "method": method.name, "dtype": dtype,
                           "quantisation": quantisation or "none", "base_params": base_params,
                           "seq_len": seq_len}
    fp = method.footprint(skeleton)  # on the meta device too
    adapter_params = fp.trainable_params
    act_bytes = BYTES[dtype] if not quantisation else 2  # a quantised base computes in 16 bits
    train: dict[str, float] = {}
    if adapter_params:
        micro = fp.micro_batch
        rows = fp.rows_per_input * micro
        per_layer = 34 * seq_len * rows * dims.hidden * act_bytes / 2
        if fp.gradient_checkpointing:
            activations = dims.layers * seq_len * rows * dims.hidden * act_bytes + per_layer
        else:
            activations = dims.layers * per_layer
        logits = 2 * micro * seq_len * dims.vocab * 4 + rows * seq_len * dims.hidden * act_bytes
        train = {"adapter_state": adapter_params * 16, "activations": activations, "logits": logits}
    decode_rows = fp.decode_rows
    head_dim = dims.hidden // dims.heads
    kv_cache = 2 * dims.layers * decode_rows * seq_len * dims.kv_heads * head_dim * act_bytes
    out.update(adapter_params=adapter_params, weights=weights, **train, kv_cache=kv_cache,
               train=weights + sum(train.values()) if train else None, decode=weights + kv_cache)
    return out


def estimate(spec: RunSpec, seq_len: int) -> list[dict[str, Any]]:
    """:func:`cell_estimate` of every (task, method) of the run (seeds share the figures)."""
    rows, seen = [], set()
    for cell in resolve(spec, check_backbones=False):
        if (cell.task.name, cell.method.name) in seen:
            continue
        seen.add((cell.task.name, cell.method.name))
        try:
            row = cell_estimate(cell.task, cell.method, cell.seed, seq_len)
        except OSError as exc:
            raise OSError(f"{cell.task.name}: cannot read the backbone's config ({exc}); offline, "
                          "save its config.json in a folder and set task.backbone=<folder>") from None
        rows.append(row or {"task": cell.task.name, "method": cell.method.name,
                            "note": "backbone not built yet (rebuild_base): run once, then estimate"})
    return rows


GIB = 2**30


def table(rows: list[dict[str, Any]]) -> str:
    """The estimates as a Markdown table (GiB; parameters in millions)."""
    cols = ["weights", "adapter_state", "activations", "logits", "kv_cache", "train", "decode"]
    head = ["task", "method", "dtype", "quant", "base M", "adapter M", *[f"{c} GiB" for c in cols]]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * 4 + "---:|" * (len(head) - 4)]
    for r in rows:
        if "note" in r:
            lines.append(f"| {r['task']} | {r['method']} | {r['note']} |")
            continue
        gib = [f"{r[c] / GIB:.3f}" if r.get(c) is not None else "–" for c in cols]
        lines.append("| " + " | ".join([r["task"], r["method"], r["dtype"], r["quantisation"],
                                         f"{r['base_params'] / 1e6:.2f}", f"{r['adapter_params'] / 1e6:.3f}",
                                         *gib]) + " |")
    return "\n".join(lines)
