"""Captioning with a prompted multimodal causal LM (LLaVA, Qwen2-Audio), the paper's setting.

Such a checkpoint has no encoder–decoder split: its processor puts the image or audio
placeholder tokens into a text prompt (the task's ``prompt``), the model reads the media
features in their place and writes the caption after the prompt. A training sequence is
the processed prompt followed by the caption and EOS, with the loss on the caption only
(labels -100 on the prompt and the padding); decoding generates from the prompt alone
(left-padded) and keeps what follows it, up to the first line break.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from harness.task import TrainingSet, pad

if TYPE_CHECKING:
    from tasks.captioning.task import CaptioningTask


class PromptedCaptionPairs(TrainingSet):
    """Every (file, caption) pair: the processed prompt with the file's media, then the caption."""

    def __init__(self, task: CaptioningTask, examples):
        self.task = task
        tok = task.tokenizer
        cut = task.config.max_new_tokens
        self.pairs = [(e.source, tok(" " + c, add_special_tokens=False)["input_ids"][:cut]
                       + [tok.eos_token_id]) for e in examples for c in e.references]

    def __len__(self) -> int:
        return len(self.pairs)

    def batch(self, indices: torch.Tensor) -> dict[str, torch.Tensor]:
        chosen = [self.pairs[i] for i in indices.tolist()]
        prompt = self.task.prompted_inputs([src for src, _ in chosen])
        ids, mask = prompt.pop("input_ids"), prompt.pop("attention_mask").bool()
        prompts = [row[keep].tolist() for row, keep in zip(ids, mask, strict=True)]  # unpadded
        seqs = [p + c for p, (_, c) in zip(prompts, chosen, strict=True)]
        labels = [[-100] * len(p) + c for p, (_, c) in zip(prompts, chosen, strict=True)]
        return {"input_ids": pad(seqs, self.task.tokenizer.pad_token_id),
                "attention_mask": pad([[1] * len(s) for s in seqs], 0),
                "labels": pad(labels, -100), **prompt}


def processed_prompts(processor, prompts: list[str], media: dict) -> dict[str, torch.Tensor]:
    """The processor's inputs for each prompt with its media (left-padded, so that
    generation continues every row right after its prompt)."""
    processor.tokenizer.padding_side = "left"
    return dict(processor(text=prompts, **media, return_tensors="pt", padding=True))


def continuation(tokenizer, prompt: dict[str, torch.Tensor], sequences: torch.Tensor) -> list[str]:
    """The text each row generated after its prompt, up to the first line break."""
    new = sequences[:, prompt["input_ids"].shape[1]:]
    texts = tokenizer.batch_decode(new, skip_special_tokens=True)
    return [t.strip().split("\n")[0].strip() for t in texts]
