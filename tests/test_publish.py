"""Publishing a run: per-task leaderboards (md/csv/tex with bootstrap intervals), figures,
best-of-N curves, the explorer page (driven in Chromium by tests/test_view.py), re-runs
that change nothing."""

import json
import time

import pandas as pd
import pytest

from harness.cli import main
from harness.plots import pareto_front, plot_run
from tests.conftest import TINY_TWO_TASKS

RUN = TINY_TWO_TASKS + """  beam: {rank: 4, num_candidates: 2}
  nucleus: {rank: 4, num_candidates: 2}
per_task:
  markov: {method: {steps: 40, batch_size: 16}}
  translation: {method: {steps: 2, batch_size: 4}}
seeds: [0, 1]
best_of_n: 4
"""


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    root = tmp_path_factory.mktemp("publish")
    config = root / "run.yaml"
    config.write_text(RUN + f"output: {root / 'out'}\ncache_dir: {root / 'cache'}\n")
    args = ["run", "--config", str(config), "--no-tracking"]
    assert main(args) == 0
    return root / "out", args


@pytest.mark.slow
def test_per_task_leaderboards_in_three_formats(published):
    out, _ = published
    for task in ("markov", "translation"):
        md = (out / task / "leaderboard.md").read_text()
        assert f"### {task} (seeds: 0, 1)" in md and "**" in md and "commit" in md
        assert "### " + ({"markov", "translation"} - {task}).pop() not in md  # its own task only
        tex = (out / task / "leaderboard.tex").read_text()
        assert r"\textbf{" in tex and r"\begin{tabular}" in tex and "% command:" in tex
        summary = pd.read_csv(out / task / "leaderboard.csv")
        assert set(summary["task"]) == {task} and (summary["seeds"] == 2).all()
    md = (out / "translation" / "leaderboard.md").read_text()
    assert "oracle_corpus/bleu ↑" in md and "mbleu_4 ↓" in md
    assert "sacreBLEU bleu: nrefs:1" in md  # the signature in the footer
    scores = pd.read_csv(out / "scores.csv")
    half = scores[scores["metric"] == "ci95/oracle_corpus/bleu"]
    assert len(half) == 2 * 4 and (half["value"] > 0).all()  # 4 methods × 2 seeds
    # the bracket shows the mean half-width over seeds
    beam = half[half["method"] == "beam"]["value"].mean()
    assert f"[±{beam:.4f}]" in md


@pytest.mark.slow
def test_best_of_n_curves(published):
    out, _ = published
    cells = out / "cells" / "translation"
    for method, per_input in (("lora_mcl", 4), ("beam", 4), ("nucleus", 4)):
        curve = json.loads((cells / method / "seed0" / "best_of_n.json").read_text())
        assert curve["n"] == [1, 2, 3, 4] and curve["metric"] == "max@n/bleu"
        assert curve["candidates_per_input"] == per_input
        assert all(0 <= v <= 100 for v in curve["value"])
        assert curve["value"] == sorted(curve["value"])  # the best of more candidates is never worse
        assert not (cells / method / "seed1" / "best_of_n.json").exists()  # first seed only
    assert not (cells / "lora_mle" / "seed0" / "best_of_n.json").exists()  # greedy: N = 1
    assert not (out / "cells" / "markov" / "lora_mcl" / "seed0" / "best_of_n.json").exists()
    # the published cell itself keeps its N = K = 2 candidates
    lines = (cells / "lora_mcl" / "seed0" / "candidates.jsonl").read_text().splitlines()
    assert all(len(json.loads(x)["candidates"]) == 2 for x in lines)


@pytest.mark.slow
def test_figures_are_written_and_reproducible(published):
    out, _ = published
    expected = {"markov": {"quality_diversity", "winners", "transitions"},
                "translation": {"quality_diversity", "best_of_n", "winners"}}
    for task, names in expected.items():
        found = {p.stem for p in (out / task / "plots").glob("*.png")}
        assert found == names, task
        assert {p.stem for p in (out / task / "plots").glob("*.svg")} == names
    before = {p: p.read_bytes() for p in out.glob("*/plots/*")}
    assert sorted(plot_run(out)) == sorted(before)
    assert all(p.read_bytes() == b for p, b in before.items())  # byte-identical


@pytest.mark.slow
def test_second_run_changes_nothing(published):
    out, args = published
    files = [p for p in out.rglob("*") if p.is_file()]
    stamps = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in files}
    start = time.time()
    assert main(args) == 0
    assert time.time() - start < 15
    assert {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in files} == stamps
    assert {p for p in out.rglob("*") if p.is_file()} == set(files)


def test_pareto_front():
    points = {"a": (1.0, 5.0), "b": (2.0, 4.0), "c": (2.0, 6.0), "d": (3.0, 1.0)}
    # both higher-is-better: c dominates a and b; d is best on x
    assert pareto_front(points, (True, True)) == ["c", "d"]
    # x lower-is-better (mBLEU-4), y higher-is-better (oracle quality)
    assert pareto_front(points, (False, True)) == ["a", "c"]


@pytest.mark.slow
def test_view_page(published):
    """The explorer of a fresh run: both tasks, every seed's cells, per-input numbers, and
    ``report`` still names the command (its alias)."""
    out, _ = published
    assert main(["report", str(out)]) == 0
    text = (out / "report.html").read_text()
    payload = json.loads(text.split('<script type="application/json" id="data">')[1].split("</script>")[0])
    assert [t["name"] for t in payload["tasks"]] == ["markov", "translation"]
    translation = payload["tasks"][1]
    assert set(translation["runs"]) == {"0", "1"} and "lora_mcl" in translation["runs"]["0"]
    cell = translation["runs"]["0"]["lora_mcl"]
    assert len(cell["ids"]) == len(translation["inputs"]) == len(cell["metrics"]["refs covered"])
    assert "data:image/png;base64," in text  # the figures, inlined
    assert main(["table", str(out)]) == 0  # report.html is in the manifest: the folder verifies


@pytest.mark.slow
def test_lora_mcl_variant_lists_each_hypothesis_best_beam_first(published):
    """The best-of-N variant of LoRA-MCL (r beams returned per hypothesis) starts with the K
    candidates that the same beam width gives with one beam returned per hypothesis."""
    from dataclasses import replace

    from harness.config import load_spec
    from harness.plan import Cell, resolve
    from harness.runner import Runner
    from harness.stages import read_candidates

    out, args = published
    spec = load_spec(args[2])
    spec.tasks = {"translation": spec.tasks["translation"]}
    spec.methods = {"lora_mcl": spec.methods["lora_mcl"]}
    runner = Runner(spec, tracking=False)
    cell = resolve(spec)[0]
    variant = runner.best_of_n_cell(cell)
    assert (variant.method.config.num_return, variant.method.config.num_beams) == (2, 2)
    examples = cell.task.test_examples()
    wide = read_candidates(runner.cache.get("decode", runner.keys(variant)["decode"]) / "candidates.jsonl",
                           examples)
    narrow_method = type(cell.method)(replace(cell.method.config, num_beams=2))
    narrow = read_candidates(runner.decoded(Cell(cell.task, narrow_method, 0)) / "candidates.jsonl",
                             examples)
    assert [w[:2] for w in wide] == narrow


@pytest.mark.slow
def test_leaderboards_mark_cells_not_significantly_worse_than_the_best(published, capsys):
    out, _ = published
    tests = pd.read_csv(out / "significance.csv")
    tr = tests[tests["task"] == "translation"]
    assert {"max/bleu", "oracle_corpus/chrf", "div_1", "oracle_nll"} <= set(tr["metric"])
    assert "markov_tv" not in set(tests["metric"])  # a distribution distance: no per-input rows
    for _, col in tr.groupby("metric"):  # one best per column, every other row tested against it
        best = col.loc[col["p_value"].isna(), "method"]
        assert len(best) == 1 and (col["best"] == best.iloc[0]).all()
        assert col["p_value"].dropna().between(0, 1).all()
    # lora_mle, beam and nucleus decode one adapter: the same oracle NLL, so never significantly apart
    shared = tr[tr["metric"] == "oracle_nll"].set_index("method")["p_value"][["lora_mle", "beam", "nucleus"]]
    # against the same best the same rows give the same p-value (1.0 if one of them is the best)
    assert shared.notna().sum() >= 2 and shared.dropna().nunique() == 1
    assert shared.notna().all() or (shared.dropna() == 1.0).all()
    md = (out / "translation" / "leaderboard.md").read_text()
    not_worse = tr[tr["p_value"] >= 0.05]  # marked, but for ties with the best (bold instead)
    marks = sum(line.count("†") for line in md.splitlines() if line.startswith("| "))
    assert len(not_worse) > 0 and 0 < marks <= len(not_worse)
    assert "†: not significantly worse" in md
    summary = pd.read_csv(out / "translation" / "leaderboard.csv")
    row = summary[(summary["method"] == "nucleus") & (summary["metric"] == "max/bleu")].iloc[0]
    assert row["p_value"] == tr[(tr["method"] == "nucleus") & (tr["metric"] == "max/bleu")]["p_value"].iloc[0]
    assert r"$^\dagger$" in (out / "translation" / "leaderboard.tex").read_text()
    # the CLI's two-row test: the same resamples as the table's test against the best
    bleu = tr[tr["metric"] == "max/bleu"].set_index("method")
    best = bleu["best"].iloc[0]
    other = next(m for m in ("lora_mcl", "lora_mle", "beam", "nucleus") if bleu.loc[m, "delta"] > 0)
    assert main(["compare", str(out), best, other, "--task", "translation", "--metric", "max/bleu",
                 "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    want = tr[(tr["method"] == other) & (tr["metric"] == "max/bleu")].iloc[0]
    assert result["seeds"] == [0, 1] and result["delta"] == pytest.approx(want["delta"])
    assert result["p_value"] == pytest.approx(want["p_value"])
    # the NLL columns too, from the probes each cell keeps
    nll = tr[(tr["metric"] == "oracle_nll") & tr["p_value"].notna()].iloc[0]
    assert main(["compare", str(out), nll["best"], nll["method"], "--task", "translation",
                 "--metric", "oracle_nll", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["delta"] == pytest.approx(-nll["delta"])  # lower is better: best − row < 0
    assert result["p_value"] == pytest.approx(nll["p_value"])


@pytest.mark.slow
@pytest.mark.parametrize("args, message", [
    (["beam", "nobody", "--metric", "max/bleu"], "no cells of method 'nobody'"),
    (["beam", "nucleus", "--metric", "vocab"], "vocab does not decompose over inputs"),
    (["beam", "nucleus", "--metric", "bleu_9"], "task 'translation' has no metric 'bleu_9'"),
])
def test_compare_errors_are_one_line(published, capsys, args, message):
    out, _ = published
    capsys.readouterr()
    assert main(["compare", str(out), "--task", "translation", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and message in err, err
