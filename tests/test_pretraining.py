"""The base pre-training loop: a run stopped and resumed equals an uninterrupted one, and
stopping at step s equals a run planned for s steps (the schedule ignores the budget)."""

import torch
from transformers import MarianConfig, MarianMTModel

from tasks.pretraining import Schedule, lr_at, pretrain_loop


def tiny_model():
    torch.manual_seed(0)
    return MarianMTModel(MarianConfig(
        vocab_size=20, decoder_vocab_size=20, d_model=16, encoder_layers=1, decoder_layers=1,
        encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=32, decoder_ffn_dim=32,
        pad_token_id=0, eos_token_id=1, decoder_start_token_id=0, dropout=0.1))


def batch_at(step):
    g = torch.Generator().manual_seed(step)
    ids = torch.randint(2, 20, (4, 6), generator=g)
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": ids.flip(1)}


def schedule(steps):
    return Schedule(steps=steps, lr=1e-2, warmup=2, seed=3, checkpoint_every=2, eval_every=2)


def test_resumed_run_equals_uninterrupted(tmp_path):
    straight = tiny_model()
    log = pretrain_loop(straight, batch_at, schedule(6), tmp_path / "a", lambda m: {"x": 1.0})
    resumed = tiny_model()
    pretrain_loop(resumed, batch_at, schedule(4), tmp_path / "b", lambda m: {"x": 1.0})  # stops at 4
    again = tiny_model()  # a fresh process: weights come back from the checkpoint
    log_b = pretrain_loop(again, batch_at, schedule(6), tmp_path / "b", lambda m: {"x": 1.0})
    for (name, a), b in zip(straight.state_dict().items(), again.state_dict().values(), strict=True):
        assert torch.equal(a, b), name
    assert [r["step"] for r in log] == [r["step"] for r in log_b] == [2, 4, 6]
    assert [r["train_loss"] for r in log] == [r["train_loss"] for r in log_b]


def test_schedule_warms_up_then_decays():
    s = schedule(100)
    assert lr_at(0, s) == 5e-3 and lr_at(1, s) == 1e-2
    assert lr_at(7, s) == 1e-2 * (2 / 8) ** 0.5
