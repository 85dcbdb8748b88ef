"""CTranslate2 Whisper models (``model.bin``) as ``transformers`` state dicts, without CTranslate2.

The ``model.bin`` layout (binary version 6): u32 version; the spec name (a string: u16 length
counting its NUL, then the bytes); u32 spec revision; u32 number of variables; per variable:
its name (string), u8 rank, u32 × rank dimensions, u8 dtype, u32 byte count, the raw data;
then u32 number of aliases and (alias, target) string pairs. :func:`read_model_bin` parses it;
:func:`whisper_state_dict` maps a ``WhisperSpec``'s variables onto
``WhisperForConditionalGeneration``: the fused self-attention ``linear_0`` splits into q, k, v
(CTranslate2 stores a zero k bias where HF's ``k_proj`` has none); cross-attention ``linear_0``
is q, ``linear_1`` the fused k and v, ``linear_2`` the output; ``gamma``/``beta`` are a layer
norm's weight/bias; the output projection is tied to the token embeddings.
"""

from __future__ import annotations

import re
import struct
from pathlib import Path
from typing import BinaryIO

import numpy as np
import torch

# CTranslate2's DataType enum (include/ctranslate2/types.h)
DTYPES = {0: np.float32, 1: np.int8, 2: np.int16, 3: np.int32, 4: np.float16}
BF16 = 5
SUPPORTED_VERSIONS = (5, 6)


class ModelFormatError(ValueError):
    """A ``model.bin`` that is not a CTranslate2 Whisper model this reader understands."""


def _string(f: BinaryIO) -> str:
    (length,) = struct.unpack("<H", f.read(2))
    return f.read(length).rstrip(b"\0").decode("utf-8")


def read_model_bin(path: str | Path) -> tuple[str, dict[str, np.ndarray]]:
    """``(spec name, {variable name: array})`` of a CTranslate2 ``model.bin``; aliases map to
    the array of their target."""
    variables: dict[str, np.ndarray] = {}
    with open(path, "rb") as f:
        (version,) = struct.unpack("<I", f.read(4))
        if version not in SUPPORTED_VERSIONS:
            raise ModelFormatError(f"{path}: CTranslate2 binary version {version}; this reader reads "
                                   f"{' and '.join(map(str, SUPPORTED_VERSIONS))}")
        spec = _string(f)
        f.read(4)  # spec revision
        (count,) = struct.unpack("<I", f.read(4))
        for _ in range(count):
            name = _string(f)
            (rank,) = struct.unpack("<B", f.read(1))
            shape = struct.unpack(f"<{rank}I", f.read(4 * rank))
            dtype_id, nbytes = struct.unpack("<BI", f.read(5))
            raw = f.read(nbytes)
            if len(raw) != nbytes:
                raise ModelFormatError(f"{path}: truncated in variable {name!r}")
            if dtype_id == BF16:
                array = torch.frombuffer(bytearray(raw), dtype=torch.bfloat16).float().numpy()
            elif dtype_id in DTYPES:
                array = np.frombuffer(raw, dtype=DTYPES[dtype_id])
            else:
                raise ModelFormatError(f"{path}: variable {name!r} has unknown dtype {dtype_id}")
            variables[name] = array.reshape(shape)
        tail = f.read(4)
        if len(tail) == 4:
            (aliases,) = struct.unpack("<I", tail)
            for _ in range(aliases):
                alias, target = _string(f), _string(f)
                variables[alias] = variables[target]
    return spec, variables


def _layers(variables: dict[str, np.ndarray], stack: str) -> int:
    return len({m[1] for name in variables if (m := re.match(rf"{stack}/layer_(\d+)/", name))})


def whisper_config(variables: dict[str, np.ndarray]) -> dict:
    """The ``WhisperConfig`` fields that follow from the tensor shapes and head counts."""
    vocab, d_model = variables["decoder/embeddings/weight"].shape
    return {
        "vocab_size": int(vocab),
        "d_model": int(d_model),
        "num_mel_bins": int(variables["encoder/conv1/weight"].shape[1]),
        "encoder_layers": _layers(variables, "encoder"),
        "decoder_layers": _layers(variables, "decoder"),
        "encoder_ffn_dim": int(variables["encoder/layer_0/ffn/linear_0/weight"].shape[0]),
        "decoder_ffn_dim": int(variables["decoder/layer_0/ffn/linear_0/weight"].shape[0]),
        "encoder_attention_heads": int(variables["encoder/num_heads"]),
        "decoder_attention_heads": int(variables["decoder/num_heads"]),
        "max_source_positions": int(variables["encoder/position_encodings/encodings"].shape[0]),
        "max_target_positions": int(variables["decoder/position_encodings/encodings"].shape[0]),
    }


def _norm(out: dict, hf: str, ct2: str, v: dict) -> None:
    out[f"{hf}.weight"], out[f"{hf}.bias"] = v[f"{ct2}/gamma"], v[f"{ct2}/beta"]


def _linear(out: dict, hf: str, ct2: str, v: dict, bias: bool = True) -> None:
    out[f"{hf}.weight"] = v[f"{ct2}/weight"]
    if bias:
        out[f"{hf}.bias"] = v[f"{ct2}/bias"]


def _split(out: dict, names: list[str], ct2: str, v: dict) -> None:
    """A fused projection (rows: the parts one after the other) into ``names``; a ``k_proj``
    takes no bias (CTranslate2 stores zeros there)."""
    weights = np.split(v[f"{ct2}/weight"], len(names))
    biases = np.split(v[f"{ct2}/bias"], len(names))
    for name, w, b in zip(names, weights, biases, strict=True):
        out[f"{name}.weight"] = w
        if not name.endswith("k_proj"):
            out[f"{name}.bias"] = b


def whisper_state_dict(variables: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    """``WhisperForConditionalGeneration`` parameters (``model.…``) from a WhisperSpec's variables."""
    v, out = variables, {}
    enc, dec = "model.encoder", "model.decoder"
    for i in (1, 2):
        _linear(out, f"{enc}.conv{i}", f"encoder/conv{i}", v)
    out[f"{enc}.embed_positions.weight"] = v["encoder/position_encodings/encodings"]
    out[f"{dec}.embed_positions.weight"] = v["decoder/position_encodings/encodings"]
    out[f"{dec}.embed_tokens.weight"] = v["decoder/embeddings/weight"]
    for stack, hf in (("encoder", enc), ("decoder", dec)):
        _norm(out, f"{hf}.layer_norm", f"{stack}/layer_norm", v)
        for i in range(_layers(v, stack)):
            ct2, layer = f"{stack}/layer_{i}", f"{hf}.layers.{i}"
            attn = f"{layer}.self_attn"
            _norm(out, f"{layer}.self_attn_layer_norm", f"{ct2}/self_attention/layer_norm", v)
            _split(out, [f"{attn}.q_proj", f"{attn}.k_proj", f"{attn}.v_proj"],
                   f"{ct2}/self_attention/linear_0", v)
            _linear(out, f"{attn}.out_proj", f"{ct2}/self_attention/linear_1", v)
            if stack == "decoder":
                cross = f"{layer}.encoder_attn"
                _norm(out, f"{layer}.encoder_attn_layer_norm", f"{ct2}/attention/layer_norm", v)
                _linear(out, f"{cross}.q_proj", f"{ct2}/attention/linear_0", v)
                _split(out, [f"{cross}.k_proj", f"{cross}.v_proj"], f"{ct2}/attention/linear_1", v)
                _linear(out, f"{cross}.out_proj", f"{ct2}/attention/linear_2", v)
            _norm(out, f"{layer}.final_layer_norm", f"{ct2}/ffn/layer_norm", v)
            _linear(out, f"{layer}.fc1", f"{ct2}/ffn/linear_0", v)
            _linear(out, f"{layer}.fc2", f"{ct2}/ffn/linear_1", v)
    return {k: torch.from_numpy(np.array(a, dtype=np.float32)) for k, a in out.items()}
