"""Per-sequence NLL of K hypotheses from their last hidden states, through a frozen head.

In a LoRA-MCL train step the ``(K, B, T, V)`` logits of the K·B-row batch are the largest
tensor by far (V ≫ hidden size), and autograd keeps them (their softmax) until the
backward. :class:`HeadNLL` instead applies the frozen output head to the target positions
only (labels ≠ -100: a prompt gets no logits), takes their token NLL *and* the gradient of
that NLL with respect to the hidden states, and drops the logits: peak memory holds one
chunk of at most ``LOGITS_PER_CHUNK`` logits and a ``(K, B, T, H)`` gradient. The backward
only scales that stored gradient by each sequence's upstream gradient, so the FLOPs are
those of autograd through the head (the forward does the backward's matmul) — the "fused
linear cross-entropy" of Liger-Kernel. With a prompted causal LM (the ALMA prompt is
longer than most targets) and a 262 k vocabulary, skipping the prompt is most of the
step's work saved.

The chunks run over the target positions of all K hypotheses together, not one hypothesis
at a time: the head's matmul streams the whole ``(V, H)`` weight once per call, and on a
CPU three calls of 112 rows took 1.4× as long as one of 336 (Gemma 3 270M,
``benchmarks/pretrained_speed.py``). A row's logits do not depend on the rows beside it:
the chunking changes no number (``tests/test_fast_paths.py`` holds it to the per-hypothesis
loop bit for bit).

It is exact only because the head is frozen (no gradient for its weight is needed) and the
logits go straight into the loss; :class:`methods.lora.fast.HeadOnlyNLL` checks the second on
the model before using it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

# a chunk's logits: 2**27 floats (512 MiB in fp32) — every target position of a Gemma 3
# 270M batch of K·B = 24 rows fits in one
LOGITS_PER_CHUNK = 2**27


class HeadNLL(torch.autograd.Function):
    """``nll[k, b]``: mean NLL of ``labels[b]`` (``-100``: not a target) under
    ``softmax(hidden[k, b] @ weightᵀ + bias)``; ``hidden`` is ``(K, B, T, H)``."""

    @staticmethod
    def forward(ctx, hidden: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                labels: torch.Tensor) -> torch.Tensor:
        k, b = hidden.shape[:2]
        counted = labels != -100
        seq, pos = counted.nonzero(as_tuple=True)  # the target positions of one hypothesis
        # hypothesis-major rows: hypothesis k's targets, then k+1's
        h = hidden[:, seq, pos].reshape(-1, hidden.shape[-1])
        targets = labels[seq, pos].repeat(k).unsqueeze(-1)
        weights = (1.0 / counted.sum(-1))[seq].repeat(k)  # a token's weight in its sequence's mean
        sequence = (torch.arange(k, device=seq.device).repeat_interleave(seq.numel()) * b + seq.repeat(k))
        nll = torch.zeros(k * b, dtype=torch.float32, device=hidden.device)
        grad_rows = torch.empty_like(h) if ctx.needs_input_grad[0] else None
        chunk = max(1, LOGITS_PER_CHUNK // weight.shape[0])
        for start in range(0, h.shape[0], chunk):
            rows = slice(start, start + chunk)
            logp = F.linear(h[rows], weight, bias).float().log_softmax(-1)
            nll.index_add_(0, sequence[rows], -logp.gather(-1, targets[rows]).squeeze(-1) * weights[rows])
            if grad_rows is not None:
                # d nll / d logits = (softmax - one-hot) · the token's weight in its mean
                one_hot = -torch.ones_like(targets[rows], dtype=logp.dtype)
                d_logits = logp.exp_().scatter_add_(-1, targets[rows], one_hot)
                d_logits.mul_(weights[rows].unsqueeze(-1))
                grad_rows[rows] = d_logits.to(weight.dtype) @ weight
        grad = None
        if grad_rows is not None:
            grad = torch.zeros_like(hidden)
            grad[:, seq, pos] = grad_rows.view(k, seq.numel(), -1).to(grad.dtype)
        ctx.save_for_backward(grad)
        return nll.view(k, b)

    @staticmethod
    def backward(ctx, grad_nll: torch.Tensor):
        (grad,) = ctx.saved_tensors
        return grad * grad_nll.to(grad.dtype)[:, :, None, None], None, None, None


def head_nll(hidden: torch.Tensor, head: torch.nn.Linear, labels: torch.Tensor) -> torch.Tensor:
    """:class:`HeadNLL` through the ``nn.Linear`` output head ``head``: shape ``(K, B)``."""
    return HeadNLL.apply(hidden, head.weight, head.bias, labels)
