"""Is a method worse than the best of a leaderboard column, beyond what the choice of test
inputs explains? The paired bootstrap test (Koehn, 2004) over test inputs, pooled over seeds.

A metric takes part when it decomposes over inputs (the ``parts`` of
:func:`harness.metrics.registry.evaluate`: every reduction of a quality metric but METEOR's
corpus ones, the per-input set metrics and the probe metrics). Every method's per-input rows are stacked over
seeds, ``(inputs, seeds, ...)``: a resample draws input *positions* with replacement, the
same positions for both methods and in every seed (the seeds score the same test inputs),
and the statistic is the mean over seeds of the metric recomputed on the resample — the
number the leaderboard shows. The p-value is one-sided: the share of resamples in which the
best method is not better than the other (``(flips + 1) / (resamples + 1)``). No correction
for the number of comparisons is made: each p-value is one test against the best.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import numpy as np

from harness.metrics.bootstrap import resample_indices

RESAMPLES = 1000
ALPHA = 0.05  # p >= ALPHA: not significantly worse than the best (the leaderboard's dagger)


def over_seeds(aggregate: Callable[[np.ndarray], float]) -> Callable[[np.ndarray], float]:
    """The mean over seeds of ``aggregate``, for rows stacked ``(inputs, seeds, ...)``."""
    return lambda rows: float(np.mean([aggregate(rows[:, s]) for s in range(rows.shape[1])]))


def best_method(means: dict[str, float], higher_is_better: bool) -> str:
    """The best of a column: the best mean, the first (in row order) of those equal to it
    (``np.isclose``, as the leaderboard's bold)."""
    values = np.array(list(means.values()), dtype=float)
    target = np.nanmax(values) if higher_is_better else np.nanmin(values)
    return next(m for m, v in means.items() if np.isclose(v, target))


def against_best(rows: dict[str, np.ndarray], aggregate: Callable[[np.ndarray], float],
                 higher_is_better: bool, n_resamples: int = RESAMPLES,
                 seed: int = 0) -> dict[str, dict[str, float | str | None]]:
    """Every method against the column's best. ``rows[method]``: its per-input rows stacked
    over seeds, ``(inputs, seeds, ...)``, the same inputs and seeds for every method.

    Returns per method ``{"best": name, "delta": best − method in the better direction
    (≥ 0 but for float rounding), "p_value": ...}``; the best's own entry has ``delta`` 0 and
    ``p_value`` None. Every method meets the same resamples, and each method's statistic on
    them is computed once (identical rows, e.g. the decoders of one adapter on the NLL
    columns, once for all): the p-values of :func:`paired_bootstrap` (best, method) at the
    same seed, at a fraction of its cost.
    """
    shapes = {r.shape[:2] for r in rows.values()}
    if len(shapes) != 1:
        raise ValueError(f"paired test needs the same inputs and seeds for every method: {sorted(shapes)}")
    statistic = over_seeds(aggregate)
    sign = 1.0 if higher_is_better else -1.0
    observed = {m: statistic(r) for m, r in rows.items()}
    best = best_method(observed, higher_is_better)
    indices = resample_indices(next(iter(shapes))[0], n_resamples, seed)
    resampled: dict[bytes, np.ndarray] = {}

    def on_resamples(r: np.ndarray) -> np.ndarray:
        key = hashlib.sha256(r.tobytes()).digest() + repr(r.shape).encode()
        if key not in resampled:
            resampled[key] = np.array([statistic(r[idx]) for idx in indices])
        return resampled[key]

    out: dict[str, dict[str, float | str | None]] = {best: {"best": best, "delta": 0.0, "p_value": None}}
    for method, r in rows.items():
        if method == best:
            continue
        delta = sign * (observed[best] - observed[method])
        if delta > 0:  # Koehn's count: resamples in which the best does not keep its lead
            # not keeping the lead includes a resample where the metric is undefined (NaN)
            flips = int(np.sum(~(sign * (on_resamples(rows[best]) - on_resamples(r)) > 0)))
            p_value = (flips + 1) / (n_resamples + 1)
        else:  # no lead (equal rows, or a tie within np.isclose the best was picked from)
            p_value = 1.0
        out[method] = {"best": best, "delta": delta, "p_value": p_value}
    return out
