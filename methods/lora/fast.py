"""The fast paths of the LoRA family: three opt-in pieces on the reference core.

:mod:`methods.lora.model` is the reference: masked product in every layer, the encoder run
on all K·B rows, the loss from the full ``(K, B, T, V)`` logits. The methods train and
decode with :class:`FastMultiLoRAModel`, which composes three pieces, each exact and each
tested equal to the reference (``tests/test_fast_paths.py``):

- :class:`BlockRouter` + :class:`BlockMultiLoRALinear`: when the rows come as K equal
  hypothesis blocks (how ``forward_hypotheses`` and ``generate_hypotheses`` lay them out),
  a layer views them as ``(K, rows/K, in)`` and applies block k's own ``(A_k, B_k)`` with
  two batched matmuls — the work of K rank-r LoRAs instead of the masked K·r product.
- :class:`EncodeOnce`: with no adapter in the encoder of an encoder–decoder model (text,
  vision or speech), every hypothesis would encode the same input, so the encoder runs on
  the B inputs once and its output is repeated for the K·B decoder rows.
- :class:`HeadOnlyNLL`: the training loss goes through the frozen output head at the target
  positions only, in chunks (:mod:`methods.lora.head_nll`), so the full logits never exist;
  used only where the model's logits are checked, once, to be
  exactly ``head(last hidden state)``.

The switches ``encode_once`` and ``head_nll`` turn a piece off on one model (for ablations
and benchmarks); the block path runs whenever the rows are blocked.
"""

from __future__ import annotations

import inspect

import torch
from torch import nn
from transformers.pytorch_utils import Conv1D

from methods.lora.head_nll import head_nll
from methods.lora.model import HypothesisRouter, MultiLoRALinear, MultiLoRAModel, replace_module


class BlockRouter(HypothesisRouter):
    """A router that also knows when its rows are K equal hypothesis blocks."""

    blocked = False

    def set_index(self, index: torch.Tensor) -> None:
        super().set_index(index)
        # hypothesis-major, K equal blocks (generate's repeat_interleave keeps it so)
        k, n = self.num_hypotheses, index.numel()
        self.blocked = n % k == 0 and torch.equal(index.cpu(), torch.arange(k).repeat_interleave(n // k))

    def blocks(self, x: torch.Tensor) -> bool:
        """Whether the rows of ``x`` are K equal hypothesis blocks (see :meth:`set_index`)."""
        return self.blocked and x.shape[0] % self.index.numel() == 0


class BlockMultiLoRALinear(MultiLoRALinear):
    """:class:`MultiLoRALinear` whose blocked rows take block k times its own (A_k, B_k)."""

    def __init__(self, base: nn.Module, cfg, router: BlockRouter):
        super().__init__(base, cfg, router)
        # the update is added in place only to a plain layer's output: a quantised layer's
        # (bitsandbytes' LLM.int8()) is a view made in a custom autograd Function, which
        # autograd forbids modifying in place
        self.add_in_place = type(base) in (nn.Linear, Conv1D)

    def add_update(self, out: torch.Tensor, x: torch.Tensor, a: torch.Tensor, b: torch.Tensor):
        router = self.router
        if not router.blocks(x):
            return super().add_update(out, x, a, b)
        k, r = router.num_hypotheses, router.rank
        h = torch.bmm(x.reshape(k, -1, x.shape[-1]), a.view(k, r, -1).transpose(1, 2))
        lora_b = b.view(-1, k, r).permute(1, 2, 0)  # (K, r, out)
        # added in place (the base's backward does not need its output), unless autocast
        # or layouts differ
        if self.add_in_place and out.is_contiguous() and out.dtype == h.dtype == lora_b.dtype:
            out.view(k, -1, out.shape[-1]).baddbmm_(h, lora_b, alpha=router.scaling)
            return out
        return torch.baddbmm(out.reshape(k, -1, out.shape[-1]), h, lora_b,
                             alpha=router.scaling).view_as(out)


def frozen_encoder(model: nn.Module, adapted: list[str]) -> nn.Module | None:
    """The encoder of an encoder–decoder model (text, vision or speech) when none of the
    ``adapted`` layers is in it, else None."""
    config = getattr(model, "config", None)
    if not getattr(config, "is_encoder_decoder", False) or not hasattr(model, "get_encoder"):
        return None
    encoder = model.get_encoder()
    prefix = next((n for n, m in model.named_modules() if m is encoder), None)
    if prefix is None or any(n.startswith(prefix + ".") for n in adapted):
        return None
    return encoder


def encoder_input_names(encoder: nn.Module) -> set[str]:
    """The named inputs of ``encoder.forward`` (``pixel_values``, ``input_features``, ...)."""
    params = inspect.signature(encoder.forward).parameters.values()
    return {p.name for p in params if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)
            and p.name != "return_dict" and not p.name.startswith("output_")}


class EncodeOnce:
    """Mixin for an :class:`~methods.lora.model.AdaptedModel`: an adapter-free encoder runs
    on the B inputs once; its output is repeated for the K·B rows."""

    def __init__(self, base_model: nn.Module, cfg):
        super().__init__(base_model, cfg)
        encoder = frozen_encoder(base_model, self.target_names)
        self.encode_once = encoder is not None  # False: the reference (all K·B rows encoded)
        self._encoder_inputs = encoder_input_names(encoder) if encoder is not None else set()

    def _route_expanded(self, batch: dict) -> dict:
        return super()._route_expanded(self._encoded(self._in_model_dtype(batch)))

    def _encoded(self, batch: dict) -> dict:
        """``batch`` with the encoder's inputs replaced by its output on the B inputs; the
        attention mask stays for the decoder's cross-attention."""
        if not self.encode_once or "encoder_outputs" in batch:
            return batch
        inputs = {n: v for n, v in batch.items() if n in self._encoder_inputs}
        with torch.no_grad():  # frozen and adapter-free: nothing to learn in it
            encoded = self.base_model.get_encoder()(**inputs, return_dict=True)
        kept = {n: v for n, v in batch.items() if n not in inputs or n == "attention_mask"}
        return kept | {"encoder_outputs": encoded}


class HeadOnlyNLL:
    """Mixin for an :class:`~methods.lora.model.AdaptedModel`: the training NLL through the
    frozen output head, at the target positions only, in chunks (:func:`head_nll`)."""

    def __init__(self, base_model: nn.Module, cfg):
        super().__init__(base_model, cfg)
        self.head_nll = True  # False: the reference (the loss from the full logits)
        self._head_name: str | None = None  # the output head's module name, once checked

    def sequence_nll(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        inputs, targets, shift = self._teacher_forcing(batch)
        head = self.output_head(inputs)
        if head is None:
            return super().sequence_nll(batch)
        hidden = self._last_hidden(inputs, self._head_name)
        return head_nll(hidden[:, :, :-1] if shift else hidden, head, targets)

    def output_head(self, inputs: dict[str, torch.Tensor]) -> nn.Linear | None:
        """The frozen linear output head if ``head_nll`` is on and the model's logits are
        exactly ``head(last hidden state)`` — checked once, on one input, against the
        model's own logits (a final logit bias, soft-capping or scaling fails it) — else None."""
        if not self.head_nll:
            return None
        if self._head_name is None:
            get_head = getattr(self.base_model, "get_output_embeddings", None)
            head = get_head() if get_head is not None else None
            name = next((n for n, m in self.base_model.named_modules() if m is head), None)
            usable = name is not None and isinstance(head, nn.Linear) and not head.weight.requires_grad
            self._head_name = name if usable and self._logits_are_head_of_hidden(inputs, head, name) else ""
        return self.base_model.get_submodule(self._head_name) if self._head_name else None

    def _logits_are_head_of_hidden(self, inputs: dict, head: nn.Linear, name: str) -> bool:
        one = {n: v[:1] if isinstance(v, torch.Tensor) else v for n, v in inputs.items() if n != "labels"}
        training = self.training
        self.eval()  # no dropout: both forwards must see the same model
        try:
            with torch.no_grad():
                logits = self.forward_hypotheses(**one)
                via_head = head(self._last_hidden(one, name))
            return via_head.shape == logits.shape and torch.allclose(via_head, logits, rtol=1e-4, atol=1e-4)
        except RuntimeError:  # the model does more to the head's output (a bias of size V)
            return False
        finally:
            self.train(training)

    def _last_hidden(self, inputs: dict[str, torch.Tensor], head_name: str) -> torch.Tensor:
        """The hidden states the output head (module ``head_name``) would see, ``(K, B, T,
        H)``: one forward with the head swapped for an identity (so no logits are computed)."""
        head = replace_module(self.base_model, head_name, nn.Identity())
        try:
            hidden = self.base_model(**self._route_expanded(inputs)).logits
        finally:
            replace_module(self.base_model, head_name, head)
        return hidden.view(self.num_hypotheses, -1, *hidden.shape[1:])


class FastMultiLoRAModel(EncodeOnce, HeadOnlyNLL, MultiLoRAModel):
    """:class:`~methods.lora.model.MultiLoRAModel` with the three fast paths: what the LoRA
    methods train and decode with (the same adapters, the same numbers)."""

    router_class = BlockRouter

    def make_layer(self, base: nn.Module) -> nn.Module:
        return BlockMultiLoRALinear(base, self.cfg, self.router)
