"""The translation task: default data split, any checkpoint by path (causal LM with an
ALMA-style prompt, or seq2seq), several-reference metrics, and bad configuration."""

import json

import pandas as pd
import pytest
import torch

from harness.cli import main
from tasks.translation import base as tb
from tasks.translation.loaders import read_lines
from tasks.translation.task import ALMA_PROMPT, TranslationConfig, TranslationTask

EN = read_lines(tb.DATA / "val.en.gz")[:12]
DE = read_lines(tb.DATA / "val.de.gz")[:12]


def tiny_checkpoint(path, causal: bool):
    """A random tiny model + a BPE tokenizer trained on a few real sentences, saved to disk."""
    from transformers import GPT2Config, GPT2LMHeadModel, MarianConfig, MarianMTModel

    tok = tb.train_tokenizer(EN + DE + [ALMA_PROMPT], vocab_size=200)
    torch.manual_seed(0)
    if causal:
        model = GPT2LMHeadModel(GPT2Config(
            vocab_size=len(tok), n_positions=256, n_embd=32, n_layer=1, n_head=2,
            eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id))
    else:
        model = MarianMTModel(MarianConfig(
            vocab_size=len(tok), decoder_vocab_size=len(tok), d_model=32, encoder_layers=1, decoder_layers=1,
            encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=64, decoder_ffn_dim=64,
            pad_token_id=0, eos_token_id=1, decoder_start_token_id=0))
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return path


def jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def run(tmp_path, methods, sets):
    args = ["run", "--tasks", "translation", "--methods", methods, "--seeds", "0", "--output",
            str(tmp_path / "out"), "--cache-dir", str(tmp_path / "cache"), "--no-tracking"]
    for s in sets:
        args += ["--set", s]
    assert main(args) == 0
    return pd.read_csv(tmp_path / "out" / "scores.csv")


@pytest.fixture
def data(tmp_path):
    train = jsonl(tmp_path / "train.jsonl", [{"id": i, "source": s, "references": [d]}
                                             for i, (s, d) in enumerate(zip(EN[:8], DE[:8], strict=True))])
    # two references each: the several-reference metrics must appear
    test = jsonl(tmp_path / "test.jsonl", [{"id": f"t{i}", "source": s, "references": [d, d.lower()]}
                                           for i, (s, d) in enumerate(zip(EN[8:], DE[8:], strict=True))])
    return [f"task.train_jsonl={train}", f"task.test_jsonl={test}", "task.max_new_tokens=6",
            "method.steps=2", "method.batch_size=4"]


@pytest.mark.slow
def test_causal_checkpoint_by_path_with_alma_prompt(tmp_path, data, monkeypatch):
    ckpt = tiny_checkpoint(tmp_path / "causal", causal=True)
    monkeypatch.chdir(tmp_path)
    scores = run(tmp_path, "lora_mcl,lora_mle", [*data, f"task.backbone={ckpt}",
                                               "lora_mcl.num_hypotheses=2", "method.target_modules=[c_attn]"])
    metrics = set(scores["metric"])
    assert {"top1/bleu", "oracle_corpus/chrf", "pairwise_bleu", "loo_bleu", "refs_covered"} <= metrics
    task = TranslationTask(TranslationConfig(backbone=str(ckpt), test_jsonl=str(tmp_path / "test.jsonl")))
    prompt = task.prompt_batch(task.test_examples()[:1])
    text = task.tokenizer.decode(prompt["input_ids"][0], skip_special_tokens=True)
    assert text.startswith("Translate this from English to German:") and text.rstrip().endswith("German:")
    rows = [json.loads(line) for line in
            (tmp_path / "out" / "cells" / "translation" / "lora_mcl" / "seed0" / "candidates.jsonl").open()]
    assert len(rows) == 4 and all(len(r["candidates"]) == 2 for r in rows)
    assert all("\n" not in c for r in rows for c in r["candidates"])  # the first line only


@pytest.mark.slow
def test_seq2seq_checkpoint_by_path_with_diverse_beam(tmp_path, data, monkeypatch):
    ckpt = tiny_checkpoint(tmp_path / "seq2seq", causal=False)
    monkeypatch.chdir(tmp_path)
    scores = run(tmp_path, "diverse_beam,beam", [*data, f"task.backbone={ckpt}", "beam.num_candidates=2",
                                                 "diverse_beam.num_candidates=2",
                                                 "diverse_beam.diversity_penalty=0.8"])
    assert set(scores["method"]) == {"diverse_beam", "beam"}
    board = (tmp_path / "out" / "leaderboard.md").read_text()
    assert "sacreBLEU bleu: nrefs:2|case:mixed|eff:no|tok:13a" in board  # the signature, in the footer


def test_default_split_keeps_adapter_data_unseen_by_the_base():
    task = TranslationTask(TranslationConfig())
    base_ids, adapter_ids = tb.base_split(29_000, tb.Recipe.base_pairs, tb.Recipe.seed)
    assert len(base_ids) == 22_000 and len(adapter_ids) == 7_000 and not set(base_ids) & set(adapter_ids)
    assert len(task._train_pairs) == 7_000 and len(task.test_examples()) == 1_000
    train = read_lines(tb.DATA / "train.en.gz")
    assert [e.source for e in task._train_pairs[:3]] == [train[i] for i in adapter_ids[:3]]


@pytest.mark.parametrize("sets,msg", [
    ({"test_source": "x.en"}, "test_source needs test_references"),
    ({"train_source": "x.en"}, "set both train_source and train_target"),
    ({"backbone": "some/model", "rebuild_base": True}, "cannot be combined with backbone"),
])
def test_bad_config(sets, msg):
    with pytest.raises(ValueError, match=msg):
        TranslationConfig(**sets).validate()


@pytest.mark.skipif(not (tb.BASE_DIR / "model.safetensors").exists(), reason="base not committed")
def test_committed_base_translates():
    """The committed fp16 base loads in fp32 and translates real test sentences."""
    import sacrebleu

    task = TranslationTask(TranslationConfig(num_test=100))
    model = task.load_backbone(tb.BASE_DIR)
    assert next(model.parameters()).dtype == torch.float32
    examples = task.test_examples()
    prompt = task.prompt_batch(examples)
    with torch.no_grad():
        out = model.generate(**prompt, num_beams=1, do_sample=False, **task.generation_kwargs())
    hyps = task.decode_outputs(prompt, out)
    bleu = sacrebleu.corpus_bleu(hyps, [[e.references[0] for e in examples]]).score
    assert bleu > 20, (bleu, hyps[:3])


def test_rebuild_base_flag_recreates_it_with_the_script(tmp_path, monkeypatch):
    """`task.rebuild_base=true` runs the pre-training script (here a tiny recipe)."""
    from dataclasses import dataclass

    @dataclass
    class TinyRecipe(tb.Recipe):
        vocab_size: int = 300
        d_model: int = 16
        layers: int = 1
        heads: int = 2
        ffn_dim: int = 32
        steps: int = 2
        max_len: int = 16

    monkeypatch.setattr(tb, "Recipe", TinyRecipe)
    monkeypatch.setattr(tb, "greedy_bleu", lambda *a, **k: 0.0)  # the export's BLEU: not needed here
    monkeypatch.setenv("MCLBENCH_TRANSLATION_BASE", str(tmp_path / "base"))
    task = TranslationTask(TranslationConfig(rebuild_base=True))
    model = task.build_backbone(seed=0)
    assert (tmp_path / "base" / "model.safetensors").exists() and model.config.d_model == 16
    assert task.backbone_spec(0)["rebuild"]["steps"] == 2
    assert len(task.tokenizer) == 300


@pytest.mark.slow
def test_held_out_validation_inputs_give_a_training_curve(tmp_path, data, monkeypatch):
    """num_validation holds the last training inputs out (never trained on); eval_every logs
    their oracle NLL before training and every eval_every steps; the run draws the curve."""
    ckpt = tiny_checkpoint(tmp_path / "causal", causal=True)
    monkeypatch.chdir(tmp_path)
    train_jsonl = data[0].split("=", 1)[1]
    task = TranslationTask(TranslationConfig(backbone=str(ckpt), train_jsonl=train_jsonl, num_validation=3))
    held_out = {e.source for e in task._validation}
    assert len(held_out) == 3 and not held_out & {e.source for e in task._train_pairs}
    assert len(task._train_pairs) == 5 and len(task.validation_set()) == 3
    run(tmp_path, "lora_mcl,lora_mle", [*data, f"task.backbone={ckpt}", "task.num_validation=3",
                                        "method.eval_every=1", "lora_mcl.num_hypotheses=2",
                                        "method.target_modules=[c_attn]"])
    cells = tmp_path / "out" / "cells" / "translation"
    for method in ("lora_mcl", "lora_mle"):
        log = json.loads((cells / method / "seed0" / "train_log.json").read_text())
        assert log["val_step"] == [0, 1, 2] and len(log["val_nll"]) == 3
        assert all(v > 0 for v in log["val_nll"]) and log["val_nll"][0] != log["val_nll"][-1]
    assert (tmp_path / "out" / "translation" / "plots" / "training_curves.png").is_file()
    with pytest.raises(ValueError, match="num_validation 8: the training data has only 8 inputs"):
        TranslationTask(TranslationConfig(backbone=str(ckpt), train_jsonl=train_jsonl,
                                          num_validation=8)).training_set()
