"""The third-party plugin package in examples/: installed with pip, it registers through the
``mclbench.methods`` entry point, shows in ``mclbench list`` and runs in a grid."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import TINY_SETS, install_example

PACKAGE = Path(__file__).resolve().parents[1] / "examples" / "mclbench-typical"


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """pip-installs the example into a folder of its own (not this environment's site-packages)."""
    return install_example(PACKAGE, tmp_path_factory.mktemp("site"))


def mclbench(args, env, cwd):
    return subprocess.run([sys.executable, "-m", "harness.cli", *args], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=600)


def test_not_there_before_install(tmp_path):
    out = mclbench(["list"], os.environ, tmp_path)
    assert out.returncode == 0 and "typical" not in out.stdout


@pytest.mark.slow
def test_listed_and_run_after_pip_install(installed, tmp_path):
    out = mclbench(["list", "--params"], installed, tmp_path)
    assert out.returncode == 0, out.stderr
    assert "typical         Locally typical sampling" in out.stdout and "typical_p = 0.9" in out.stdout
    args = ["run", "--tasks", "markov", "--methods", "lora_mle,typical", "--seeds", "0",
            "--output", "out", "--cache-dir", "cache", "--no-tracking", "--no-plots",
            "--set", "typical.num_candidates=3"]
    for s in TINY_SETS:
        args += ["--set", s]
    run = mclbench(args, installed, tmp_path)
    assert run.returncode == 0, run.stderr
    scores = pd.read_csv(tmp_path / "out" / "scores.csv")
    assert set(scores["method"]) == {"lora_mle", "typical"}
    # one adapter trained for both: the plugin reuses LoRA-MLE's cached training
    assert len(list((tmp_path / "cache" / "train").glob("[0-9a-f]*"))) == 1
    path = tmp_path / "out" / "cells" / "markov" / "typical" / "seed0" / "candidates.jsonl"
    records = [json.loads(line) for line in path.read_text().splitlines()]
    assert len(records) == 8 and all(len(r["candidates"]) == 3 for r in records)
