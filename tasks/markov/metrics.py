"""Metrics for mixtures of Markov chains, where the ground-truth modes are known.

Pure functions of numpy arrays. Conventions: a chain is a row-stochastic ``(V, V)`` matrix;
a mixture is ``transitions`` of shape ``(M, V, V)`` with component ``weights`` ``(M,)`` and an
initial-state distribution ``initial`` ``(V,)`` shared by all components; sequences have
``T`` states and the first state is the prompt, so there are ``T - 1`` predicted tokens.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment
from scipy.special import logsumexp


def total_variation(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """TV distance ``½ Σ |p - q|`` along the last axis (0 = equal, 1 = disjoint)."""
    return 0.5 * np.abs(np.asarray(p) - np.asarray(q)).sum(-1)


def matched_tv(estimated: np.ndarray, true: np.ndarray) -> tuple[float, list[tuple[int, int]]]:
    """Mean row TV between estimated ``(K, V, V)`` and true ``(M, V, V)`` chains.

    Hypotheses are matched one-to-one to components by the Hungarian algorithm on the
    mean-row-TV cost; ``min(K, M)`` pairs are matched. Returns the mean matched cost and
    the ``(hypothesis, component)`` pairs.
    """
    cost = total_variation(estimated[:, None], true[None, :]).mean(-1)  # (K, M)
    rows, cols = linear_sum_assignment(cost)
    return float(cost[rows, cols].mean()), [(int(r), int(c)) for r, c in zip(rows, cols, strict=True)]


def state_marginals(transitions: np.ndarray, initial: np.ndarray, length: int) -> np.ndarray:
    """``P_k(s_t = s)`` for t = 1..length: shape ``(M, length, V)``."""
    m, v, _ = transitions.shape
    out = np.empty((m, length, v))
    out[:, 0] = initial
    for t in range(1, length):
        out[:, t] = np.einsum("ms,msv->mv", out[:, t - 1], transitions)
    return out


def visit_weighted_mixture(transitions: np.ndarray, weights: np.ndarray, initial: np.ndarray,
                           seq_len: int) -> np.ndarray:
    """The chain ``P̄`` an MLE model learns, averaged over the positions of real prefixes.

    ``P̄[s] = Σ_k w_k v_k(s) P_k[s] / Σ_k w_k v_k(s)``, with ``v_k(s)`` the expected number
    of visits to s at positions 1..T-1 (those followed by a predicted token). For long
    sequences ``v_k`` tends to the stationary distribution: the stationary-weighted mixture.
    """
    visits = state_marginals(transitions, initial, seq_len - 1).sum(1)  # (M, V)
    wv = weights[:, None] * visits
    return np.einsum("ms,msv->sv", wv, transitions) / wv.sum(0)[:, None]


def sample_mixture(transitions: np.ndarray, weights: np.ndarray, initial: np.ndarray,
                   seq_len: int, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``n`` sequences of ``seq_len`` states and the component of each."""
    comp = rng.choice(len(weights), size=n, p=weights)
    seqs = np.empty((n, seq_len), dtype=np.int64)
    seqs[:, 0] = rng.choice(len(initial), size=n, p=initial)
    cdf = np.cumsum(transitions, axis=-1)
    for t in range(1, seq_len):
        u = rng.random(n)[:, None]
        row = cdf[comp, seqs[:, t - 1]]
        seqs[:, t] = np.minimum((u > row).sum(-1), transitions.shape[-1] - 1)
    return seqs, comp


def chain_log_likelihoods(transitions: np.ndarray, seqs: np.ndarray) -> np.ndarray:
    """``log P_k(s_2..s_T | s_1)`` for every component k and sequence: shape ``(M, N)``."""
    logp = np.log(np.clip(transitions, 1e-300, None))
    return logp[:, seqs[:, :-1], seqs[:, 1:]].sum(-1)


def nll_bounds(transitions: np.ndarray, weights: np.ndarray, initial: np.ndarray, seq_len: int,
               num_hypotheses: int, num_samples: int = 20_000, seed: int = 0) -> dict[str, float]:
    """Theoretical per-token NLL levels (nats), by Monte Carlo over ``num_samples`` sequences.

    - ``mixture``: ``H_mix / (T-1)``, the conditional entropy of the mixture: the optimum
      of maximum likelihood (one model of the whole mixture).
    - ``mcl_low`` / ``mcl_high``: the band of the oracle (best-of-K) NLL of K hypotheses,
      ``[(H_mix - log K) / (T-1), mean per-chain entropy rate]``; the upper end is reached
      when each hypothesis models one chain exactly.
    """
    rng = np.random.default_rng(seed)
    seqs, comp = sample_mixture(transitions, weights, initial, seq_len, num_samples, rng)
    ll = chain_log_likelihoods(transitions, seqs)  # (M, N)
    h_mix = -logsumexp(ll + np.log(weights)[:, None], axis=0).mean()
    per_chain = -ll[comp, np.arange(num_samples)].mean()
    n_tokens = seq_len - 1
    return {
        "mixture": float(h_mix / n_tokens),
        "mcl_low": float((h_mix - np.log(num_hypotheses)) / n_tokens),
        "mcl_high": float(per_chain / n_tokens),
    }


def winner_shares(nll: np.ndarray) -> np.ndarray:
    """Fraction of sequences each hypothesis wins (lowest NLL); ``nll`` is ``(K, N)``."""
    k = nll.shape[0]
    return np.bincount(nll.argmin(0), minlength=k) / nll.shape[1]


def collapsed_hypotheses(shares: np.ndarray, threshold: float = 0.05) -> int:
    """Number of hypotheses that win fewer than ``threshold`` of the sequences."""
    return int((np.asarray(shares) < threshold).sum())
