"""Mode coverage from labelled references (harness.metrics.modes, `mclbench score`)."""

import json

import pytest

from harness.cli import main
from harness.metrics.modes import mode_coverage

CANDS = [["Frag mich!", "Fragen Sie mich!"], ["Danke.", "Danke schön."], ["Geh!", "Geht!"]]
REFS = [["Frag mich!", "Fragt mich!", "Fragen Sie mich!"], ["Danke.", "Vielen Dank."], ["Geh!", "Geht!"]]
MODES = [["du", "ihr", "Sie"], [None, None], ["du", "du"]]


def test_best_matched_reference_gives_a_candidates_mode():
    # input 0: the candidates match the du and the Sie reference: 2 of 3 modes; input 1 has no
    # labelled reference and is left out; input 2: one mode, covered
    values = mode_coverage(CANDS, REFS, MODES)
    assert values == {"modes_covered": pytest.approx((2 + 1) / 2),
                      "mode_recall": pytest.approx((2 / 3 + 1) / 2)}


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
