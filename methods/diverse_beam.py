"""Diverse beam search (Vijayakumar et al., 2016) with Hamming diversity, on the LoRA-MLE adapter.

N beams are split into G groups of N/G. At every step the groups are decoded in order;
group g subtracts λ × (how many times each token was chosen by groups 0..g-1 at this
step, for the same input) from its log-probabilities, then runs an ordinary beam-search
step over its own beams and its own pool of finished hypotheses. One forward pass per step
serves all groups, with the KV cache reordered once per step.

`transformers` 5 dropped group beam search from its core. :func:`group_beam_search`
reproduces `transformers` 4.x (`_group_beam_search` + `BeamSearchScorer` +
`HammingDiversityLogitsProcessor`, default `early_stopping=False`) token for token: the
tests compare it with fixtures made by transformers 4.46.3 (``tests/fixtures/group_beam``),
for a decoder-only model and for an encoder–decoder one (the encoder runs once; the
decoder starts from ``decoder_start_token_id``, as ``generate`` does).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from transformers import DynamicCache, EncoderDecoderCache

from harness.registry import register_method
from methods.lora.base import LoRAMethod, LoRATrainConfig


class Hypotheses:
    """The n best finished hypotheses of one (input, group), scored by length-normalised log-prob."""

    def __init__(self, n: int, length_penalty: float):
        self.n, self.length_penalty = n, length_penalty
        self.beams: list[tuple[float, torch.Tensor]] = []
        self.worst_score = 1e9

    def add(self, tokens: torch.Tensor, sum_logprobs: float, generated_len: int) -> None:
        score = sum_logprobs / generated_len**self.length_penalty
        if len(self.beams) < self.n or score > self.worst_score:
            self.beams.append((score, tokens))
            if len(self.beams) > self.n:
                ranked = sorted((s, i) for i, (s, _) in enumerate(self.beams))
                del self.beams[ranked[0][1]]
                self.worst_score = ranked[1][0]
            else:
                self.worst_score = min(score, self.worst_score)

    def is_done(self, best_sum_logprobs: float, generated_len: int) -> bool:
        """Full, and no live beam can still beat the worst kept hypothesis."""
        if len(self.beams) < self.n:
            return False
        return self.worst_score >= best_sum_logprobs / generated_len**self.length_penalty


def _positions(mask: torch.Tensor) -> torch.Tensor:
    """Position ids under left padding, as `transformers` derives them from the mask."""
    return (mask.long().cumsum(-1) - 1).masked_fill(mask == 0, 1)


@torch.no_grad()
def group_beam_search(model, inputs: dict[str, torch.Tensor], *,
                      num_beams: int, num_groups: int, diversity_penalty: float,
                      max_new_tokens: int, eos_token_id: int | None, pad_token_id: int,
                      length_penalty: float = 1.0, min_new_tokens: int = 0,
                      suppress_tokens: tuple[int, ...] = (),
                      num_return_sequences: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Diverse beam search over a batch. ``inputs``: a left-padded prompt of a decoder-only
    model (``input_ids``, ``attention_mask``), or what the encoder of an encoder–decoder
    takes (``input_ids`` + ``attention_mask``, ``pixel_values``, ``input_features``).

    Returns ``(sequences, scores)``: ``num_return_sequences`` (default ``num_beams``)
    sequences per input, best first across groups (decoder-only: prompt included;
    encoder–decoder: the decoder sequence from its start token, as ``generate`` returns),
    and their length-normalised log-probabilities.
    """
    if num_beams % num_groups:
        raise ValueError(f"num_beams ({num_beams}) must be divisible by num_groups ({num_groups})")
    n, size = num_beams, num_beams // num_groups
    keep = num_return_sequences or n
    if keep > n:
        raise ValueError(f"num_return_sequences ({keep}) cannot exceed num_beams ({n})")
    batch = next(iter(inputs.values())).shape[0]
    eos = [] if eos_token_id is None else [eos_token_id]
    encoder_decoder = bool(getattr(model.config, "is_encoder_decoder", False))
    mask = inputs.get("attention_mask")  # none for pixels or audio features
    mask = mask.repeat_interleave(n, 0) if mask is not None else None
    if encoder_decoder:  # the source is encoded once; every beam starts from the start token
        encoded = model.get_encoder()(**inputs)
        encoded.last_hidden_state = encoded.last_hidden_state.repeat_interleave(n, 0)
        ids = torch.full((batch * n, 1), model.config.decoder_start_token_id, dtype=torch.long)
        cache = EncoderDecoderCache(DynamicCache(), DynamicCache())
    else:
        ids = inputs["input_ids"].repeat_interleave(n, 0)
        cache = DynamicCache()
    prompt_len = ids.shape[1]
    # only the first beam of each group is live at the start: the others would duplicate it
    beam_scores = torch.full((batch, n), -1e9)
    beam_scores[:, ::size] = 0
    beam_scores = beam_scores.view(-1)
    pools = [[Hypotheses(size, length_penalty) for _ in range(num_groups)] for _ in range(batch)]
    done = [[False] * num_groups for _ in range(batch)]
    step_ids = ids
    for step in range(max_new_tokens):
        logp = _next_log_probs(model, encoded if encoder_decoder else None, mask, step_ids, cache,
                               eos if step < min_new_tokens else [], suppress_tokens)
        chosen = torch.zeros(batch * n, dtype=torch.long)  # this step's token of every beam
        reorder = torch.zeros(batch * n, dtype=torch.long)
        generated = ids.shape[1] + 1 - prompt_len
        for g in range(num_groups):
            _advance_group(g * size, size, n, logp, chosen, reorder, beam_scores, ids, pools,
                           done, g, diversity_penalty, eos, pad_token_id, generated)
        ids = torch.cat([ids, chosen[:, None]], dim=-1)
        if not encoder_decoder:  # the encoder's mask stays; a decoder-only prompt grows
            mask = torch.cat([mask, mask.new_ones(mask.shape[0], 1)], dim=-1)
        cache.reorder_cache(reorder)
        step_ids = chosen[:, None]
        if all(all(d) for d in done):
            break
    return _finalize(ids, beam_scores, pools, done, size, keep, prompt_len, max_new_tokens,
                     eos, pad_token_id)


def _next_log_probs(model, encoded, mask, step_ids, cache, banned: list[int],
                    suppress_tokens) -> torch.Tensor:
    """Next-token log-probabilities of every beam (``encoded``: the encoder's output of an
    encoder–decoder, None for a decoder-only model); ``banned`` (EOS before
    ``min_new_tokens``) and ``suppress_tokens`` get -inf."""
    if encoded is not None:
        out = model(encoder_outputs=encoded, attention_mask=mask, decoder_input_ids=step_ids,
                    past_key_values=cache, use_cache=True)
    else:
        out = model(input_ids=step_ids, attention_mask=mask,
                    position_ids=_positions(mask)[:, -step_ids.shape[1]:],
                    past_key_values=cache, use_cache=True)
    logp = F.log_softmax(out.logits[:, -1].float(), dim=-1)
    if banned:
        logp[:, banned] = -float("inf")
    if suppress_tokens:
        logp[:, list(suppress_tokens)] = -float("inf")
    return logp


def _advance_group(start: int, size: int, n: int, logp, chosen, reorder, beam_scores, ids, pools,
                   done, g: int, diversity_penalty: float, eos: list[int], pad_token_id: int,
                   generated: int) -> None:
    """One step of group ``g`` (beams ``start`` … ``start + size`` of every input): the
    Hamming penalty of the tokens earlier groups chose this step, the ``size`` best
    continuations, finished beams into the group's pool; updates the beams in place."""
    batch, vocab = len(pools), logp.shape[-1]
    rows = torch.tensor([b * n + start + j for b in range(batch) for j in range(size)])
    scores = logp[rows]
    if g > 0 and diversity_penalty > 0:
        scores = scores.clone()
        for b in range(batch):
            earlier = torch.bincount(chosen[b * n:b * n + start], minlength=vocab)
            scores[b * size:(b + 1) * size] -= diversity_penalty * earlier
    total = (scores + beam_scores[rows, None]).view(batch, size * vocab)
    top_scores, top = total.topk(max(2, 1 + len(eos)) * size, dim=1)
    sources, tokens = top // vocab, top % vocab
    next_scores = torch.zeros(batch, size)
    next_tokens = torch.zeros(batch, size, dtype=torch.long)
    next_rows = torch.zeros(batch, size, dtype=torch.long)  # indices into this group's rows
    for b in range(batch):
        if done[b][g]:
            next_tokens[b] = pad_token_id
            continue
        k = 0
        for rank, (tok, sc, src) in enumerate(zip(tokens[b].tolist(), top_scores[b],
                                                  sources[b].tolist(), strict=True)):
            row = b * size + src
            if tok in eos:
                if rank < size:  # an EOS outside the top `size` is not a finished beam
                    pools[b][g].add(ids[rows[row]].clone(), sc.item(), generated)
            else:
                next_scores[b, k], next_tokens[b, k], next_rows[b, k] = sc, tok, row
                k += 1
            if k == size:
                break
        done[b][g] = done[b][g] or pools[b][g].is_done(top_scores[b].max().item(), generated)
    src = next_rows.view(-1)
    beam_scores[rows] = next_scores.view(-1)
    ids[rows] = ids[rows][src]
    chosen[rows] = next_tokens.view(-1)
    reorder[rows] = n * (src // size) + start + src % size


def _finalize(ids, beam_scores, pools, done, size, keep, prompt_len, max_new_tokens, eos, pad):
    """Close the live beams of unfinished groups, then take the best ``keep`` over all groups."""
    batch, num_groups = len(pools), len(pools[0])
    n = size * num_groups
    for b in range(batch):
        for g in range(num_groups):
            if not done[b][g]:
                for j in range(size):
                    row = b * n + g * size + j
                    pools[b][g].add(ids[row], beam_scores[row].item(), ids.shape[1] - prompt_len)
    best, scores = [], []
    for b in range(batch):
        ranked = sorted((beam for pool in pools[b] for beam in pool.beams), key=lambda x: x[0])
        for _ in range(keep):
            score, tokens = ranked.pop()
            best.append(tokens)
            scores.append(score)
    lengths = [len(t) for t in best]
    width = min(max(lengths) + 1, prompt_len + max_new_tokens)
    out = ids.new_full((len(best), width), pad)
    for i, tokens in enumerate(best):
        out[i, :len(tokens)] = tokens
        if len(tokens) < width and eos:
            out[i, len(tokens)] = eos[0]
    return out, torch.tensor(scores)


@dataclass
class DiverseBeamConfig(LoRATrainConfig):
    num_candidates: int = 4  # N beams, all returned
    num_groups: int = 2  # G groups of N / G beams
    diversity_penalty: float = 0.5  # λ
    length_penalty: float = 1.0

    def validate(self) -> None:
        super().validate()
        if self.num_groups < 1 or self.num_candidates % self.num_groups:
            raise ValueError("num_candidates must be a positive multiple of num_groups")
        if self.diversity_penalty < 0:
            raise ValueError("diversity_penalty must be >= 0")


@register_method("diverse_beam")
class DiverseBeamSearch(LoRAMethod):
    """Diverse beam search (G groups, Hamming penalty λ) on the LoRA-MLE adapter, N returned."""

    Config = DiverseBeamConfig

    def decode_spec(self) -> dict:
        c = self.config
        return {"decoder": "diverse_beam", "n": c.num_candidates, "groups": c.num_groups,
                "lambda": c.diversity_penalty, "length_penalty": c.length_penalty}

    def decode_rows(self) -> int:
        return self.config.num_candidates

    def with_candidates(self, n: int) -> DiverseBeamSearch:
        return DiverseBeamSearch(replace(self.config, num_candidates=n, num_groups=n))  # 1 beam per group

    def decode_batch(self, model, task, examples, prompt, seed):
        c, gen = self.config, task.generation_kwargs()
        eos = gen.get("eos_token_id", getattr(model.base_model.generation_config, "eos_token_id", None))
        model.router.set_index(torch.zeros(next(iter(prompt.values())).shape[0], dtype=torch.long))
        seqs, _ = group_beam_search(
            model.base_model, prompt,
            num_beams=c.num_candidates, num_groups=c.num_groups,
            diversity_penalty=c.diversity_penalty, length_penalty=c.length_penalty,
            max_new_tokens=gen["max_new_tokens"], min_new_tokens=gen.get("min_new_tokens", 0),
            suppress_tokens=tuple(gen.get("suppress_tokens", ())), eos_token_id=eos,
            pad_token_id=gen.get("pad_token_id", 0))
        return self.split_per_input(task, prompt, seqs, c.num_candidates)
