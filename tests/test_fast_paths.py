"""The fast model (methods.lora.fast) gives what the reference core (methods.lora.model) gives,
end to end and piece by piece:

- block routing (a batched matmul of each hypothesis's own r directions) = the masked
  K·r product;
- the NLL through the frozen head at the target positions only, in chunks (no (K, B, T, V)
  logits) = the cross-entropy of the full logits, values and adapter gradients, whatever
  the chunk size;
- the encoder run once on B rows (no adapter in it) = the encoder run on all K·B rows:
  logits, NLL and generated candidates (1e-5).
"""

import copy

import pytest
import torch
import transformers as T

from methods.lora.fast import FastMultiLoRAModel
from methods.lora.model import MultiLoRAConfig, MultiLoRAModel
from tests.test_architectures import ARCHS, V, build, forward_inputs, inputs, targets

DECODER_TARGETS = {  # adapters on the decoder only: the encoder may run once
    "t5": ["decoder.*.q", "decoder.*.k", "decoder.*.v", "decoder.*.o"],
    "whisper": ["model.decoder.*_proj"],
    "vision_gpt2": ["decoder.*"],
}


def with_labels(name, batch):
    batch = dict(batch)
    if name in ("gpt2", "llama"):
        batch["labels"] = batch["input_ids"].masked_fill(batch["attention_mask"] == 0, -100)
    else:
        batch["labels"] = targets()
    return batch


def adapter_grads(model, loss):
    params = [p for n, p in model.named_parameters() if "lora_" in n]
    return torch.autograd.grad(loss, params, allow_unused=True, materialize_grads=True)


def plain_nll(model, batch):
    """The reference: full logits, then cross-entropy (the head path switched off)."""
    model.head_nll = False
    try:
        return model.sequence_nll(batch)
    finally:
        model.head_nll = True


@pytest.mark.parametrize("name", list(ARCHS))
def test_block_routing_equals_the_masked_product_with_gradients(name):
    _, model = build(name)
    batch = forward_inputs(name, model)
    weights = torch.randn(3, 2, 1, 1, generator=torch.Generator().manual_seed(4))

    def logits_and_grads():
        logits = model.forward_hypotheses(**batch)
        return logits, adapter_grads(model, (weights * logits.sum(-1).unsqueeze(-1)).sum())

    fast, fast_grads = logits_and_grads()
    model.router.set_index = _unblocked(model.router.set_index, model.router)
    slow, slow_grads = logits_and_grads()
    assert torch.allclose(fast, slow, atol=1e-5)
    for got, want in zip(fast_grads, slow_grads, strict=True):
        assert torch.allclose(got, want, atol=1e-4)


@pytest.mark.parametrize("name", list(ARCHS))
def test_the_fast_model_equals_the_reference_core(name):
    """The same adapters in both: logits, NLL, adapter gradients and beam-search candidates."""
    base, fast = build(name)
    reference = MultiLoRAModel(copy.deepcopy(base), fast.cfg).eval()
    reference.load_state_dict(fast.adapter_state_dict(), strict=False)
    batch = forward_inputs(name, fast)
    labelled = with_labels(name, inputs(name))
    kw = dict(max_new_tokens=4, do_sample=False, num_beams=2, pad_token_id=0, eos_token_id=2)
    weights = torch.tensor([[0.7, -0.2], [0.1, 0.4], [0.3, 0.9]])
    got, want = [], []
    for model, out in ((fast, got), (reference, want)):
        nll = model.sequence_nll(labelled)
        out += [model.forward_hypotheses(**batch), nll, *adapter_grads(model, (weights * nll).sum())]
        out.append(model.generate_hypotheses(inputs(name), **kw))
    for g, w in zip(got[:-1], want[:-1], strict=True):
        assert torch.allclose(g, w, atol=1e-4)
    assert torch.equal(got[-1], want[-1])
    assert not torch.allclose(got[0][0], got[0][1], atol=1e-4)  # the hypotheses differ


def _unblocked(set_index, router):
    def set_and_unblock(index):
        set_index(index)
        router.blocked = False
    return set_and_unblock


@pytest.mark.parametrize("name", list(ARCHS))
def test_head_nll_equals_full_logits_with_gradients(name):
    _, model = build(name)
    model.train()  # dropout on: both paths must draw the same masks
    batch = with_labels(name, inputs(name))

    def nll(fused):
        torch.manual_seed(5)
        return model.sequence_nll(batch) if fused else plain_nll(model, batch)

    assert torch.allclose(nll(True), nll(False), atol=1e-5)
    assert model.output_head(batch) is not None, f"{name}: the head path should have applied"
    weights = torch.tensor([[0.7, -0.2], [0.1, 0.4], [0.3, 0.9]])  # any upstream gradient
    for got, want in zip(adapter_grads(model, (weights * nll(True)).sum()),
                         adapter_grads(model, (weights * nll(False)).sum()), strict=True):
        assert torch.allclose(got, want, atol=1e-5)


def test_head_nll_chunks_change_no_number(monkeypatch):
    """The target rows of all hypotheses go through the head in chunks; one row per chunk,
    a chunk that splits a hypothesis and one chunk for all give the same NLL and gradient."""
    from methods.lora import head_nll as module

    g = torch.Generator().manual_seed(6)
    k, b, t, h, v = 3, 4, 9, 16, 50
    hidden = torch.randn(k, b, t, h, generator=g, requires_grad=True)
    head = torch.nn.Linear(h, v).requires_grad_(False)
    labels = torch.randint(0, v, (b, t), generator=g)
    labels[:, :4] = -100  # a prompt
    labels[2, -2:] = -100  # a shorter target
    upstream = torch.rand(k, b, generator=g)

    def nll_and_grad(rows_per_chunk):
        monkeypatch.setattr(module, "LOGITS_PER_CHUNK", rows_per_chunk * v)
        nll = module.head_nll(hidden, head, labels)
        return nll, torch.autograd.grad((upstream * nll).sum(), hidden)[0]

    one_chunk = nll_and_grad(k * b * t)
    for rows in (1, 7):
        for got, want in zip(nll_and_grad(rows), one_chunk, strict=True):
            assert torch.allclose(got, want, rtol=1e-6, atol=1e-7)
    plain = torch.nn.functional.cross_entropy(head(hidden).flatten(0, 2), labels.repeat(k, 1).flatten(),
                                              reduction="none").view(k, b, t)
    counted = labels != -100
    assert torch.allclose(one_chunk[0], (plain * counted).sum(-1) / counted.sum(-1), atol=1e-6)


def test_head_nll_is_not_used_when_logits_are_more_than_the_head():
    torch.manual_seed(0)
    base = T.BartForConditionalGeneration(T.BartConfig(
        vocab_size=V, d_model=16, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2,
        decoder_attention_heads=2, encoder_ffn_dim=32, decoder_ffn_dim=32, max_position_embeddings=32,
        pad_token_id=0, bos_token_id=1, eos_token_id=2, decoder_start_token_id=1)).eval()
    base.final_logits_bias.normal_()  # logits = head(h) + a bias: the head alone is not the logits
    model = FastMultiLoRAModel(base, MultiLoRAConfig(2, 2, 4.0, 0.0, ["q_proj", "v_proj"])).eval()
    ids = torch.randint(3, V, (2, 5), generator=torch.Generator().manual_seed(3))
    batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": targets()}
    nll = model.sequence_nll(batch)
    assert model.output_head(batch) is None
    assert torch.allclose(nll, plain_nll(model, batch))


@pytest.mark.parametrize("name", list(DECODER_TARGETS))
def test_encoder_once_equals_encoding_every_row(name):
    factory, _ = ARCHS[name]
    torch.manual_seed(0)
    base = factory().eval()
    model = FastMultiLoRAModel(copy.deepcopy(base), MultiLoRAConfig(3, 2, 4.0, 0.0, DECODER_TARGETS[name]))
    assert model.encode_once
    torch.manual_seed(1)
    for n, p in model.named_parameters():
        if "lora_B" in n:
            p.data.normal_(0, 0.3)
    model.eval()
    batch = inputs(name)
    labelled = with_labels(name, batch)
    kw = dict(max_new_tokens=5, do_sample=False, num_beams=2, pad_token_id=0, eos_token_id=2)

    def outputs():
        return (model.forward_hypotheses(**batch, decoder_input_ids=targets()),
                model.sequence_nll(labelled), model.generate_hypotheses(batch, **kw))

    once = outputs()
    model.encode_once = False
    every_row = outputs()
    assert torch.allclose(once[0], every_row[0], atol=1e-5)
    assert torch.allclose(once[1], every_row[1], atol=1e-5)
    assert torch.equal(once[2], every_row[2])
    assert not torch.allclose(once[0][0], once[0][1], atol=1e-4)  # the hypotheses differ


def test_an_adapter_in_the_encoder_turns_encoder_once_off():
    _, model = build("vision_gpt2")  # all-linear: the ViT's layers are adapted too
    assert not model.encode_once
    _, decoder_only = build("llama")
    assert not decoder_only.encode_once
