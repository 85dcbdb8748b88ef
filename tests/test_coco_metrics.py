"""COCO caption metrics equal pycocoevalcap's own classes (corpus and per-sentence, 1e-6) on
real multi-reference captions; flavours; "n/a" with a reason when Java or SPICE is missing."""

import json
from pathlib import Path

import numpy as np
import pytest

from harness.metrics import coco

pytest.importorskip("pycocoevalcap")
from pycocoevalcap.bleu.bleu import Bleu  # noqa: E402
from pycocoevalcap.cider.cider import Cider  # noqa: E402
from pycocoevalcap.meteor.meteor import Meteor  # noqa: E402
from pycocoevalcap.rouge.rouge import Rouge  # noqa: E402
from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer  # noqa: E402

ROWS = [json.loads(line) for line in
        (Path(__file__).parent / "fixtures" / "multi30k_val_captions.jsonl").read_text().splitlines()]
# captions 1-2: N = 2 candidates; 3-5: the references, fewer for some inputs (variable M)
CANDS = [r["captions"][:2] for r in ROWS]
REFS = [r["captions"][2:] if i % 4 else r["captions"][2:3] for i, r in enumerate(ROWS)]
needs_java = pytest.mark.skipif(bool(coco.unavailable(["meteor"])), reason="no Java here")


@pytest.fixture(scope="module")
def reference():
    """pycocoevalcap's own PTB tokenisation of the references and of each candidate rank,
    and METEOR scores (corpus, per-sentence) of each rank from its ``Meteor`` (one JVM)."""
    gts = PTBTokenizer().tokenize({i: [{"caption": r} for r in refs] for i, refs in enumerate(REFS)})
    ranks = [PTBTokenizer().tokenize({i: [{"caption": c[k]}] for i, c in enumerate(CANDS)}) for k in range(2)]
    scorer = Meteor()
    return gts, ranks, [scorer.compute_score(gts, res) for res in ranks]


@pytest.fixture(scope="module")
def ours():
    return coco.coco_flavours(CANDS, REFS, [m for m in coco.COCO if m not in coco.NEEDS_SPICE])


@needs_java
def test_ptb_tokenizer_equals_pycocoevalcap(reference):
    gts, ranks, _ = reference
    flat = [c for row in CANDS for c in row]
    mine = coco.ptb_tokenize(flat)
    assert mine == [ranks[k][i][0] for i in range(len(CANDS)) for k in range(2)]
    flat_refs = [t for i in range(len(REFS)) for t in gts[i]]
    assert coco.ptb_tokenize([r for refs in REFS for r in refs]) == flat_refs
    assert coco.ptb_tokenize(["A dog, running!", ""]) == ["a dog running", ""]


@needs_java
def test_corpus_and_sentence_forms_equal_pycocoevalcap(ours, reference):
    gts, ranks, meteor_by_rank = reference
    refs = [gts[i] for i in range(len(REFS))]
    ours_meteor = coco.Meteor()
    for k, res in enumerate(ranks):
        hyps = [res[i][0] for i in range(len(CANDS))]
        bleu, bleu_sent = Bleu(4).compute_score(gts, res, verbose=0)
        stats = np.array([coco.bleu_stats(h, r) for h, r in zip(hyps, refs, strict=True)])
        np.testing.assert_allclose(coco.bleu_from_stats(stats.sum(0)), bleu, atol=1e-6)
        np.testing.assert_allclose(coco.bleu_from_stats(stats).T, bleu_sent, atol=1e-6)
        rouge, rouge_sent = Rouge().compute_score(gts, res)
        np.testing.assert_allclose([coco.rouge_l(h, r) for h, r in zip(hyps, refs, strict=True)],
                                   rouge_sent, atol=1e-6)
        cider, cider_sent = Cider().compute_score(gts, res)
        scorer = coco.CiderD(refs)
        np.testing.assert_allclose([scorer.score(i, h) for i, h in enumerate(hyps)], cider_sent, atol=1e-6)
        meteor, meteor_sent = meteor_by_rank[k]
        corpus, segments = ours_meteor.evaluate(ours_meteor.stats(hyps, refs))
        assert corpus == pytest.approx(meteor, abs=1e-6)
        np.testing.assert_allclose(segments, meteor_sent, atol=1e-6)
        if k == 0:  # top1 is pycocoevalcap's corpus score of the first candidates
            for n in range(4):
                assert ours[f"top1/bleu_{n + 1}"] == pytest.approx(bleu[n], abs=1e-6)
            assert ours["top1/rouge_l"] == pytest.approx(rouge, abs=1e-6)
            assert ours["top1/cider_d"] == pytest.approx(cider, abs=1e-6)
            assert ours["top1/meteor"] == pytest.approx(meteor, abs=1e-6)
    ours_meteor.close()


@needs_java
def test_mean_and_oracle_flavours(ours, reference):
    gts, ranks, meteor_by_rank = reference
    by_rank = [Cider().compute_score(gts, res) for res in ranks]
    assert ours["mean/cider_d"] == pytest.approx(np.mean([s for s, _ in by_rank]), abs=1e-6)
    best = np.maximum(by_rank[0][1], by_rank[1][1]).mean()
    assert ours["oracle_corpus/cider_d"] == pytest.approx(best, abs=1e-6)
    assert ours["mean/meteor"] == pytest.approx(np.mean([s for s, _ in meteor_by_rank]), abs=1e-6)
    # oracle BLEU-4: per input the candidate with the higher sentence BLEU-4, then the corpus score
    sentence = [Bleu(4).compute_score(gts, res, verbose=0)[1][3] for res in ranks]
    best = {i: ranks[int(sentence[1][i] > sentence[0][i])][i] for i in range(len(CANDS))}
    want = Bleu(4).compute_score(gts, best, verbose=0)[0][3]
    assert ours["oracle_corpus/bleu_4"] == pytest.approx(want, abs=1e-6)
    for name in ("bleu_4", "meteor", "rouge_l", "cider_d"):
        assert ours[f"oracle_corpus/{name}"] >= ours[f"mean/{name}"] - 1e-9


@needs_java
def test_max_flavour_is_the_mean_of_each_inputs_best_sentence_score(ours, reference):
    """``max/`` = aac-metrics ``mult_cands_metric(..., "max")`` (the LoRA-MCL paper's oracle):
    per rank pycocoevalcap's per-sentence scores, per input the best rank, mean over inputs."""
    gts, ranks, meteor_by_rank = reference
    sentence = {f"bleu_{n + 1}": [Bleu(4).compute_score(gts, res, verbose=0)[1][n] for res in ranks]
                for n in range(4)}
    sentence["rouge_l"] = [Rouge().compute_score(gts, res)[1] for res in ranks]
    sentence["cider_d"] = [Cider().compute_score(gts, res)[1] for res in ranks]
    sentence["meteor"] = [scores for _, scores in meteor_by_rank]
    for name, by_rank in sentence.items():
        want = np.max(np.array(by_rank, dtype=float), axis=0).mean()
        assert ours[f"max/{name}"] == pytest.approx(want, abs=1e-6), name
    # where the metric is a mean of sentence scores, max and oracle agree; for BLEU they do not
    assert ours["max/cider_d"] == pytest.approx(ours["oracle_corpus/cider_d"], abs=1e-9)
    assert ours["max/bleu_4"] != pytest.approx(ours["oracle_corpus/bleu_4"], abs=1e-3)


@needs_java
def test_ptb_diversity_follows_the_papers_eval_div_stats():
    """The LoRA-MCL captioning code's ``eval_div_stats``, step by step on pycocoevalcap: PTB
    tokens; mBLEU-4 = per rank i, ``Bleu(4)`` corpus BLEU-4 of candidate i against the other
    candidates, mean over ranks; Div-n per input over its candidates; vocabulary global."""
    cands = [r["captions"][:3] for r in ROWS]  # N = 3
    caps = PTBTokenizer().tokenize({i: [{"caption": c} for c in row] for i, row in enumerate(cands)})
    by_rank = []
    for i in range(3):
        refs = {k: caps[k][:i] + caps[k][i + 1:] for k in caps}
        by_rank.append(Bleu(4).compute_score(refs, {k: [caps[k][i]] for k in caps}, verbose=0)[0][3])

    def div(n):
        per = []
        for k in caps:
            grams = {tuple(c.split()[j:j + n]) for c in caps[k] for j in range(len(c.split()) - n + 1)}
            per.append(len(grams) / (1e-6 + sum(len(c.split()) for c in caps[k])))
        return np.mean(per)

    ours = coco.ptb_diversity(cands)
    assert ours["mbleu_4_ptb"] == pytest.approx(np.mean(by_rank), abs=1e-6)
    assert ours["div_1_ptb"] == pytest.approx(div(1), abs=1e-9)
    assert ours["div_2_ptb"] == pytest.approx(div(2), abs=1e-9)
    assert ours["vocab_ptb"] == len({w for k in caps for c in caps[k] for w in c.split()})


def test_spice_is_na_with_reason_offline(monkeypatch, tmp_path):
    monkeypatch.setenv("MCLBENCH_CORENLP_DIR", str(tmp_path))
    if coco.unavailable(["spice"]) == {}:
        pytest.skip("CoreNLP jars are installed here")
    values = coco.coco_flavours(CANDS[:2], REFS[:2], ["spice", "spider"])
    missing = values.unavailable
    assert values == {}
    assert set(missing) == {"spice", "spider"} and "CoreNLP" in missing["spice"]


def test_java_missing_gives_reason_not_zero(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.delenv("JAVA_HOME", raising=False)
    values = coco.coco_flavours(CANDS[:2], REFS[:2], ["meteor", "cider_d"])
    missing = values.unavailable
    assert values == {}
    assert "Java not found" in missing["meteor"]
    assert "apt-get install default-jre-headless" in missing["cider_d"]


def test_bit_parallel_lcs_equals_the_dynamic_programme():
    import random

    def table(a, b):
        previous = [0] * (len(b) + 1)
        for x in a:
            current = [0]
            for j, y in enumerate(b, 1):
                current.append(previous[j - 1] + 1 if x == y else max(previous[j], current[j - 1]))
            previous = current
        return previous[-1]

    rng = random.Random(0)
    for _ in range(3000):
        a = [rng.choice("abcde") for _ in range(rng.randint(0, 40))]
        b = [rng.choice("abcdef") for _ in range(rng.randint(0, 40))]
        assert coco._lcs(a, b) == table(a, b)


@needs_java
def test_one_meteor_jvm_serves_later_calls_with_the_same_numbers():
    """The process keeps its METEOR JVM (the paraphrase table loads once per run, not per
    cell); reuse, or a dead JVM replaced, gives a fresh JVM's numbers."""
    own = coco.Meteor()
    fresh = coco.meteor_flavours(CANDS, REFS, own)
    own.close()
    first = coco.meteor_flavours(CANDS, REFS)
    jvm = coco.shared_meteor()
    again = coco.meteor_flavours(CANDS, REFS)
    assert coco.shared_meteor() is jvm  # reused, not restarted
    jvm.proc.kill()
    jvm.proc.wait()
    replaced = coco.meteor_flavours(CANDS, REFS)
    assert coco.shared_meteor() is not jvm
    for got in (first, again, replaced):
        assert got[0] == fresh[0] and got[1] == fresh[1] and np.array_equal(got[2], fresh[2])
