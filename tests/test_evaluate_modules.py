"""The HF ``evaluate`` modules shipped in the package: loaded by path in a process that has
no network (HF offline mode), they return exactly what ``mclbench score`` prints."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import mclbench
from harness.cli import main

ROWS = [json.loads(line) for line in
        (Path(__file__).parent / "fixtures" / "multi30k_val_captions.jsonl").read_text().splitlines()]
CANDS = [r["captions"][:2] for r in ROWS]  # Multi30k: 2 candidates, 3 references per image
REFS = [r["captions"][2:] for r in ROWS]
MODES = [[f"mode{j % 2}" for j in range(len(r))] for r in REFS]  # two labelled modes per input

LOAD_ALL = """
import json, sys, evaluate, mclbench
cands, refs, modes = json.loads(sys.stdin.read())
out = {}
for name in mclbench.EVALUATE_MODULES:
    module = evaluate.load(mclbench.evaluate_module_path(name))
    extra = {"reference_modes": modes} if name == "mode_coverage" else {}
    out[name] = {"values": module.compute(predictions=cands, references=refs, **extra),
                 "card": [module.description, module.citation, module.inputs_description]}
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    """Every module loaded and computed by path in a fresh offline process."""
    cache = tmp_path_factory.mktemp("hf")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "HF_EVALUATE_OFFLINE": "1",
           "HF_HOME": str(cache), "HF_MODULES_CACHE": str(cache / "modules")}
    run = subprocess.run([sys.executable, "-c", LOAD_ALL], input=json.dumps([CANDS, REFS, MODES]),
                         capture_output=True, text=True, env=env, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    return json.loads(run.stdout.splitlines()[-1])


def _mclbench_score(tmp_path, capsys, metrics: list[str]) -> dict:
    path = tmp_path / "predictions.jsonl"
    rows = [{"id": i, "candidates": c, "references": r, "reference_modes": m}
            for i, (c, r, m) in enumerate(zip(CANDS, REFS, MODES, strict=True))]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    capsys.readouterr()
    args = ["score", "--predictions", str(path), "--metrics", ",".join(metrics), "--format", "json"]
    assert main(args) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("name", mclbench.EVALUATE_MODULES)
def test_each_module_equals_mclbench_score(loaded, name, tmp_path, capsys):
    module = loaded[name]["values"]
    metric_names = sorted({k.split("/", 1)[-1] for k in module})
    assert module == _mclbench_score(tmp_path, capsys, metric_names)
    assert any(v is not None for v in module.values())


def test_modules_cover_the_candidate_set_metrics(loaded):
    bleu = loaded["multi_candidate_bleu"]["values"]
    assert {"top1/bleu", "mean/bleu", "oracle_corpus/bleu", "max/bleu"} <= set(bleu)
    assert {"max/cider_d", "max/meteor"} <= set(loaded["multi_candidate_coco"]["values"])
    assert {"mbleu_4", "pairwise_bleu", "loo_bleu", "refs_covered", "div_1", "div_2"} <= set(
        loaded["candidate_diversity"]["values"])
    assert set(loaded["mode_coverage"]["values"]) == {"modes_covered", "mode_recall"}


def test_metric_cards(loaded):
    for name in mclbench.EVALUATE_MODULES:
        description, citation, inputs = loaded[name]["card"]
        assert description and "arXiv:2507.10419" in citation and "predictions" in inputs
        card = (Path(mclbench.evaluate_module_path(name)) / "README.md").read_text()
        for section in ("## Metric Description", "## How to Use", "## Inputs", "## Output Values",
                        "## Reference numbers", "## Citation"):
            assert section in card, (name, section)


def test_an_unknown_module_names_the_ones_there_are():
    with pytest.raises(ValueError, match="multi_candidate_bleu"):
        mclbench.evaluate_module_path("bleu")
