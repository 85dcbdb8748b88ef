"""Markov-mixture metrics on chains whose answers are known in closed form."""

import numpy as np
import pytest

from tasks.markov import metrics as mm
from tasks.markov.task import PAPER_TRANSITIONS

P = np.asarray(PAPER_TRANSITIONS)
W = np.array([0.5, 0.5])
INIT = np.array([0.5, 0.5])


def test_total_variation():
    assert mm.total_variation([0.2, 0.8], [0.5, 0.5]) == pytest.approx(0.3)
    assert mm.total_variation([1, 0], [0, 1]) == pytest.approx(1.0)


def test_hungarian_matching_undoes_a_permutation():
    est = P[::-1] + 0.01 * np.array([[[1, -1], [-1, 1]]] * 2)
    tv, pairs = mm.matched_tv(est, P)
    assert sorted(pairs) == [(0, 1), (1, 0)]
    assert tv == pytest.approx(0.01)


def test_matching_with_fewer_hypotheses_takes_the_closest_component():
    tv, pairs = mm.matched_tv(P[1:2], P)
    assert pairs == [(0, 1)] and tv == 0.0


def test_visit_weighted_mixture_tends_to_stationary_weighting():
    stationary = np.array([[0.9 / 1.1, 0.2 / 1.1], [0.25 / 1.05, 0.8 / 1.05]])  # q/(p+q), p/(p+q)
    want = np.einsum("ms,msv->sv", stationary, P) / stationary.sum(0)[:, None]
    got = mm.visit_weighted_mixture(P, W, INIT, seq_len=5000)
    assert np.allclose(got, want, atol=1e-3)
    assert np.allclose(got.sum(-1), 1.0)


def test_sampled_sequences_follow_their_chain():
    seqs, comp = mm.sample_mixture(P, W, INIT, 200, 400, np.random.default_rng(0))
    for k in range(2):
        s = seqs[comp == k]
        counts = np.zeros((2, 2))
        np.add.at(counts, (s[:, :-1], s[:, 1:]), 1)
        assert np.allclose(counts / counts.sum(1, keepdims=True), P[k], atol=0.02)


def test_chain_log_likelihood_by_hand():
    seqs = np.array([[0, 0, 1]])
    ll = mm.chain_log_likelihoods(P, seqs)
    assert ll[0, 0] == pytest.approx(np.log(0.8) + np.log(0.2))
    assert ll[1, 0] == pytest.approx(np.log(0.2) + np.log(0.8))


def test_nll_bounds_are_ordered():
    b = mm.nll_bounds(P, W, INIT, seq_len=32, num_hypotheses=2, num_samples=4000)
    assert b["mcl_low"] <= b["mcl_high"] <= b["mixture"]
    assert b["mixture"] - b["mcl_low"] == pytest.approx(np.log(2) / 31)
    one = mm.nll_bounds(P[:1], np.array([1.0]), INIT, 32, 1, num_samples=4000)
    assert one["mixture"] == pytest.approx(one["mcl_high"])  # a single chain: no mixture cost


def test_winner_shares_and_collapse():
    nll = np.array([[0.1, 0.2, 0.9, 0.1], [0.5, 0.1, 0.2, 0.3], [1, 1, 1, 1]])
    shares = mm.winner_shares(nll)
    assert shares.tolist() == [0.5, 0.5, 0.0]
    assert mm.collapsed_hypotheses(shares) == 1
