"""Registry: built-in plugins, typo errors, and a third-party plugin installed with pip."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest

from harness import registry
from harness.registry import UnknownPluginError, get_method, register_method

PLUGIN = Path(__file__).parent / "fixtures" / "plugin_pkg"


def test_builtins_are_found_lazily():
    """Importing the registry (and the CLI) imports no plugin; a lookup imports them."""
    probe = textwrap.dedent("""
        import sys
        import harness.cli
        from harness import registry
        def plugins():
            return sorted(m for m in sys.modules if m.split(".")[0] in ("tasks", "methods") and "." in m)
        before = plugins()
        assert registry.get_task("markov").__name__ == "MarkovTask"
        print(before, "tasks.markov.task" in plugins(), any(m.startswith("methods.") for m in plugins()))
        assert {"lora_mcl", "lora_mle"} <= set(registry.available("method"))
        print(any(m.startswith("methods.") for m in plugins()))
    """)
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["[]", "True", "False", "True"]
    assert registry.describe(get_method("lora_mcl")).startswith("K LoRA hypotheses")


def test_typo_names_the_closest_and_all_available():
    with pytest.raises(UnknownPluginError) as err:
        get_method("lora_mlc")
    msg = str(err.value)
    assert msg.startswith("unknown method 'lora_mlc'; did you mean 'lora_m")
    available = msg.split("available methods: ")[1].split(", ")
    assert {"lora_mcl", "lora_mle"} <= set(available) and available == sorted(available)


def test_registering_a_name_twice_is_an_error():
    with pytest.raises(ValueError, match="registered twice"):
        @register_method("lora_mcl")
        class Impostor:
            pass


@pytest.fixture(scope="module")
def plugin_site(tmp_path_factory):
    """The plugin package pip-installed into a private folder (the venv stays untouched)."""
    site = tmp_path_factory.mktemp("site")
    build = tmp_path_factory.mktemp("build")
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps",
                    "--no-build-isolation", "--no-index", "--target", str(site), str(PLUGIN)],
                   check=True, cwd=build, capture_output=True)
    return site


def _cli(args, site, cwd):
    env = {**os.environ, "PYTHONPATH": str(site), "MCLBENCH_PROGRESS": "0"}
    return subprocess.run([sys.executable, "-m", "harness.cli", *args], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=300)


def test_third_party_plugin_is_discovered_through_entry_points(plugin_site, tmp_path):
    out = _cli(["list"], plugin_site, tmp_path)
    assert out.returncode == 0, out.stderr
    assert "echo_copy" in out.stdout and "Copy the source string" in out.stdout
    assert "echo " in out.stdout and "lora_mcl" in out.stdout


@pytest.mark.slow
def test_third_party_plugin_runs_through_the_runner(plugin_site, tmp_path):
    out = _cli(["run", "--tasks", "echo_copy", "--methods", "echo", "--output", "o",
                "--set", "echo.copies=3", "--set", "task.size=5", "--no-tracking"],
               plugin_site, tmp_path)
    assert out.returncode == 0, out.stderr
    scores = pd.read_csv(tmp_path / "o" / "scores.csv")
    assert scores.to_dict("records") == [
        {"task": "echo_copy", "method": "echo", "seed": 0, "metric": "exact_match", "value": 1.0}]
    assert "exact_match ↑" in (tmp_path / "o" / "leaderboard.md").read_text()
