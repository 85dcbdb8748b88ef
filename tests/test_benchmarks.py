"""Every script in benchmarks/ runs at a tiny size and writes its --json keys (so a published
figure can always be reproduced by the script beside it)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MULTI30K = ROOT.parent / "shared" / "data" / "multi30k"
SCRIPTS = sorted(p.name for p in (ROOT / "benchmarks").glob("*.py"))

# script -> (tiny arguments, keys its --json file must have)
TINY = {
    "encoder_once.py": (["--k", "2", "--batch", "2", "--repeats", "1"],
                        {"train_ratio", "decode_ratio", "audio"}),
    "encoder_window.py": (["--base", "", "--k", "2", "--batch", "2", "--repeats", "1"],
                          {"train", "decode", "base_validation_nll"}),
    "gpu_smoke.py": (["--device", "cpu", "--steps", "1", "--num-test", "2", "--tasks", "markov"],
                     {"device", "rows"}),
    "lora_mcl_speed.py": (["--ks", "4", "--batch", "2", "--seq", "24", "--repeats", "1", "--rounds", "1"],
                          {"train_vs_peft_loop", "train_vs_floor", "decode_vs_peft_mixed",
                           "decode_vs_no_lora", "decode_vs_beam"}),
    "pretrained_speed.py": (["--random-init", "--tiny", "--batch", "2", "--rank", "2", "--repeats", "1",
                             "--rounds", "1"],
                            {"train_vs_floor", "train_bf16_vs_floor", "decode_vs_floor", "nll_bf16_abs_diff",
                             "timings"}),
    "metrics_speed.py": (["--inputs", "30", "--repeats", "1"],
                         {"end_to_end_s", "end_to_end_runs_s", "families_s", "apart_s", "end_to_end_metrics",
                          "unavailable", "inputs"}),
    "trainer_overhead.py": (["--steps", "2", "--repeats", "1"],
                            {"trainer", "previous", "bare", "previous_over_trainer", "bare_over_trainer"}),
}


def test_every_script_has_a_smoke_test():
    assert sorted(TINY) == SCRIPTS


@pytest.mark.parametrize("script", SCRIPTS)
def test_the_script_runs_and_writes_its_json_keys(script, tmp_path):
    if script == "metrics_speed.py" and not MULTI30K.is_dir():
        pytest.skip(f"the Multi30k captions it reads are not at {MULTI30K}")
    args, keys = TINY[script]
    out = tmp_path / "out.json"
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / script), *args, "--json", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    written = json.loads(out.read_text())
    assert keys <= set(written), sorted(keys - set(written))
