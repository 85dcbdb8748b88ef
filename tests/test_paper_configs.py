"""The paper's three configurations (configs/paper/*.yaml) run end to end — 2 train steps,
decode, score, on the CPU, in the configs' bf16 — on tiny random models of the paper's
classes (tests/paper_models.py) given with --set task.backbone=<dir>."""

import json
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml

from harness.cli import main
from tests import paper_models

ROOT = Path(__file__).resolve().parents[1]
CASES = {  # config -> (task, builder of the tiny model)
    "translation_alma": ("wmt14_en_de_multiref", paper_models.alma),
    "audio_qwen2": ("audio_captioning", paper_models.qwen2_audio),
    "image_llava": ("photo_captioning", paper_models.llava),
}


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory):
    root = tmp_path_factory.mktemp("paper_models")
    return {name: build(root / name) for name, (_, build) in CASES.items()}


def paper_config(name: str) -> dict:
    return yaml.safe_load((ROOT / "configs/paper" / f"{name}.yaml").read_text())


def lora_params(model, patterns, rank: int, k: int) -> int:
    """Hand count: K · r · (in + out) over the linear layers the patterns name."""
    from methods.lora.model import find_targets

    layers = [model.get_submodule(n) for n in find_targets(model, patterns)]
    return k * rank * sum(m.in_features + m.out_features for m in layers)


@pytest.mark.slow
@pytest.mark.parametrize("name", list(CASES))
def test_paper_config_runs_on_a_tiny_model_of_its_class(name, tiny_models, tmp_path):
    task, _ = CASES[name]
    backbone = tiny_models[name]
    cfg = paper_config(name)
    method = cfg["methods"]["lora_mcl"]
    assert cfg["tasks"][task]["dtype"] == "bfloat16"
    out = tmp_path / "out"
    code = main(["run", "--config", str(ROOT / "configs/paper" / f"{name}.yaml"),
                 "--set", f"task.backbone={backbone}", "--set", "task.num_train=4",
                 "--set", "task.num_test=2", "--set", "task.max_new_tokens=6",
                 "--set", "method.steps=2", "--set", "method.batch_size=2",
                 "--output", str(out), "--cache-dir", str(tmp_path / "cache"),
                 "--no-tracking", "--no-plots"])
    assert code == 0
    scores = pd.read_csv(out / "scores.csv").set_index("metric")["value"]
    assert torch.isfinite(torch.tensor(scores["oracle_nll"]))
    import transformers

    config = transformers.AutoConfig.from_pretrained(backbone)
    model = getattr(transformers, config.architectures[0]).from_pretrained(backbone)
    assert scores["trainable_params"] == lora_params(model, method["target_modules"], method["rank"],
                                                     method["num_hypotheses"])
    cell = out / "cells" / task / "lora_mcl" / "seed0"
    records = [json.loads(line) for line in (cell / "candidates.jsonl").open()]
    assert len(records) == 2 and all(len(r["candidates"]) == method["num_hypotheses"] for r in records)
    log = json.loads((cell / "train_log.json").read_text())
    assert log["step"][-1] == 2 and len(log["winner_counts"][-1]) == method["num_hypotheses"]


def test_adapters_stay_out_of_the_towers_and_projector(tiny_models):
    """LLaVA: every linear of the language model, none of the vision tower, projector or head;
    Qwen2-Audio: the language model's q/k/v/up/down, not the audio tower's q/k/v."""
    import transformers

    from methods.lora.model import find_targets

    llava = transformers.LlavaForConditionalGeneration.from_pretrained(tiny_models["image_llava"])
    names = find_targets(llava, paper_config("image_llava")["methods"]["lora_mcl"]["target_modules"])
    assert names and all(n.startswith("model.language_model.") for n in names)
    assert {n.rsplit(".", 1)[1] for n in names} == {"q_proj", "k_proj", "v_proj", "o_proj",
                                                    "gate_proj", "up_proj", "down_proj"}
    qwen = transformers.Qwen2AudioForConditionalGeneration.from_pretrained(tiny_models["audio_qwen2"])
    names = find_targets(qwen, paper_config("audio_qwen2")["methods"]["lora_mcl"]["target_modules"])
    assert names and all(n.startswith("model.language_model.") for n in names)
    assert {n.rsplit(".", 1)[1] for n in names} == {"q_proj", "k_proj", "v_proj", "up_proj", "down_proj"}


def test_the_configured_dtype_is_the_loaded_one(tiny_models):
    from harness.registry import get_task

    cls = get_task("wmt14_en_de_multiref")
    task = cls(cls.Config(backbone=str(tiny_models["translation_alma"]), dtype="bfloat16"))
    assert {p.dtype for p in task.load_backbone(task.source).parameters()} == {torch.bfloat16}
