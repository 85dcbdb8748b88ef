"""MoE-LoRA: the router, top-k, zero-init uniform mixture, the Switch auxiliary loss."""

import pytest
import torch

from methods.moe_lora import (
    MoELoRAConfig,
    MoELoRALinear,
    MoELoRAModel,
    router_probs,
    switch_aux_loss,
)


def test_dense_router_probabilities_sum_to_one():
    p = router_probs(torch.randn(5, 7, 4), top_k=0)
    assert torch.allclose(p.sum(-1), torch.ones(5, 7)) and (p > 0).all()


@pytest.mark.parametrize("k", [1, 2, 3])
def test_top_k_keeps_k_experts_renormalised(k):
    logits = torch.randn(6, 4)
    p = router_probs(logits, top_k=k)
    assert ((p > 0).sum(-1) == k).all()
    assert torch.allclose(p.sum(-1), torch.ones(6))
    kept = logits.topk(k, -1).indices
    assert torch.equal(p.gather(-1, kept) > 0, torch.ones_like(kept, dtype=torch.bool))
    dense = torch.softmax(logits, -1).gather(-1, kept)
    assert torch.allclose(p.gather(-1, kept), dense / dense.sum(-1, keepdim=True))


def test_zero_initialised_router_is_a_uniform_mixture():
    torch.manual_seed(0)
    base = torch.nn.Linear(6, 5)
    layer = MoELoRALinear(base, MoELoRAConfig(num_experts=3, rank=2, alpha=4.0))
    layer.lora_B.data.normal_()
    x = torch.randn(2, 4, 6)
    want = base(x)
    for e in range(3):
        a, b = layer.lora_A[e * 2:(e + 1) * 2], layer.lora_B[:, e * 2:(e + 1) * 2]
        want = want + (x @ a.T @ b.T) * (4.0 / 2) / 3
    assert torch.allclose(layer(x), want, atol=1e-6)


def test_switch_aux_loss_by_hand():
    probs = torch.tensor([[0.7, 0.3], [0.6, 0.4], [0.9, 0.1], [0.2, 0.8]])
    # top expert: 0, 0, 0, 1 -> f = (0.75, 0.25); mean probability P = (0.6, 0.4)
    assert switch_aux_loss(probs).item() == pytest.approx(2 * (0.75 * 0.6 + 0.25 * 0.4))
    balanced = torch.tensor([[0.9, 0.1], [0.1, 0.9]])
    assert switch_aux_loss(balanced).item() == pytest.approx(1.0)


def test_model_parameters_aux_and_round_trip(tmp_path):
    from test_multilora import tiny_base

    cfg = MoELoRAConfig(num_experts=2, rank=2, alpha=4.0, target_modules=["q_proj", "v_proj"])
    model = MoELoRAModel(tiny_base(), cfg)
    # per layer: A (E·r × 16) + B (16 × E·r) + router (E × 16); 2 layers × 2 targets
    assert model.num_trainable_parameters() == 4 * (4 * 16 + 16 * 4 + 2 * 16)
    ids = torch.randint(0, 6, (3, 5))
    logits = model.forward_hypotheses(input_ids=ids)
    assert logits.shape == (1, 3, 5, 7)
    # zero router: top-1 is expert 0 everywhere (f = (1, 0)), P = (1/2, 1/2): E·Σ f·P = 1
    assert model.aux_loss().item() == pytest.approx(1.0)
    for p in model.parameters():
        if p.requires_grad:
            p.data.normal_(0, 0.3)
    model.save_adapters(tmp_path)
    loaded = MoELoRAModel.from_saved(tiny_base(), tmp_path)
    assert torch.equal(model.forward_hypotheses(input_ids=ids), loaded.forward_hypotheses(input_ids=ids))
