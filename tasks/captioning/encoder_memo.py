"""A frozen encoder whose output is computed once per input and then remembered.

Whisper's encoder always reads a 30 s window (1 500 output frames): on a 2 s clip it costs
about 0.4 s per clip here, several times a decoder step; the photo base's ImageNet
EfficientNet costs about 0.1 s per 224 × 224 photo. With the encoder frozen and free of
adapters (the paper's audio setting keeps them in the language model), an input's encoder
output is the same at every training step and in every method's decoding, so it is
computed once per input and process. ``frames`` keeps the first output frames only (a clip
of s seconds fills the first s × 50 of Whisper's 1 500): the decoder's cross-attention then
reads the clip instead of 28 s of padding.

The memo is keyed by the encoder's weights, the kept frames and a hash of the input row's bytes, so
a remembered output is never another model's or another clip's. It is the encoder's
eval-mode output: an encoder with dropout gives the same output at every step. Adapters put into the
encoder afterwards would make the memo wrong: the forward refuses to run then.
"""

from __future__ import annotations

import hashlib

import torch
from torch import nn
from transformers.modeling_outputs import BaseModelOutput

_MEMO: dict[tuple[str, int, bytes], torch.Tensor] = {}  # shared by every model of the process


def weights_digest(module: nn.Module) -> str:
    h = hashlib.blake2b(digest_size=16)
    for name, tensor in module.state_dict().items():
        h.update(name.encode())
        flat = tensor.detach().cpu().contiguous().reshape(-1)  # 0-d tensors too (batch-norm counters)
        h.update(flat.view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def row_digest(row: torch.Tensor) -> bytes:
    return hashlib.blake2b(row.detach().cpu().numpy().tobytes(), digest_size=16).digest()


class MemoisedEncoder(nn.Module):
    """``encoder`` (frozen) whose output on each input row is computed once; ``frames``:
    keep the first ``frames`` output frames (0: all)."""

    def __init__(self, encoder: nn.Module, frames: int = 0):
        super().__init__()
        self.encoder = encoder
        self.frames = frames
        self._layout = self._module_ids()
        self._digest = weights_digest(encoder)

    def _module_ids(self) -> list[int]:
        return [id(m) for m in self.encoder.modules()]

    @property
    def config(self):  # read by the wrapping model (VisionEncoderDecoder: its projection)
        return self.encoder.config

    @property
    def main_input_name(self) -> str:
        return self.encoder.main_input_name

    def forward(self, input_features: torch.Tensor | None = None, pixel_values: torch.Tensor | None = None,
                **kwargs) -> BaseModelOutput:
        if self._module_ids() != self._layout:
            raise ValueError("an adapter was put into the encoder, but encoder_memo is on: "
                             "target the decoder only (e.g. 'model.decoder.*.q_proj') or set "
                             "task.encoder_memo=false")
        name, inputs = (("input_features", input_features) if input_features is not None
                        else ("pixel_values", pixel_values))
        keys = [(self._digest, self.frames, row_digest(row)) for row in inputs]
        missing = sorted({i for i, k in enumerate(keys) if k not in _MEMO})
        if missing:
            training = self.encoder.training
            self.encoder.eval()  # a remembered output is the encoder's own, without dropout
            try:
                with torch.no_grad():
                    hidden = self.encoder(**{name: inputs[missing]}, return_dict=True).last_hidden_state
            finally:
                self.encoder.train(training)
            for i, row in zip(missing, hidden, strict=True):
                _MEMO[keys[i]] = (row[: self.frames] if self.frames else row).clone()
        stacked = torch.stack([_MEMO[k] for k in keys]).to(inputs.device)
        return BaseModelOutput(last_hidden_state=stacked)


def memoise_encoder(model: nn.Module, frames: int = 0) -> nn.Module:
    """``model`` (an encoder–decoder) with its encoder replaced by a :class:`MemoisedEncoder`."""
    encoder = model.get_encoder()
    name = next(n for n, m in model.named_modules() if m is encoder)
    parent_name, _, attr = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, attr, MemoisedEncoder(encoder, frames))
    return model
