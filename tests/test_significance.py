"""The leaderboard's significance test (paired bootstrap against each column's best, pooled
over seeds): hand-computable cases, identical systems, and that it tests the very numbers
the table shows."""

import json
from pathlib import Path

import numpy as np
import pytest

from harness import scoring
from harness.metrics import registry
from harness.metrics import significance as sig
from harness.metrics.bootstrap import paired_bootstrap

ROWS = [json.loads(line) for line in
        (Path(__file__).parent / "fixtures" / "multi30k_val_captions.jsonl").read_text().splitlines()]
CANDS = [r["captions"][:2] for r in ROWS]  # real sentences: 2 candidates, 3 references
REFS = [r["captions"][2:] for r in ROWS]


def _mean(rows):
    return float(np.mean(rows))


def input_rows(cands, refs, names, probes=None):
    return registry.evaluate(names, registry.ScoreInputs(cands, refs, probes=probes)).parts


def test_a_method_worse_on_every_input_gets_the_smallest_p_value():
    # every per-input difference is positive, so no resample can reverse the lead: p = 1/(R+1)
    rows = {"a": np.array([[3.0], [2.0], [5.0]]), "b": np.array([[1.0], [1.5], [4.0]])}
    out = sig.against_best(rows, _mean, higher_is_better=True, n_resamples=200)
    assert out["a"] == {"best": "a", "delta": 0.0, "p_value": None}
    assert out["b"]["best"] == "a" and out["b"]["delta"] == pytest.approx(3.5 / 3)
    assert out["b"]["p_value"] == pytest.approx(1 / 201)


def test_two_inputs_by_hand():
    # differences best − other = [+2, −1]: a resample of 2 positions has mean difference
    # 2, 0.5, 0.5 or −1 with probability 1/4 each, so the best loses its lead in 1/4 of them
    rows = {"best": np.array([[2.0], [0.0]]), "other": np.array([[0.0], [1.0]])}
    p = sig.against_best(rows, _mean, True, n_resamples=20000)["other"]["p_value"]
    assert p == pytest.approx(0.25, abs=0.01)  # binomial sd 0.003 at 20 000 resamples
    # the same with the direction reversed (lower is better) and the rows negated
    neg = {k: -v for k, v in rows.items()}
    assert sig.against_best(neg, _mean, False, n_resamples=20000)["other"]["p_value"] == p


def test_pooled_seeds_statistic_is_the_mean_over_seeds():
    rows = np.array([[[1.0], [3.0]], [[2.0], [5.0]]])  # (inputs 2, seeds 2, 1)
    assert sig.over_seeds(_mean)(rows) == pytest.approx(np.mean([1.5, 4.0]))


@pytest.mark.parametrize("metric", ["max/bleu", "top1/bleu", "mean/chrf", "div_2", "mbleu_4"])
def test_identical_methods_are_never_significantly_different(metric):
    rng = np.random.default_rng(1)
    per_seed = []
    for _ in range(2):  # two "seeds": the candidates shuffled differently
        cands = [list(rng.permutation(c)) for c in CANDS]
        per_seed.append(input_rows(cands, REFS, [metric])[metric])
    stacked = np.stack([rows for rows, _ in per_seed], axis=1)
    worse = stacked.copy()
    out = sig.against_best({"a": stacked, "b": worse, "c": stacked.copy()}, per_seed[0][1],
                           higher_is_better=metric != "mbleu_4", n_resamples=300)
    assert out["b"]["p_value"] == 1.0 and out["c"]["p_value"] == 1.0
    assert out["b"]["delta"] == 0.0


def test_the_rows_reproduce_the_scores_the_table_shows():
    reductions = ("top1", "mean", "oracle_corpus", "max", "max@2")
    metrics = [f"{f}/{m}" for m in ("bleu", "chrf") for f in reductions]
    metrics += ["div_1", "div_2", "unique", "refs_covered", "mbleu_4"]
    values, _ = scoring.score(list(range(len(CANDS))), CANDS, REFS, metrics)
    parts = input_rows(CANDS, REFS, metrics)
    assert set(metrics) <= set(parts)
    per_input = {m.name for m in registry.load().values() if m.kind == "set" and m.per_input}
    assert {"div_1", "div_2", "unique", "refs_covered", "mbleu_4"} <= per_input
    for name in metrics:
        rows, aggregate = parts[name]
        assert aggregate(rows) == values[name], name  # the same arithmetic: equal, not close


def test_nll_rows_reproduce_oracle_and_top1_nll():
    from harness.metrics.likelihood import nll_flavours

    rng = np.random.default_rng(0)
    nll, owner = rng.random((3, 7)), np.array([0, 0, 1, 2, 2, 2, 3])
    want = nll_flavours(nll, owner)
    probes = {"reference_nll": nll, "reference_owner": owner}
    found = input_rows([["a"]] * 4, [["a"]] * 4, ["oracle_nll", "top1_nll"], probes)
    for name in ("oracle_nll", "top1_nll"):
        rows, aggregate = found[name]
        assert len(rows) == 4 and aggregate(rows) == pytest.approx(want[name])


def test_the_leaderboard_best_is_the_first_of_equal_means():
    assert sig.best_method({"a": 1.0, "b": 2.0, "c": 2.0}, True) == "b"
    assert sig.best_method({"a": 1.0, "b": 2.0, "c": 1.0}, False) == "a"


def test_a_tie_picked_within_isclose_is_never_significant():
    rows = {"a": np.full((5, 1), 1.0), "b": np.full((5, 1), 1.0 + 1e-12)}  # b ahead by rounding
    out = sig.against_best(rows, _mean, True, n_resamples=50)
    assert out["a"]["p_value"] is None and out["b"]["p_value"] == 1.0


def test_the_same_resamples_as_the_two_system_test():
    a, b = np.array([[1.0], [0.2], [0.7], [0.9]]), np.array([[0.5], [0.4], [0.1], [0.8]])
    out = sig.against_best({"a": a, "b": b}, _mean, True, n_resamples=100, seed=3)
    assert out["b"]["p_value"] == paired_bootstrap(a, b, sig.over_seeds(_mean), 100, 3)["p_value"]
