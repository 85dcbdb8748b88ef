"""Diverse beam search equals transformers 4.46.3's group beam search, token for token.

The fixtures (tests/fixtures/group_beam) were made by make_fixtures.py in a throw-away
environment with transformers==4.46.3: a tiny random GPT-2, a left-padded batch of three
prompts, six settings of N beams, G groups, λ, length, EOS and length penalty; and a tiny
random Marian encoder–decoder with a right-padded source batch, four settings.
"""

import json
from pathlib import Path

import pytest
import torch
from transformers import GPT2LMHeadModel, MarianMTModel

from methods.diverse_beam import Hypotheses, group_beam_search

FIXTURES = Path(__file__).parent / "fixtures" / "group_beam"
DATA = json.loads((FIXTURES / "cases.json").read_text())
SEQ2SEQ = json.loads((FIXTURES / "cases_seq2seq.json").read_text())


@pytest.fixture(scope="module")
def model():
    return GPT2LMHeadModel.from_pretrained(FIXTURES / "model").eval()


@pytest.mark.parametrize("case", DATA["cases"],
                         ids=[f"N{c['num_beams']}-G{c['num_beam_groups']}-l{c['diversity_penalty']}"
                              f"-len{c['max_new_tokens']}" for c in DATA["cases"]])
def test_equals_transformers_4_group_beam_search(model, case):
    assert_matches_fixture(model, DATA, case)


def assert_matches_fixture(model, data, case):
    seqs, scores = group_beam_search(
        model, {"input_ids": torch.tensor(data["input_ids"]),
                "attention_mask": torch.tensor(data["attention_mask"])},
        num_beams=case["num_beams"], num_groups=case["num_beam_groups"],
        diversity_penalty=case["diversity_penalty"], max_new_tokens=case["max_new_tokens"],
        eos_token_id=case["eos"], pad_token_id=data["pad_token_id"],
        length_penalty=case.get("length_penalty", 1.0))
    assert seqs.tolist() == case["sequences"]
    assert torch.allclose(scores, torch.tensor(case["sequences_scores"]), atol=1e-4)


@pytest.mark.parametrize("case", SEQ2SEQ["cases"],
                         ids=[f"N{c['num_beams']}-G{c['num_beam_groups']}-l{c['diversity_penalty']}"
                              for c in SEQ2SEQ["cases"]])
def test_encoder_decoder_equals_transformers_4(case):
    assert_matches_fixture(MarianMTModel.from_pretrained(FIXTURES / "model_seq2seq").eval(), SEQ2SEQ, case)


def test_penalty_makes_groups_differ(model):
    prompt = {k: torch.tensor(DATA[k]) for k in ("input_ids", "attention_mask")}
    kw = dict(num_beams=4, num_groups=4, max_new_tokens=6, eos_token_id=None, pad_token_id=0)
    plain, _ = group_beam_search(model, prompt, diversity_penalty=0.0, **kw)
    diverse, _ = group_beam_search(model, prompt, diversity_penalty=10.0, **kw)
    # with one beam per group and no penalty every group is the same greedy beam
    assert len({tuple(s) for s in plain[:4].tolist()}) == 1
    assert len({tuple(s) for s in diverse[:4].tolist()}) == 4


def test_hypotheses_keep_the_best_length_normalised():
    h = Hypotheses(2, length_penalty=1.0)
    for logp, length in [(-4.0, 4), (-1.0, 2), (-6.0, 2)]:  # scores -1, -0.5, -3
        h.add(torch.tensor([length]), logp, length)
    assert sorted(s for s, _ in h.beams) == [-1.0, -0.5]
    assert h.worst_score == -1.0
    assert not h.is_done(best_sum_logprobs=-1.5, generated_len=2)  # -0.75 could still enter
    assert h.is_done(best_sum_logprobs=-3.0, generated_len=2)


def test_bad_group_count_is_rejected(model):
    with pytest.raises(ValueError, match="divisible"):
        group_beam_search(model, {"input_ids": torch.tensor([[3]]), "attention_mask": torch.tensor([[1]])},
                          num_beams=4,
                          num_groups=3, diversity_penalty=1.0, max_new_tokens=2,
                          eos_token_id=None, pad_token_id=0)
