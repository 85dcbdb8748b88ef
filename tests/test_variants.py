"""Method variants: a registered method under a row name of its own, with its own settings."""

import pandas as pd
import pytest

from harness.cli import main

HEAD = """
tasks:
  markov: {num_train: 512, num_val: 256, num_test: 8, hidden_size: 32, num_layers: 1, num_heads: 2}
methods:
  lora_mle: {rank: 4, steps: 20, batch_size: 16}
seeds: [0]
"""


def run(tmp_path, text, *extra):
    config = tmp_path / "run.yaml"
    config.write_text(text)
    return main(["run", "--config", str(config), "--output", str(tmp_path / "out"),
                 "--cache-dir", str(tmp_path / "cache"), "--no-tracking", "--no-plots", *extra])


@pytest.mark.slow
def test_variants_are_rows_and_share_artifacts_with_equal_settings(tmp_path):
    text = HEAD + """variants:
  lora_mle_r2: {method: lora_mle, rank: 2, steps: 20, batch_size: 16}
  mle_again: {method: lora_mle, rank: 4, steps: 20, batch_size: 16}
  beam_wide: {method: beam, rank: 4, steps: 20, batch_size: 16, num_candidates: 3}
per_task:
  markov: {lora_mle_r2: {alpha: 4.0}}
"""
    assert run(tmp_path, text) == 0
    scores = pd.read_csv(tmp_path / "out" / "scores.csv").pivot_table(
        index="method", columns="metric", values="value")
    assert set(scores.index) == {"lora_mle", "lora_mle_r2", "mle_again", "beam_wide"}
    params = scores["trainable_params"]
    assert params["lora_mle_r2"] * 2 == params["lora_mle"] == params["mle_again"] == params["beam_wide"]
    assert scores.loc["mle_again"].equals(scores.loc["lora_mle"])  # the same cached cell
    cache = tmp_path / "cache"
    assert len(list((cache / "train").glob("*/MANIFEST.json"))) == 2  # rank 4 (three rows), rank 2
    assert len(list((cache / "decode").glob("*/MANIFEST.json"))) == 3  # greedy r4, greedy r2, beam
    # --set reaches a variant by its row name and takes its method's parameters
    assert run(tmp_path, text, "--set", "lora_mle_r2.rank=3", "--methods", "lora_mle_r2", "--overwrite") == 0
    one = pd.read_csv(tmp_path / "out" / "scores.csv").set_index("metric")["value"]
    assert one["trainable_params"] == params["lora_mle_r2"] * 3 / 2


@pytest.mark.parametrize("variants, message", [
    ("  v: {rank: 2}", "variants.v: needs method:"),
    ("  beam: {method: lora_mle, rank: 2}", "'beam' is a registered method"),
    ("  lora_mle: {method: beam}", "'lora_mle' is a registered method"),
    ("  v: {method: lora_mlee}", "unknown method 'lora_mlee'; did you mean 'lora_mle'?"),
    ("  v: {method: lora_mle, rnak: 2}", "unknown parameter 'rnak'"),
])
def test_bad_variants_are_one_line_errors(tmp_path, capsys, variants, message):
    assert run(tmp_path, HEAD + "variants:\n" + variants + "\n") == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and message in err, err
