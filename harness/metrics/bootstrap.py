"""Bootstrap confidence intervals over inputs, and a paired bootstrap test between systems.

A metric takes part when it decomposes over inputs (:mod:`harness.metrics.registry`'s
``parts``): ``per_input`` holds one row per input
(sufficient statistics for corpus BLEU/chrF, or the input's value for metrics that are
means over inputs) and ``aggregate(rows)`` recomputes the metric from any resample of
them. Resampling draws inputs with replacement, ``n_resamples`` times, from a seeded
generator (same seed, same interval).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def resample_indices(n_inputs: int, n_resamples: int = 1000, seed: int = 0) -> list[np.ndarray]:
    """The input positions of each resample, drawn with replacement from a seeded generator:
    the one stream every test and interval here uses (same seed, same resamples)."""
    rng = np.random.default_rng(seed)
    return [rng.integers(0, n_inputs, n_inputs) for _ in range(n_resamples)]


def bootstrap_ci(per_input: np.ndarray, aggregate: Callable[[np.ndarray], float],
                 n_resamples: int = 1000, confidence: float = 0.95,
                 seed: int = 0) -> tuple[float, float]:
    """Percentile interval of ``aggregate`` over resamples of the inputs (a resample on which
    it is undefined, NaN, left out)."""
    values = [aggregate(per_input[idx]) for idx in resample_indices(len(per_input), n_resamples, seed)]
    tail = (1 - confidence) / 2 * 100
    low, high = np.nanpercentile(values, [tail, 100 - tail])
    return float(low), float(high)


def paired_bootstrap(a: np.ndarray, b: np.ndarray, aggregate: Callable[[np.ndarray], float],
                     n_resamples: int = 1000, seed: int = 0) -> dict[str, float]:
    """Is system a better than b on the same inputs? Both resampled with the same indices.

    Returns the observed difference ``a - b`` and the one-sided p-value: the share of
    resamples in which the difference does not keep the observed sign (Koehn, 2004).
    """
    if len(a) != len(b):
        raise ValueError(f"paired test needs the same inputs: {len(a)} vs {len(b)} rows")
    observed = aggregate(a) - aggregate(b)
    flips = 0
    for idx in resample_indices(len(a), n_resamples, seed):
        delta = aggregate(a[idx]) - aggregate(b[idx])
        # a resample without the observed sign (or where the metric is undefined, NaN) is a flip
        flips += not (delta > 0) if observed > 0 else not (delta < 0)
    return {"delta": float(observed), "p_value": (flips + 1) / (n_resamples + 1)}
