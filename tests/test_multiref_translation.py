"""Multi-reference translation: the loaders on the real files (Tatoeba, newstest2014 × 11),
grouping and bad lines, training on every reference, no test sentence in any training
data, the address-form detector against 200 hand labels, the paper's wmt14 path on a tiny
model."""

import json
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest

from harness.cli import main
from harness.files import DataFormatError
from harness.metrics import registry
from harness.task import Example
from tasks.translation import base as tb
from tasks.translation import tatoeba_base as tab
from tasks.translation.address import address_form, reference_modes
from tasks.translation.loaders import read_fairseq_multiref, read_grouped_parallel, read_tab_pairs
from tasks.translation.task import TranslationConfig, TranslationTask
from tasks.translation.tatoeba import TatoebaTask, address_labels
from tests.test_translation import DE, EN, jsonl, tiny_checkpoint

LABELS = Path(__file__).parent / "fixtures" / "address_labels.jsonl"


def test_newstest2014_has_500_inputs_with_11_references():
    examples = read_fairseq_multiref(tab.DATA / "wmt14-en-de.extra_refs.gz")
    assert len(examples) == 500 and {len(e.references) for e in examples} == {11}
    assert examples[0].id == "1" and examples[0].source.startswith("Orlando Bloom and Miranda Kerr")
    assert examples[0].references[0] == "Orlando Bloom und Miranda Kerr lieben sich noch immer"  # T- first


def test_tatoeba_test_set_groups_575_multi_reference_sentences():
    grouped = read_grouped_parallel(tab.DATA / "tatoeba-test-v2021-08-07.eng.gz",
                                    tab.DATA / "tatoeba-test-v2021-08-07.deu.gz")
    assert len(grouped) == 16_765  # distinct English sentences of 17 565 lines
    multi = tab.multiref_test_inputs()
    assert len(multi) == 575
    assert Counter(len(e.references) for e in multi) == {2: 391, 3: 159, 4: 17, 6: 8}


def test_tab_pairs_group_by_source_and_name_bad_lines(tmp_path):
    good = tmp_path / "deu.txt"
    good.write_text("1\t2\r\nAsk me.\tFrag mich!\r\nAsk me.\tFragt mich!\r\nAsk me.\tFrag mich!\r\n"
                    "Go.\tGeh.\tCC-BY 2.0 (France) Attribution: tatoeba.org\r\n")
    examples = read_tab_pairs(good)
    assert [(e.source, e.references) for e in examples] == [("Ask me.", ["Frag mich!", "Fragt mich!"]),
                                                            ("Go.", ["Geh."])]
    bad = tmp_path / "bad.txt"
    bad.write_text("1\t2\nAsk me.\tFrag mich!\nno tab on this line\n")
    with pytest.raises(DataFormatError, match=r"bad.txt, line 3: expected 'source<TAB>target'"):
        read_tab_pairs(bad)
    real = read_tab_pairs(tab.DATA / "tatoeba-deu-50k.txt.gz")
    assert len(real) == 37_678 and sum(len(e.references) >= 2 for e in real) == 8_253


def test_fairseq_reference_file_names_bad_lines(tmp_path):
    path = tmp_path / "refs"
    path.write_text("S-1\tHello\nT-1\tHallo\nR1-1\tGuten Tag\nX-1\toops\n")
    with pytest.raises(DataFormatError, match=r"refs, line 4: expected 'S-<i>'"):
        read_fairseq_multiref(path)
    path.write_text("S-1\tHello\nT-1\tHallo\nR1-2\tGuten Tag\n")
    with pytest.raises(DataFormatError, match="sentence 2 has references but no S- line"):
        read_fairseq_multiref(path)


def test_no_test_sentence_in_the_bases_or_the_adapters_training_data():
    held_out = {e.source for e in tab.multiref_test_inputs()}
    base, adapters = tab.training_split(0)
    assert not held_out & {e.source for e in base + adapters}
    assert not held_out & {src for src, _ in tab.base_pairs(0)}
    assert {e.source for e in base}.isdisjoint(e.source for e in adapters)
    task = TatoebaTask(TranslationConfig())
    assert not held_out & {e.source for e in task._train_pairs}
    assert all(len(e.references) >= 2 for e in task._train_pairs)  # adapters learn from ambiguity


def test_every_reference_of_an_input_is_a_training_example(tmp_path):
    train = jsonl(tmp_path / "train.jsonl", [{"id": 0, "source": EN[0], "references": DE[:3]},
                                             {"id": 1, "source": EN[1], "references": [DE[3]]}])
    task = TranslationTask(TranslationConfig(train_jsonl=train, test_jsonl=train))
    assert len(task.training_set()) == 4


def test_address_detector_on_200_hand_labelled_references():
    """Per class, the share of hand labels the detector gets right; the figures in README."""
    rows = [json.loads(line) for line in LABELS.read_text().splitlines()]
    assert len(rows) == 200
    right, total = Counter(), Counter(r["label"] for r in rows)
    for r in rows:
        right[r["label"]] += address_form(r["german"], r["english"]) == r["label"]
    accuracy = {label: right[label] / total[label] for label in total}
    assert accuracy["Sie"] >= 0.95 and accuracy["du"] >= 0.9 and accuracy["ihr"] >= 0.9, accuracy


@pytest.mark.parametrize("german, english, want", [
    ("Frag mich!", "Ask me.", "none"),  # a singular imperative: no pronoun, no "you"
    ("Fragt mich!", "Ask me.", "ihr"),
    ("Fragen Sie mich!", "Ask me.", "Sie"),
    ("Sie sind nett.", "You are nice.", "Sie"),
    ("Sie sind nett.", "They are nice to you.", "undecided"),  # "Sie": they or you
    ("Ich gebe ihr das Buch.", "I give her the book, you see.", "undecided"),
    ("Habt ihr Hunger?", "Are you hungry?", "ihr"),
    ("Geben Sie mir all dein Geld!", "Give me all your money!", "undecided"),  # mixed forms
    ("Danke!", "Thank you!", "undecided"),
    ("Ich bin müde.", "I am tired.", "none"),
    ("Wackle einmal mit den Zehen.", "Wiggle your toes.", "undecided"),
])
def test_address_form_examples(german, english, want):
    assert address_form(german, english) == want


def test_address_coverage_by_hand():
    sources = ["Ask me.", "Ask me.", "I am tired."]
    refs = [["Frag mich, du!", "Fragen Sie mich!"], ["Fragt mich!"], ["Ich bin müde."]]
    cands = [["Fragen Sie mich!", "Fragen Sie mich bitte!"], ["Fragt mich!", "Frag du mich!"], ["Müde."]]
    assert reference_modes(refs[0], sources[0]) == {"du", "Sie"}
    labels, used = address_labels(sources, refs, cands)
    values = registry.score(cands, refs, ["modes_covered", "mode_recall"], reference_modes=labels,
                            candidate_modes=used)  # the third input has no form: left out
    assert values["modes_covered"] == 1.0 and values["mode_recall"] == pytest.approx((0.5 + 1) / 2)
    task = TatoebaTask(TatoebaTask.Config())
    examples = [Example(str(i), s, r) for i, (s, r) in enumerate(zip(sources, refs, strict=True))]
    shares, _ = task.score(examples, cands, {})
    assert shares == {"share_du": 0.25, "share_ihr": 0.25, "share_Sie": 0.5}


def test_committed_tatoeba_base_translates():
    task = TatoebaTask(TranslationConfig())
    summary = json.loads((tab.BASE_DIR / "training_summary.json").read_text())
    model = task.load_backbone(tab.BASE_DIR)
    bleu = tb.greedy_bleu(model, task.tokenizer, tab.multiref_test_inputs()[:50])
    assert bleu > 5, bleu
    assert summary["greedy_bleu_tatoeba_multiref_test"] > 0


@pytest.mark.slow
def test_wmt14_multiref_path_with_a_checkpoint_on_a_tiny_model(tmp_path, monkeypatch):
    """The documented path to the paper's figure: ``task.backbone=<checkpoint>`` on newstest2014
    with 11 references gives LOO-BLEU, pairwise BLEU, max/bleu, refs covered and oracle NLL."""
    ckpt = tiny_checkpoint(tmp_path / "seq2seq", causal=False)
    train = jsonl(tmp_path / "train.jsonl", [{"id": i, "source": s, "references": [d]}
                                             for i, (s, d) in enumerate(zip(EN[:8], DE[:8], strict=True))])
    monkeypatch.chdir(tmp_path)
    args = ["run", "--tasks", "wmt14_en_de_multiref", "--methods", "lora_mcl", "--seeds", "0", "--output",
            str(tmp_path / "out"), "--cache-dir", str(tmp_path / "cache"), "--no-tracking"]
    for s in [f"task.backbone={ckpt}", f"task.train_jsonl={train}", "task.num_test=3",
              "task.max_new_tokens=5", "method.steps=2", "method.batch_size=4", "lora_mcl.num_hypotheses=2"]:
        args += ["--set", s]
    assert main(args) == 0
    scores = pd.read_csv(tmp_path / "out" / "scores.csv")
    assert {"loo_bleu", "pairwise_bleu", "max/bleu", "refs_covered", "oracle_nll"} <= set(scores["metric"])
    board = (tmp_path / "out" / "leaderboard.md").read_text()
    assert "nrefs:11" in board


def test_tatoeba_reports_loo_bleu_on_the_first_two_references():
    from harness import score_stages
    from harness.metrics import diversity as dv

    task = TatoebaTask(TranslationConfig(num_test=30))
    examples = task.test_examples()
    assert len({len(e.references) for e in examples}) > 1  # 2-6 references: fairseq's loo_bleu is undefined
    cands = [[e.references[0], e.references[-1], "Nein."] for e in examples]
    values = score_stages.evaluate(task, examples, cands, {}).values
    assert values["loo_bleu_2refs"] == dv.loo_bleu(cands, [e.references[:2] for e in examples])
    assert "loo_bleu" not in values and "loo_bleu" not in task.metric_names()
    assert {"modes_covered", "mode_recall", "refs_covered", "max/bleu", "pairwise_bleu"} <= set(values)
