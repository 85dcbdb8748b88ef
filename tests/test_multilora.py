"""MultiLoRAModel: one batched forward of K hypotheses equals K separate adapters."""

import copy

import pytest
import torch
from transformers import GPTNeoConfig, GPTNeoForCausalLM

from methods.lora.model import MultiLoRAConfig, MultiLoRAModel

TARGETS = ["q_proj", "k_proj", "v_proj", "out_proj"]


def tiny_base(seed=0):
    torch.manual_seed(seed)
    cfg = GPTNeoConfig(vocab_size=7, max_position_embeddings=16, hidden_size=16, num_layers=2,
                       num_heads=2, attention_types=[[["global"], 2]], intermediate_size=32,
                       embed_dropout=0.0, attention_dropout=0.0, resid_dropout=0.0,
                       bos_token_id=6, eos_token_id=None, pad_token_id=6)
    return GPTNeoForCausalLM(cfg).eval()


def multi(k=3, rank=2, seed=0):
    model = MultiLoRAModel(tiny_base(seed), MultiLoRAConfig(k, rank, 4.0, 0.0, TARGETS))
    torch.manual_seed(seed + 1)
    for name, p in model.named_parameters():
        if "lora_B" in name:  # B = 0 at init; give every hypothesis a distinct, non-zero update
            p.data.normal_(0, 0.5)
    return model.eval()


def test_adapters_start_as_the_base_model():
    base = tiny_base()
    ids = torch.randint(0, 6, (2, 5))
    want = base(input_ids=ids).logits
    model = MultiLoRAModel(copy.deepcopy(base), MultiLoRAConfig(2, 2, 4.0, 0.0, TARGETS))
    got = model.forward_hypotheses(input_ids=ids)
    assert torch.allclose(got, want.expand_as(got), atol=1e-6)


def test_batched_forward_equals_separate_single_adapter_forwards():
    model = multi(k=3)
    ids = torch.randint(0, 6, (4, 9))
    batched = model.forward_hypotheses(input_ids=ids, attention_mask=torch.ones_like(ids))
    assert batched.shape == (3, 4, 9, 7)
    for k in range(3):
        alone = model.single_hypothesis(k, tiny_base()).forward_hypotheses(input_ids=ids)[0]
        assert torch.allclose(batched[k], alone, atol=1e-5), k
    # and the hypotheses really differ, so the check above is not vacuous
    assert not torch.allclose(batched[0], batched[1], atol=1e-3)


def test_multilora_linear_matches_lora_formula():
    torch.manual_seed(0)
    base = torch.nn.Linear(5, 4)
    model = torch.nn.Sequential(base)
    m = MultiLoRAModel(model, MultiLoRAConfig(2, 3, 6.0, 0.0, ["0"]))
    layer = model[0]
    layer.lora_B.data.normal_()
    x = torch.randn(2, 7, 5)
    m.router.set_index(torch.tensor([1, 0]))
    y = layer(x)
    for row, k in enumerate([1, 0]):
        a, b = layer.lora_A[k * 3:(k + 1) * 3], layer.lora_B[:, k * 3:(k + 1) * 3]
        want = base(x[row]) + (x[row] @ a.T @ b.T) * (6.0 / 3)
        assert torch.allclose(y[row], want, atol=1e-6)


def test_sequence_nll_is_mean_over_target_tokens_only():
    model = multi(k=2)
    ids = torch.randint(0, 6, (3, 8))
    labels = ids.clone()
    labels[:, :3] = -100  # prompt
    labels[0, 6:] = -100  # padding
    nll = model.sequence_nll({"input_ids": ids, "attention_mask": torch.ones_like(ids),
                              "labels": labels})
    logits = model.forward_hypotheses(input_ids=ids)
    logp = torch.log_softmax(logits[:, :, :-1], -1)
    tgt = labels[:, 1:]
    for k in range(2):
        for b in range(3):
            mask = tgt[b] != -100
            tok = -logp[k, b, torch.arange(7)[mask], tgt[b][mask]]
            assert nll[k, b].item() == pytest.approx(tok.mean().item(), abs=1e-5)


@pytest.mark.parametrize("num_beams", [1, 3])
def test_generate_per_hypothesis_equals_that_adapter_alone(num_beams):
    model = multi(k=3)
    ids = torch.tensor([[6, 1], [6, 4]])
    kwargs = dict(max_new_tokens=6, min_new_tokens=6, num_beams=num_beams, do_sample=False,
                  pad_token_id=6, suppress_tokens=[6])
    batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
    out = model.generate_hypotheses(batch, **kwargs)
    assert out.shape == (3, 2, 8)
    for k in range(3):
        alone = model.single_hypothesis(k, tiny_base()).generate_hypotheses(batch, **kwargs)[0]
        assert torch.equal(out[k], alone), k


def test_save_and_load_round_trip(tmp_path):
    model = multi(k=2)
    model.save_adapters(tmp_path)
    assert (tmp_path / "adapters.safetensors").exists()
    loaded = MultiLoRAModel.from_saved(tiny_base(), tmp_path).eval()
    ids = torch.randint(0, 6, (2, 5))
    assert torch.equal(model.forward_hypotheses(input_ids=ids),
                       loaded.forward_hypotheses(input_ids=ids))


def test_unknown_target_modules_name_the_real_ones():
    with pytest.raises(ValueError, match="q_proj"):
        MultiLoRAModel(tiny_base(), MultiLoRAConfig(2, 2, 4.0, 0.0, ["query"]))


def test_only_adapters_are_trainable():
    model = multi(k=2)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n for n in trainable)
    assert model.num_trainable_parameters() == sum(
        p.numel() for n, p in model.named_parameters() if p.requires_grad)
