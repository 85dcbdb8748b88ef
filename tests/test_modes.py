"""Mode coverage from labelled references (harness.metrics.modes, `mclbench score`)."""

import json
from pathlib import Path

import numpy as np
import pytest

from harness.cli import main
from harness.metrics import registry
from harness.metrics.modes import mode_coverage, mode_rows

CANDS = [["Frag mich!", "Fragen Sie mich!"], ["Danke.", "Danke schön."], ["Geh!", "Geht!"]]
REFS = [["Frag mich!", "Fragt mich!", "Fragen Sie mich!"], ["Danke.", "Vielen Dank."], ["Geh!", "Geht!"]]
MODES = [["du", "ihr", "Sie"], [None, None], ["du", "du"]]


def test_best_matched_reference_gives_a_candidates_mode():
    # input 0: the candidates match the du and the Sie reference: 2 of 3 modes; input 1 has no
    # labelled reference and is left out; input 2: one mode, covered
    values = mode_coverage(CANDS, REFS, MODES)
    assert values == {"modes_covered": pytest.approx((2 + 1) / 2),
                      "mode_recall": pytest.approx((2 / 3 + 1) / 2)}


def test_both_decompose_over_inputs_nan_where_undefined():
    # per input rows (the significance test and the bootstrap resample them); the mean over the
    # labelled inputs is the value
    rows = mode_rows(CANDS, REFS, MODES)
    assert np.isnan(rows["modes_covered"][1]) and np.isnan(rows["mode_recall"][1])
    assert rows["modes_covered"][[0, 2]].tolist() == [2, 1]
    done = registry.evaluate(["modes_covered", "mode_recall"],
                             registry.ScoreInputs(CANDS, REFS, reference_modes=MODES))
    for name in ("modes_covered", "mode_recall"):
        part, aggregate = done.parts[name]
        assert aggregate(part) == done.values[name] == pytest.approx(mode_coverage(CANDS, REFS, MODES)[name])
        assert np.isnan(aggregate(part[[1, 1, 1]]))  # a resample of unlabelled inputs only


def test_given_candidate_modes_are_used_as_they_are():
    values = mode_coverage(CANDS, REFS, MODES, candidate_modes=[["ihr", "ihr"], ["x", "y"], ["Sie", "ihr"]])
    assert values == {"modes_covered": pytest.approx(0.5), "mode_recall": pytest.approx(1 / 6)}


def test_no_labelled_reference_is_not_a_number():
    values = mode_coverage(CANDS[1:2], REFS[1:2], MODES[1:2])
    assert values == {} and "no input has a reference with a mode label" in values.unavailable["mode_recall"]


def test_labels_must_match_the_references():
    with pytest.raises(ValueError, match="input 0: 2 mode labels for 3 references"):
        mode_coverage(CANDS, REFS, [["du", "Sie"], *MODES[1:]])


def test_mclbench_score_reads_reference_modes(tmp_path, capsys):
    path = tmp_path / "p.jsonl"
    rows = [{"id": i, "candidates": c, "references": r, "reference_modes": m}
            for i, (c, r, m) in enumerate(zip(CANDS, REFS, MODES, strict=True))]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    assert main(["score", "--predictions", str(path), "--metrics", "modes_covered,mode_recall",
                 "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == mode_coverage(CANDS, REFS, MODES)
    path.write_text(json.dumps({"id": 0, "candidates": CANDS[0], "references": REFS[0]}) + "\n")
    assert main(["score", "--predictions", str(path), "--metrics", "mode_recall"]) == 2
    assert '"reference_modes" in every references row' in capsys.readouterr().err


def test_compare_tests_the_mode_columns_from_the_labels_a_run_folder_keeps(capsys):
    """`mclbench compare` reads each cell's inputs.json: the published Gemma study's modes_covered,
    recomputed from its candidates and labels, is the value its scores.csv holds."""
    import pandas as pd

    from harness.compare import compare

    run = Path(__file__).resolve().parents[1] / "results" / "pretrained" / "tatoeba_gemma_500"
    scores = pd.read_csv(run / "scores.csv").set_index(["method", "metric"])["value"]
    result = compare(run, "tatoeba_en_de", "modes_covered", "lora_mcl", "beam")
    assert result["value_a"] == pytest.approx(scores["lora_mcl", "modes_covered"])
    assert result["value_b"] == pytest.approx(scores["beam", "modes_covered"])
    assert 0 < result["p_value"] <= 1 and result["inputs"] == 100
    # the inputs with a labelled reference, as the folder's inputs.json lists them
    labelled = sum(any(m for m in row["reference_modes"])
                   for row in json.loads((run / "cells/tatoeba_en_de/beam/seed0/inputs.json").read_text()))
    assert 0 < result["inputs_with_value"] == labelled < 100
    assert compare(run, "tatoeba_en_de", "max/bleu", "lora_mcl", "beam")["inputs_with_value"] == 100


def test_compare_pools_the_seeds_of_folders_run_one_seed_each():
    """`--also`: the 500-step Gemma study ran one seed per folder; pooled, the statistic is the
    mean of the two folders' values, and folders of other seeds or another configuration refuse."""
    import pandas as pd

    from harness.compare import CompareError, compare

    pretrained = Path(__file__).resolve().parents[1] / "results" / "pretrained"
    seed0, seed1 = pretrained / "tatoeba_gemma_500", pretrained / "tatoeba_gemma_500_seed1"
    pooled = compare(seed0, "tatoeba_en_de", "modes_covered", "lora_mcl", "beam", also=[seed1])
    assert pooled["seeds"] == [0, 1]
    published = [pd.read_csv(d / "scores.csv").set_index(["method", "metric"])["value"]
                 for d in (seed0, seed1)]
    for side, method in (("value_a", "lora_mcl"), ("value_b", "beam")):
        each = [scores[method, "modes_covered"] for scores in published]
        assert pooled[side] == pytest.approx(sum(each) / 2)
    with pytest.raises(CompareError, match="seed"):
        compare(seed0, "tatoeba_en_de", "max/bleu", "lora_mcl", "beam", also=[seed0])
    with pytest.raises(CompareError, match="keeps no probes"):  # published before cells kept them
        compare(seed0, "tatoeba_en_de", "oracle_nll", "lora_mcl", "beam")
    with pytest.raises(CompareError, match="no such folder"):  # a typo, not "another configuration"
        compare(seed0, "tatoeba_en_de", "max/bleu", "lora_mcl", "beam", also=[pretrained / "no_such_run"])
    with pytest.raises(CompareError, match="another configuration"):
        compare(seed0, "tatoeba_en_de", "max/bleu", "lora_mcl", "beam", also=[pretrained / "tatoeba_gemma"])
