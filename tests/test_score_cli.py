"""`mclbench score`: JSONL in, metric table out, clear errors on bad files."""

import json

import pytest
from test_text_metrics import CANDS, REFS

from harness.cli import main
from harness.metrics import coco
from harness.metrics import diversity as dv
from harness.metrics import text as tx


def write(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


@pytest.fixture
def files(tmp_path):
    preds = write(tmp_path / "p.jsonl", [{"id": f"x{i}", "candidates": c} for i, c in enumerate(CANDS)])
    refs = write(tmp_path / "r.jsonl", [{"id": f"x{i}", "references": r} for i, r in enumerate(REFS)][::-1])
    return preds, refs


def test_json_output_equals_the_metric_functions(files, capsys):
    preds, refs = files
    sacre_and_diversity = ",".join(["bleu", "chrf", *dv.diversity(CANDS, REFS)])
    assert main(["score", "--predictions", preds, "--references", refs, "--format", "json",
                 "--metrics", sacre_and_diversity]) == 0
    got = json.loads(capsys.readouterr().out)
    want = {**tx.quality_flavours(CANDS, REFS), **dv.diversity(CANDS, REFS)}
    assert got.keys() == want.keys()
    for k in want:
        assert got[k] == pytest.approx(want[k]), k


def test_metric_subset_and_markdown(files, capsys):
    preds, refs = files
    assert main(["score", "--predictions", preds, "--references", refs, "--metrics", "bleu,unique"]) == 0
    out = capsys.readouterr().out
    assert "| top1/bleu ↑ |" in out and "| unique ↑ |" in out and "chrf" not in out.split("<sub>")[0]
    assert "nrefs:3|case:mixed|eff:no|tok:13a" in out


@pytest.mark.parametrize("rows,msg", [
    ([{"id": "x0", "candidates": ["a"]}], "id 'x1' has no prediction"),
    ([{"id": "x0", "candidates": ["a"]}, {"id": "x1", "candidates": ["a", "b"]}],
     "input 'x1' has 2 candidates, the first input has 1"),
    ([{"id": "x0", "candidates": ["a"]}, {"id": "x1", "candidates": [1]}], "candidate 1 is not a string"),
])
def test_bad_predictions(tmp_path, capsys, rows, msg):
    preds = write(tmp_path / "p.jsonl", rows)
    refs = write(tmp_path / "r.jsonl", [{"id": "x0", "references": ["a"]}, {"id": "x1", "references": ["b"]}])
    assert main(["score", "--predictions", preds, "--references", refs]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("mclbench: error: ") and msg in err and "\n" not in err


def test_empty_references_and_bad_json(tmp_path, capsys):
    preds = write(tmp_path / "p.jsonl", [{"id": "a", "candidates": ["x"], "references": []}])
    assert main(["score", "--predictions", preds]) == 2
    assert "input 'a' has no reference" in capsys.readouterr().err
    (tmp_path / "bad.jsonl").write_text('{"id": "a", "candidates": ["x"]}\n{oops\n')
    assert main(["score", "--predictions", str(tmp_path / "bad.jsonl")]) == 2
    assert "bad.jsonl:2: not valid JSON" in capsys.readouterr().err
    assert main(["score", "--predictions", preds, "--metrics", "rouge"]) == 2
    assert "unknown metric 'rouge'" in capsys.readouterr().err


def test_bootstrap_intervals(files, capsys):
    preds, refs = files
    assert main(["score", "--predictions", preds, "--references", refs, "--format", "json",
                 "--bootstrap", "200"]) == 0
    got = json.loads(capsys.readouterr().out)
    for k in ("top1/bleu", "oracle_corpus/chrf", "div_2", "mbleu_4"):
        assert got[f"{k}/ci95_low"] <= got[k] <= got[f"{k}/ci95_high"], k
    assert "vocab/ci95_low" not in got  # does not decompose over inputs
    assert main(["score", "--predictions", preds, "--references", refs, "--bootstrap", "50"]) == 0
    out = capsys.readouterr().out
    assert "| vocab ↑ |" in out and "| n/a |" in out and "percentile bootstrap" in out


@pytest.mark.skipif(bool(coco.unavailable(["cider_d"])), reason="no Java here")
def test_coco_metrics_and_spice_na(files, capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("MCLBENCH_CORENLP_DIR", str(tmp_path))  # no CoreNLP jars there
    if not coco.unavailable(["spice"]):
        pytest.skip("SPICE can run here")
    preds, refs = files
    assert main(["score", "--predictions", preds, "--references", refs, "--format", "json",
                 "--metrics", "cider_d,spice"]) == 0
    captured = capsys.readouterr()
    got = json.loads(captured.out)
    want = coco.coco_flavours(CANDS, REFS, ["cider_d"])
    for k, v in want.items():
        assert got[k] == pytest.approx(v, abs=1e-9)
    assert got["top1/spice"] is None and got["oracle_corpus/spice"] is None  # never a fake number
    assert "spice is n/a: SPICE needs Stanford CoreNLP" in captured.err
    assert main(["score", "--predictions", preds, "--references", refs, "--metrics", "spice"]) == 0
    out = capsys.readouterr().out
    assert "| top1/spice ↑ | n/a |" in out and "<sub>spice: n/a — SPICE needs Stanford CoreNLP" in out


def test_one_flavour_by_name_and_the_papers_captioning_diversity(tmp_path, capsys):
    """``--metrics max/bleu,max/bleu_4,mbleu_4_ptb`` scores exactly those (predictions alone)."""
    preds = tmp_path / "p.jsonl"
    preds.write_text("".join(json.dumps({"id": str(i), "candidates": c, "references": r}) + "\n"
                             for i, (c, r) in enumerate(zip(CANDS, REFS, strict=True))))
    assert main(["score", "--predictions", str(preds), "--metrics", "max/bleu,max/bleu_4,mbleu_4_ptb",
                 "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    java = not coco.unavailable(["bleu_4"])
    assert set(out) == {"max/bleu", "max/bleu_4", "mbleu_4_ptb"}
    assert out["max/bleu"] == pytest.approx(tx.quality_flavours(CANDS, REFS)["max/bleu"])
    assert (out["max/bleu_4"] is not None) == java and (out["mbleu_4_ptb"] is not None) == java
    assert main(["score", "--predictions", str(preds), "--metrics", "max/mbleu_4"]) == 2  # no flavours
