"""Decoding baselines on the LoRA-MLE adapter: beam and nucleus share its training."""

import json

import pandas as pd
import pytest

from harness.cli import main


def candidates(out, method, seed=0):
    path = out / "cells" / "markov" / method / f"seed{seed}" / "candidates.jsonl"
    return [json.loads(line)["candidates"] for line in path.read_text().splitlines()]


def run(out, cache, tiny_sets, methods, *extra):
    return main(["run", "--tasks", "markov", "--methods", methods, "--output", str(out),
                 "--cache-dir", str(cache), "--no-tracking", *tiny_sets, *extra])


@pytest.mark.slow
def test_decoders_share_one_adapter_and_report_their_cost(run_dirs, tiny_sets):
    out, cache = run_dirs
    assert run(out, cache, tiny_sets, "lora_mle,beam,nucleus,diverse_beam,lora_mcl,moe_lora",
               "--set", "beam.num_candidates=3", "--set", "nucleus.num_candidates=5",
               "--set", "diverse_beam.num_candidates=6", "--set", "diverse_beam.num_groups=3",
               "--set", "diverse_beam.diversity_penalty=2.0") == 0
    assert len(list((cache / "train").glob("*/MANIFEST.json"))) == 3  # MLE adapter, MCL, MoE
    assert len(list((cache / "decode").glob("*/MANIFEST.json"))) == 6
    assert all(len(c) == 1 for c in candidates(out, "lora_mle"))
    assert all(len(c) == 3 for c in candidates(out, "beam"))
    assert all(len(c) == 5 for c in candidates(out, "nucleus"))
    diverse = candidates(out, "diverse_beam")
    assert all(len(c) == 6 and all(len(x.split()) == 31 for x in c) for c in diverse)
    scores = pd.read_csv(out / "scores.csv").pivot_table(index="method", columns="metric",
                                                         values="value")
    params = scores["trainable_params"]
    assert params["lora_mle"] == params["beam"] == params["nucleus"] == params["diverse_beam"] > 0
    assert params["lora_mcl"] == 2 * params["lora_mle"]  # K = 2 adapters of the same rank
    assert params["moe_lora"] > params["lora_mcl"]  # E = K experts of rank r, plus routers
    steps = 31  # seq_len - 1 new tokens
    assert scores["decode_forward_passes"].to_dict() == {
        "beam": 3 * steps, "diverse_beam": 6 * steps, "lora_mcl": 2 * steps, "lora_mle": steps,
        "nucleus": 5 * steps, "moe_lora": 2 * steps}
    board = (out / "leaderboard.md").read_text()
    assert "trainable_params" in board and "decode_forward_passes" in board


@pytest.mark.slow
def test_nucleus_samples_depend_on_seed_not_on_batching(run_dirs, tiny_sets):
    out, cache = run_dirs
    assert run(out, cache, tiny_sets, "nucleus", "--seeds", "0,1") == 0
    seed0, seed1 = candidates(out, "nucleus", 0), candidates(out, "nucleus", 1)
    assert seed0 != seed1
    assert len({c for cands in seed0 for c in cands}) > len(seed0)  # samples differ within inputs
    again = out.parent / "again"
    assert run(again, out.parent / "cache2", tiny_sets, "nucleus",
               "--set", "nucleus.decode_batch_size=3") == 0
    assert candidates(again, "nucleus", 0) == seed0
