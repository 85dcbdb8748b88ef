"""Text quality and diversity metrics: equal to sacreBLEU on real multi-reference sentences,
hand-checked examples for the diversity metrics, clear errors on bad input."""

import json
from pathlib import Path

import numpy as np
import pytest
import sacrebleu
from sacrebleu.metrics import BLEU

from harness.metrics import diversity as dv
from harness.metrics import ngrams
from harness.metrics import text as tx

ROWS = [json.loads(line) for line in
        (Path(__file__).parent / "fixtures" / "multi30k_val_captions.jsonl").read_text().splitlines()]
# real sentences: captions 1-2 play N = 2 candidates, captions 3-5 the references (M = 3)
CANDS = [r["captions"][:2] for r in ROWS]
REFS = [r["captions"][2:] for r in ROWS]


def test_corpus_and_sentence_scores_equal_sacrebleu():
    hyps = [c[0] for c in CANDS]
    streams = [list(s) for s in zip(*REFS, strict=True)]
    assert tx.corpus_bleu(hyps, REFS) == pytest.approx(sacrebleu.corpus_bleu(hyps, streams).score, abs=1e-6)
    assert tx.corpus_chrf(hyps, REFS) == pytest.approx(sacrebleu.corpus_chrf(hyps, streams).score, abs=1e-6)
    for h, refs in zip(hyps, REFS, strict=True):
        want = sacrebleu.sentence_bleu(h, refs).score  # effective order by default here
        assert tx.sentence_bleu(h, refs) == pytest.approx(want, abs=1e-6)
        assert tx.sentence_chrf(h, refs) == pytest.approx(sacrebleu.sentence_chrf(h, refs).score, abs=1e-6)


def test_variable_number_of_references():
    refs = [REFS[0], REFS[1][:1], REFS[2][:2]]
    hyps = [c[0] for c in CANDS[:3]]
    streams = [[r[j] if j < len(r) else None for r in refs] for j in range(3)]
    assert tx.corpus_bleu(hyps, refs) == pytest.approx(sacrebleu.corpus_bleu(hyps, streams).score, abs=1e-6)
    assert tx.signatures(refs)["bleu"].startswith("nrefs:var|case:mixed|eff:no|tok:13a")


def test_flavours():
    scores = tx.quality_flavours(CANDS, REFS)
    top1 = tx.corpus_bleu([c[0] for c in CANDS], REFS)
    second = tx.corpus_bleu([c[1] for c in CANDS], REFS)
    assert scores["top1/bleu"] == pytest.approx(top1)
    assert scores["mean/bleu"] == pytest.approx((top1 + second) / 2)
    oracle = [max(c, key=lambda h, r=r: tx.sentence_bleu(h, r)) for c, r in zip(CANDS, REFS, strict=True)]
    assert scores["oracle_corpus/bleu"] == pytest.approx(tx.corpus_bleu(oracle, REFS))
    assert scores["oracle_corpus/chrf"] >= scores["mean/chrf"] - 1e-9
    # one candidate equal to a reference: that input's oracle pick is the reference itself
    assert tx.quality_flavours([["zzz", REFS[0][0]]], [REFS[0]])["oracle_corpus/bleu"] == pytest.approx(100.0)


def test_diversity_by_hand():
    same = [["a man rides a red bike", "a man rides a red bike"]]
    disjoint = [["one two three four", "five six seven eight"]]
    assert dv.mbleu_4(same) == pytest.approx(100.0)
    assert dv.mbleu_4(disjoint) == pytest.approx(0.0)
    assert dv.pairwise_bleu(same) == pytest.approx(100.0)
    assert dv.pairwise_bleu(disjoint) == pytest.approx(0.0)
    # Div-n: distinct n-grams over the N candidates / their total tokens
    assert dv.div_n([["a b", "a c"]], 1) == pytest.approx(3 / 4)
    assert dv.div_n([["a b", "a c"]], 2) == pytest.approx(2 / 4)
    assert dv.div_n([["a b", "a c"], ["x x", "x x"]], 1) == pytest.approx((3 / 4 + 1 / 4) / 2)
    assert dv.vocab([["a b", "a c"], ["c d", "d"]]) == 4.0
    assert dv.unique([["x", "x"], ["x", "y"]]) == pytest.approx(0.75)


def test_refs_covered_by_hand():
    refs = [["the cat sat on the mat", "a dog ran in the park"]]
    assert dv.refs_covered([["the cat sat on the mat", "a dog ran in the park"]], refs) == 2.0
    assert dv.refs_covered([["the cat sat on the mat", "the cat sat on a mat"]], refs) == 1.0


def test_leave_one_out_bleu_by_hand():
    cat, dog = "the cat sat on the mat", "a dog ran in the park"
    # held out the dog: the candidate (= cat) against [cat] -> 100; held out the cat: against [dog]
    want = (100.0 + sacrebleu.corpus_bleu([cat], [[dog]]).score) / 2
    assert dv.loo_bleu([[cat]], [[cat, dog]]) == pytest.approx(want)


@pytest.mark.parametrize("cands,refs,msg", [
    ([["a", "b"], ["c"]], [["r"], ["r"]], "input #1 has 1 candidates, the first input has 2"),
    ([["a"]], [[]], "input #0 has no reference"),
    ([["a", 3]], [["r"]], "input #0: candidate 3 is not a string"),
    ([["a"]], [[None]], "input #0: reference None is not a string"),
    (["abc"], [["r"]], "input #0: candidates must be a list of strings, got 'abc'"),
])
def test_bad_input_is_named(cands, refs, msg):
    with pytest.raises(tx.MetricInputError, match=msg):
        tx.quality_flavours(cands, refs)


def test_max_bleu_is_almas_oracle_sentence_bleu_mean():
    """``max/bleu`` = the LoRA-MCL code's ``compute_oracle_sentence_bleu`` (ALMA): per input the
    best ``sacrebleu.sentence_bleu`` over the candidates, mean over inputs; chrF likewise."""
    scores = tx.quality_flavours(CANDS, REFS)
    want = np.mean([max(sacrebleu.sentence_bleu(c, refs).score for c in cands)
                    for cands, refs in zip(CANDS, REFS, strict=True)])
    assert scores["max/bleu"] == pytest.approx(want, abs=1e-6)
    want_chrf = np.mean([max(sacrebleu.sentence_chrf(c, refs).score for c in cands)
                         for cands, refs in zip(CANDS, REFS, strict=True)])
    assert scores["max/chrf"] == pytest.approx(want_chrf, abs=1e-6)
    assert scores["max/bleu"] != pytest.approx(scores["oracle_corpus/bleu"], abs=1e-3)  # not the corpus form


def test_oracle_and_top1_nll_by_hand():
    from harness.metrics.likelihood import nll_flavours

    # 2 hypotheses; input 0 has references rows 0 and 1, input 1 has row 2
    nll = np.array([[1.0, 4.0, 2.0],
                    [3.0, 2.0, 5.0]])
    values = nll_flavours(nll, np.array([0, 0, 1]))
    assert values["oracle_nll"] == pytest.approx(((1.0 + 2.0) / 2 + 2.0) / 2)
    assert values["top1_nll"] == pytest.approx(((1.0 + 4.0) / 2 + 2.0) / 2)
    one = nll_flavours(nll[:1], np.array([0, 0, 1]))  # one hypothesis: the two are equal
    assert one["oracle_nll"] == one["top1_nll"]


def test_shared_ngram_statistics_equal_sacrebleu():
    """The n-gram table behind the BLEU-based diversity metrics gives sacreBLEU's scores."""
    from harness.metrics import ngrams

    table = ngrams.NgramTable()
    for cands, refs in zip(CANDS, REFS, strict=True):
        for c in cands:
            stats = table.stats(c, table.references(refs))
            assert ngrams.sentence_bleu(stats) == sacrebleu.sentence_bleu(c, refs).score
    hyps = [c for cands in CANDS for c in cands]
    refs = [r for cands, rs in zip(CANDS, REFS, strict=True) for r in [rs] * len(cands)]
    stats = [table.stats(h, table.references(r)) for h, r in zip(hyps, refs, strict=True)]
    assert ngrams.corpus_bleu(stats) == tx.corpus_bleu(hyps, refs)


@pytest.mark.parametrize("tokenize", ["intl", "char", "zh", "none"])
def test_another_tokenisation_equals_sacrebleu_with_it(tokenize):
    streams = [list(s) for s in zip(*REFS, strict=True)]
    values = tx.quality_flavours(CANDS, REFS, ["bleu"], tokenize)
    want = sacrebleu.corpus_bleu([c[0] for c in CANDS], streams, tokenize=tokenize).score
    assert values["top1/bleu"] == pytest.approx(want, abs=1e-9)
    best = [max(sacrebleu.sentence_bleu(h, refs, tokenize=tokenize).score for h in c)
            for c, refs in zip(CANDS, REFS, strict=True)]
    assert values["max/bleu"] == pytest.approx(np.mean(best), abs=1e-9)
    assert f"tok:{tokenize}" in tx.signatures(REFS, tokenize)["bleu"]
    # Div-1 on that tokenisation, by hand
    toks = [BLEU(tokenize=tokenize).tokenizer(c).split() for c in CANDS[0]]
    distinct = len({t for ts in toks for t in ts})
    assert dv.div_n(CANDS[:1], 1, tokenize) == pytest.approx(distinct / sum(map(len, toks)))
    # the diversity table's sentence BLEU follows it too (mBLEU-4 of candidate 0 against 1)
    table = ngrams.NgramTable(tokenize)
    pair = ngrams.sentence_bleu(table.stats(CANDS[0][0], table.references([CANDS[0][1]])))
    assert pair == pytest.approx(sacrebleu.sentence_bleu(CANDS[0][0], [CANDS[0][1]], tokenize=tokenize).score)


def test_an_unknown_tokenisation_is_refused():
    from harness import scoring

    with pytest.raises(scoring.ScoreInputError, match="unknown tokenisation 'klingon'; choose one of 13a"):
        scoring.score([0], [["a"]], [["a"]], ["bleu"], tokenize="klingon")
