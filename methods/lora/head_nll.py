"""Per-sequence NLL of K hypotheses from their last hidden states, one hypothesis at a time.

In a LoRA-MCL train step the ``(K, B, T, V)`` logits of the K·B-row batch are the largest
tensor by far (V ≫ hidden size), and autograd keeps them (their softmax) until the
backward. :class:`HeadNLL` instead applies the frozen output head to one hypothesis's
hidden states at a time, takes its token NLL *and* the gradient of that NLL with respect
to the hidden states, and drops the logits: peak memory holds one ``(B, T, V)`` block and
a ``(K, B, T, H)`` gradient. The backward only scales that stored gradient by each
sequence's upstream gradient, so the FLOPs are those of autograd through the head (the
forward does the backward's matmul) — the "fused linear cross-entropy" of Liger-Kernel,
per hypothesis. Only the target positions (labels ≠ -100) go through the head: with a
prompted causal LM (the ALMA prompt is longer than most targets) and a 262 k vocabulary that
is most of the step's work saved.

It is exact only because the head is frozen (no gradient for its weight is needed) and the
logits go straight into the loss; :class:`methods.lora.fast.HeadOnlyNLL` checks the second on
the model before using it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


class HeadNLL(torch.autograd.Function):
    """``nll[k, b]``: mean NLL of ``labels[b]`` (``-100``: not a target) under
    ``softmax(hidden[k, b] @ weightᵀ + bias)``; ``hidden`` is ``(K, B, T, H)``."""

    @staticmethod
    def forward(ctx, hidden: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                labels: torch.Tensor) -> torch.Tensor:
        counted = labels != -100
        rows = counted.nonzero(as_tuple=True)  # the target positions only: a prompt gets no logits
        targets = labels[rows].unsqueeze(-1)
        weights = (1.0 / counted.sum(-1))[rows[0]]  # a token's weight in its sequence's mean
        nll = torch.zeros(hidden.shape[:2], dtype=torch.float32, device=hidden.device)
        grad = torch.zeros_like(hidden) if ctx.needs_input_grad[0] else None
        for k in range(hidden.shape[0]):
            h = hidden[k][rows]  # (tokens, H)
            logp = F.linear(h, weight, bias).float().log_softmax(-1)
            nll[k].index_add_(0, rows[0], -logp.gather(-1, targets).squeeze(-1) * weights)
            if grad is not None:
                # d nll / d logits = (softmax - one-hot) · the token's weight in its mean
                d_logits = logp.exp_().scatter_add_(-1, targets, -torch.ones_like(targets, dtype=logp.dtype))
                d_logits.mul_(weights.unsqueeze(-1))
                grad[k][rows] = (d_logits.to(weight.dtype) @ weight).to(grad.dtype)
        ctx.save_for_backward(grad)
        return nll

    @staticmethod
    def backward(ctx, grad_nll: torch.Tensor):
        (grad,) = ctx.saved_tensors
        return grad * grad_nll.to(grad.dtype)[:, :, None, None], None, None, None


def head_nll(hidden: torch.Tensor, head: torch.nn.Linear, labels: torch.Tensor) -> torch.Tensor:
    """:class:`HeadNLL` through the ``nn.Linear`` output head ``head``: shape ``(K, B)``."""
    return HeadNLL.apply(hidden, head.weight, head.bias, labels)
