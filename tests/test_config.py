"""Typed plugin configs: YAML and --set overrides, unknown keys and bad types rejected by name."""

from typing import Literal

import pytest

from harness.config import ConfigError, RunSpec, build, coerce, load_spec, parse_assignment
from methods.lora_mcl import LoRAMCLConfig
from tasks.markov import MarkovConfig


def test_parse_assignment_uses_yaml_types():
    assert parse_assignment("task.num_states=6") == ("task", "num_states", 6)
    assert parse_assignment("method.lr=1e-3") == ("method", "lr", 1e-3)
    assert parse_assignment("lora_mcl.target_modules=[q_proj, v_proj]") == (
        "lora_mcl", "target_modules", ["q_proj", "v_proj"])
    assert parse_assignment("method.loss=relaxed") == ("method", "loss", "relaxed")


@pytest.mark.parametrize("bad", ["task.num_states", "num_states=3"])
def test_parse_assignment_rejects_malformed(bad):
    with pytest.raises(ConfigError, match="--set"):
        parse_assignment(bad)


def test_build_coerces_and_validates():
    cfg = build(LoRAMCLConfig, {"num_hypotheses": 3, "alpha": 16, "loss": "relaxed"}, "m")
    assert cfg.num_hypotheses == 3 and cfg.alpha == 16.0 and isinstance(cfg.alpha, float)


def test_unknown_key_is_rejected_with_the_valid_ones():
    with pytest.raises(ConfigError, match=r"unknown parameter 'num_hypothesis'.*num_hypotheses"):
        build(LoRAMCLConfig, {"num_hypothesis": 3}, "method 'lora_mcl'")


@pytest.mark.parametrize("key,value,msg", [
    ("num_hypotheses", "four", "expected an integer"),
    ("num_hypotheses", 2.5, "expected an integer"),
    ("loss", "softmin", "expected one of 'wta', 'relaxed', 'annealed'"),
    ("target_modules", 5, r"expected list\[str\] \| str \| None, got 5"),
    ("lr", True, "expected a number"),
])
def test_bad_types_are_rejected_by_name(key, value, msg):
    with pytest.raises(ConfigError, match=rf"lora_mcl'\.{key}: {msg}"):
        build(LoRAMCLConfig, {key: value}, "method 'lora_mcl'")


def test_semantic_validation_names_the_plugin():
    with pytest.raises(ConfigError, match="task 'markov'.*transitions has shape"):
        build(MarkovConfig, {"transitions": [[[1.0]]]}, "task 'markov'")


def test_optional_and_literal_coercion():
    assert coerce(None, int | None, "x") is None
    assert coerce(3, int | None, "x") == 3
    assert coerce("a", Literal["a", "b"], "x") == "a"


def has_key(kind, name, key):
    return key in {"task": {"markov": {"num_states"}},
                   "method": {"lora_mcl": {"rank", "loss"}, "lora_mle": {"rank"}}}[kind][name]


def test_scoped_overrides():
    spec = RunSpec(tasks={"markov": {}}, methods={"lora_mcl": {}, "lora_mle": {}})
    spec.apply([("method", "rank", 8), ("method", "loss", "wta"), ("lora_mle", "rank", 16),
                ("task", "num_states", 4)], has_key)
    assert spec.methods == {"lora_mcl": {"rank": 8, "loss": "wta"}, "lora_mle": {"rank": 16}}
    assert spec.tasks == {"markov": {"num_states": 4}}


@pytest.mark.parametrize("assignment,msg", [
    (("method", "nope", 1), "no selected method"),
    (("lora_mle", "loss", "wta"), "method 'lora_mle' has no parameter 'loss'"),
    (("beam", "n", 1), "unknown scope 'beam'"),
])
def test_bad_overrides_are_rejected(assignment, msg):
    spec = RunSpec(tasks={"markov": {}}, methods={"lora_mcl": {}, "lora_mle": {}})
    with pytest.raises(ConfigError, match=msg):
        spec.apply([assignment], has_key)


def test_load_spec_from_yaml(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("tasks: {markov: {num_states: 4}}\nmethods: [lora_mcl]\nseeds: [0, 1]\n")
    spec = load_spec(path)
    assert spec.tasks == {"markov": {"num_states": 4}}
    assert spec.methods == {"lora_mcl": {}} and spec.seeds == [0, 1]


@pytest.mark.parametrize("text,msg", [
    ("tasks: [markov\nmethods: x", "not valid YAML at line"),
    ("task: [markov]", "unknown key 'task'; valid keys: cache_dir, methods, output, seeds, tasks"),
    ("seeds: zero", "seeds: expected a list"),
    ("- markov", "expected a mapping"),
    ("methods: {lora_mcl: 3}", "methods.lora_mcl must map parameter names"),
])
def test_malformed_yaml_gives_a_clear_error(tmp_path, text, msg):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=msg):
        load_spec(path)


def test_missing_config_file():
    with pytest.raises(ConfigError, match="does not exist"):
        load_spec("no/such/file.yaml")
