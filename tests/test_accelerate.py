"""`--processes 2`: training and decoding under `accelerate launch` on two CPU processes (gloo)
give the one-process metrics (within float rounding) and the same candidates."""

import json

import pandas as pd
import pytest

from harness.cli import main
from tests.conftest import TINY_SETS

pytest.importorskip("accelerate")


def run(tmp_path, name, *extra):
    args = ["run", "--tasks", "markov", "--methods", "lora_mcl,lora_mle,nucleus", "--seeds", "0",
            "--output", str(tmp_path / name), "--cache-dir", str(tmp_path / f"{name}_cache"),
            "--no-tracking", "--no-plots", *extra]
    for s in TINY_SETS:
        args += ["--set", s]
    args += ["--set", "nucleus.num_candidates=2"]
    assert main(args) == 0
    return pd.read_csv(tmp_path / name / "scores.csv").set_index(["method", "metric"])["value"]


def candidates(tmp_path, name, method):
    path = tmp_path / name / "cells" / "markov" / method / "seed0" / "candidates.jsonl"
    return [json.loads(line)["candidates"] for line in path.read_text().splitlines()]


@pytest.mark.slow
def test_two_processes_train_and_decode_like_one(tmp_path, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # each of the two processes: one core
    one = run(tmp_path, "one")
    two = run(tmp_path, "two", "--processes", "2")
    assert list(one.index) == list(two.index)
    # DDP averages the two half-batch gradients: the whole batch's gradient, up to rounding
    for metric in ("markov_tv", "markov_tv_prefix", "val_nll"):
        for method in ("lora_mcl", "lora_mle"):
            assert two[method, metric] == pytest.approx(one[method, metric], abs=2e-3), (method, metric)
    # decoding takes every other input in each process; sampling is seeded per input
    for method in ("lora_mcl", "lora_mle", "nucleus"):
        assert candidates(tmp_path, "two", method) == candidates(tmp_path, "one", method)
    log_one, log_two = (json.loads((tmp_path / name / "cells" / "markov" / "lora_mcl" / "seed0" /
                                    "train_log.json").read_text()) for name in ("one", "two"))
    # winner counts are summed over the processes: each entry covers the whole batch
    assert [sum(w) for w in log_two["winner_counts"]] == [sum(w) for w in log_one["winner_counts"]]
    assert log_two["loss"] == pytest.approx(log_one["loss"], abs=1e-3)


@pytest.mark.slow
def test_gradient_accumulation_trains_like_the_whole_batch(tmp_path):
    one = run(tmp_path, "whole")
    two = run(tmp_path, "accum", "--set", "method.grad_accum_steps=4")
    for method in ("lora_mcl", "lora_mle"):
        for metric in ("markov_tv", "val_nll"):
            assert two[method, metric] == pytest.approx(one[method, metric], abs=2e-3), (method, metric)


def test_batch_must_split_into_micro_batches(tmp_path, capsys):
    args = ["run", "--tasks", "markov", "--methods", "lora_mle", "--output", str(tmp_path / "o"),
            "--cache-dir", str(tmp_path / "c"), "--no-tracking", "--set", "method.batch_size=16",
            "--set", "method.grad_accum_steps=3"]
    assert main(args) == 2
    assert "batch_size 16 is not a multiple of grad_accum_steps 3" in capsys.readouterr().err


@pytest.mark.slow
def test_accelerate_config_file_is_passed_through(tmp_path, monkeypatch):
    """An `accelerate config` file (here: DDP on 2 processes with bf16 mixed precision, which
    accelerate runs on the CPU too): it trains under a cache key of its own, near fp32."""
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    config = tmp_path / "bf16.yaml"
    config.write_text("compute_environment: LOCAL_MACHINE\ndistributed_type: MULTI_GPU\n"
                      "num_machines: 1\nnum_processes: 2\nmachine_rank: 0\nmixed_precision: bf16\n"
                      "rdzv_backend: static\nsame_network: true\nuse_cpu: false\n")
    fp32 = run(tmp_path, "fp32")
    bf16 = run(tmp_path, "bf16", "--processes", "2", "--accelerate-config", str(config))
    # far more than the 1e-9 by which 2 fp32 processes differ from 1: it did run in bf16
    assert abs(bf16["lora_mcl", "markov_tv"] - fp32["lora_mcl", "markov_tv"]) > 1e-6
    for method in ("lora_mcl", "lora_mle"):
        assert bf16[method, "val_nll"] == pytest.approx(fp32[method, "val_nll"], abs=0.01)
