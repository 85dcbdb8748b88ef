"""Bootstrap intervals and the paired test."""

import numpy as np
import pytest
from test_text_metrics import CANDS, REFS

from harness.metrics import registry
from harness.metrics import text as tx
from harness.metrics.bootstrap import bootstrap_ci, paired_bootstrap


def parts(cands, refs, names):
    return registry.evaluate(names, registry.ScoreInputs(cands, refs)).parts


def test_decompositions_reproduce_the_point_estimates():
    found = parts(CANDS, REFS, ["bleu", "chrf"])
    point = tx.quality_flavours(CANDS, REFS)
    assert set(point) == set(found)  # every reduction of the two decomposes
    for name, value in point.items():
        rows, aggregate = found[name]
        assert aggregate(rows) == value, name


def test_interval_contains_the_estimate_and_is_reproducible():
    rows, aggregate = parts(CANDS, REFS, ["bleu"])["top1/bleu"]
    low, high = bootstrap_ci(rows, aggregate, n_resamples=300, seed=1)
    assert low < aggregate(rows) < high
    assert (low, high) == bootstrap_ci(rows, aggregate, n_resamples=300, seed=1)
    assert (low, high) != bootstrap_ci(rows, aggregate, n_resamples=300, seed=2)


def test_constant_values_give_a_point_interval():
    assert bootstrap_ci(np.full(10, 0.5), np.mean, n_resamples=50) == (0.5, 0.5)


def test_paired_bootstrap():
    a = np.array([0.9, 0.8, 0.95, 0.85, 0.9, 0.7, 0.8, 0.9])
    better = paired_bootstrap(a, a - 0.1, np.mean, n_resamples=200)
    assert better["delta"] == pytest.approx(0.1) and better["p_value"] < 0.01
    same = paired_bootstrap(a, a, np.mean, n_resamples=200)
    assert same["delta"] == 0 and same["p_value"] == 1.0
    with pytest.raises(ValueError, match="same inputs"):
        paired_bootstrap(a, a[:3], np.mean)
