"""Each MCL loss against a hand-computed example (K = 2 hypotheses, B = 3 sequences)."""

import math

import pytest
import torch

from methods.lora_mcl import (
    annealed_wta_loss,
    annealing_temperature,
    mcl_loss,
    relaxed_wta_loss,
    wta_loss,
)

NLL = [[1.0, 2.0, 0.5],   # hypothesis 0
       [0.5, 3.0, 1.0]]   # hypothesis 1  -> winners: 1, 0, 0


def nll(requires_grad=False):
    return torch.tensor(NLL, requires_grad=requires_grad)


def test_wta_is_mean_of_per_sequence_minimum():
    assert wta_loss(nll()).item() == pytest.approx((0.5 + 2.0 + 0.5) / 3)


def test_wta_gradient_reaches_only_the_winner():
    x = nll(True)
    wta_loss(x).backward()
    expected = torch.tensor([[0, 1 / 3, 1 / 3], [1 / 3, 0, 0]])
    assert torch.allclose(x.grad, expected)


def test_relaxed_wta_weights_winner_1_minus_eps_others_eps_over_k_minus_1():
    eps = 0.1
    by_hand = [0.9 * 0.5 + 0.1 * 1.0, 0.9 * 2.0 + 0.1 * 3.0, 0.9 * 0.5 + 0.1 * 1.0]
    assert relaxed_wta_loss(nll(), eps).item() == pytest.approx(sum(by_hand) / 3)


def test_relaxed_wta_three_hypotheses():
    x = torch.tensor([[1.0], [2.0], [4.0]])  # winner 0; others get eps / 2 each
    assert relaxed_wta_loss(x, 0.2).item() == pytest.approx(0.8 * 1.0 + 0.1 * 2.0 + 0.1 * 4.0)


def test_annealed_wta_uses_detached_softmax_weights():
    t = 0.5
    by_hand = []
    for b in range(3):
        a, c = NLL[0][b], NLL[1][b]
        wa = math.exp(-a / t) / (math.exp(-a / t) + math.exp(-c / t))
        by_hand.append((wa, 1 - wa, wa * a + (1 - wa) * c))
    x = nll(True)
    loss = annealed_wta_loss(x, t)
    assert loss.item() == pytest.approx(sum(v[2] for v in by_hand) / 3)
    loss.backward()  # no gradient through the weights: d loss / d nll[k, b] = w[k, b] / B
    expected = torch.tensor([[v[0] / 3 for v in by_hand], [v[1] / 3 for v in by_hand]])
    assert torch.allclose(x.grad, expected, atol=1e-6)


def test_annealing_schedule_and_switch_to_hard_wta():
    assert annealing_temperature(0, 1.0, 0.01, 0.9) == pytest.approx(1.0)
    assert annealing_temperature(2, 1.0, 0.01, 0.9) == pytest.approx(0.01 + 0.99 * 0.81)
    hot = mcl_loss(nll(), "annealed", step=0, t0=100.0, t_final=1e-3, rho=0.5)
    assert hot.item() == pytest.approx(nll().mean(0).mean().item(), rel=1e-2)  # ~uniform weights
    # rho = 0: T = t_final from step 1 on, and the loss is exactly hard WTA
    assert mcl_loss(nll(), "annealed", step=1, t0=1.0, t_final=1e-3, rho=0.0).item() == \
        pytest.approx(wta_loss(nll()).item())


def test_single_hypothesis_losses_reduce_to_mle():
    x = torch.tensor([[1.0, 3.0]])
    for loss in ("wta", "relaxed", "annealed"):
        assert mcl_loss(x, loss, step=0).item() == pytest.approx(2.0)


def test_unknown_loss_is_rejected():
    with pytest.raises(ValueError, match="unknown loss"):
        mcl_loss(nll(), "softmin", step=0)
