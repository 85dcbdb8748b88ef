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


def has_key(kind, name):
    return {"task": {"markov": ["num_states"]},
            "method": {"lora_mcl": ["rank", "loss"], "lora_mle": ["rank"]}}[kind][name]


def test_scoped_overrides():
    spec = RunSpec(tasks={"markov": {}}, methods={"lora_mcl": {}, "lora_mle": {}})
    spec.apply([("method", "rank", 8), ("method", "loss", "wta"), ("lora_mle", "rank", 16),
                ("task", "num_states", 4)], has_key)
    assert spec.methods == {"lora_mcl": {"rank": 8, "loss": "wta"}, "lora_mle": {"rank": 16}}
    assert spec.tasks == {"markov": {"num_states": 4}}


@pytest.mark.parametrize("assignment,msg", [
    (("method", "nope", 1), "no selected method .* valid: loss, rank"),
    (("method", "rnak", 1), "did you mean 'rank'"),
    (("lora_mle", "loss", "wta"), "method 'lora_mle' has no parameter 'loss'.*valid: rank"),
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
    ("task: [markov]",
     "unknown key 'task'; valid keys: accelerate_config, best_of_n, cache_dir, device, methods, output, "
     "per_task, processes, seeds, task_files, tasks, variants"),
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


def test_per_task_overrides_go_on_top_and_the_command_line_wins(tmp_path):
    from harness.plan import plugin_keys, resolve

    path = tmp_path / "run.yaml"
    path.write_text("tasks: [markov, translation]\n"
                    "methods: {lora_mcl: {num_hypotheses: 3, rank: 4}, lora_mle: {rank: 12}}\n"
                    "per_task: {markov: {lora_mcl: {num_hypotheses: 2}, lora_mle: {rank: 8}},\n"
                    "           translation: {method: {steps: 7, num_hypotheses: 5}}}\n")
    spec = load_spec(path)
    params = {(c.task.name, c.method.name): c.method.config for c in resolve(spec)}
    assert params["markov", "lora_mcl"].num_hypotheses == 2
    assert params["markov", "lora_mcl"].rank == 4  # from methods:, untouched by per_task
    assert params["translation", "lora_mcl"].num_hypotheses == 5  # per_task method: wins
    assert params["translation", "lora_mle"].steps == 7  # and goes to each method with the key
    assert params["markov", "lora_mle"].steps == 1000  # the task's own default
    assert (params["markov", "lora_mle"].rank, params["translation", "lora_mle"].rank) == (8, 12)
    spec.apply([parse_assignment("lora_mle.rank=2")], plugin_keys)
    assert {c.method.config.rank for c in resolve(spec) if c.method.name == "lora_mle"} == {2}


def test_per_task_names_are_checked(tmp_path):
    from harness.plan import resolve
    from harness.registry import UnknownPluginError

    path = tmp_path / "run.yaml"
    path.write_text("tasks: [markov]\nmethods: [lora_mcl]\nper_task: {markvo: {lora_mcl: {rank: 2}}}\n")
    with pytest.raises(UnknownPluginError, match="did you mean 'markov'"):
        resolve(load_spec(path))
    path.write_text("tasks: [markov]\nmethods: [lora_mcl]\nper_task: [markov]\n")
    with pytest.raises(ConfigError, match="per_task must map task names"):
        load_spec(path)


def test_set_wins_over_a_tasks_shared_method_block(tmp_path):
    """`--set method.steps=…` beats `per_task.<task>.method.steps` (it did not: the config's
    400 steps trained although the command line said 6)."""
    from harness.plan import plugin_keys, resolve

    path = tmp_path / "run.yaml"
    path.write_text("tasks: [markov, translation]\nmethods: [lora_mcl, lora_mle]\n"
                    "per_task: {translation: {method: {steps: 7, rank: 3}}}\n")
    spec = load_spec(path)
    spec.apply([parse_assignment("method.steps=5"), parse_assignment("lora_mcl.rank=6")], plugin_keys)
    params = {(c.task.name, c.method.name): c.method.config for c in resolve(spec)}
    assert {p.steps for p in params.values()} == {5}
    assert (params["translation", "lora_mcl"].rank, params["translation", "lora_mle"].rank) == (6, 3)
    assert params["markov", "lora_mcl"].rank == 6


@pytest.mark.parametrize("key,value,flag,msg", [
    ("processes", 0, "--processes", "must be >= 1"),
    ("best_of_n", -1, "--best-of-n", "must be >= 0"),
    ("seeds", [0, 0], "--seeds", ": 0 is given twice"),
    ("output", " ", "--output", "is empty"),
])
def test_the_run_is_checked_once_and_names_where_a_value_came_from(tmp_path, key, value, flag, msg):
    """The same check whether the file or the command line gives the value (RunSpec.validate),
    each error naming its origin; the flag overrides the file."""
    import yaml

    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump({"tasks": ["markov"], key: value}))
    with pytest.raises(ConfigError, match=f"^{path}: {key} ?{msg}"):
        load_spec(path)
    spec = RunSpec(tasks={"markov": {}})
    spec.overlay({key: value}, {key: flag})
    with pytest.raises(ConfigError, match=f"^{flag} ?{msg}"):
        spec.validate()
    path.write_text(yaml.safe_dump({"tasks": ["markov"], "seeds": [0, 1], "processes": 2}))
    spec = load_spec(path)
    spec.overlay({"seeds": [2]}, {"seeds": "--seeds"})
    assert (spec.seeds, spec.processes, spec.origins["seeds"]) == ([2], 2, "--seeds")
