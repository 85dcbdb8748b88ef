"""`mclbench estimate`: figures from the configs alone, checked against a hand count on a
tiny Llama (the formulas of harness/estimate.py, written out here)."""

import json

import pytest
import transformers as T

from harness.cli import main
from tests import paper_models

K, RANK, BATCH, DECODE_BATCH, SEQ = 3, 4, 8, 2, 32


@pytest.fixture(scope="module")
def alma(tmp_path_factory):
    return paper_models.alma(tmp_path_factory.mktemp("estimate") / "alma")


def run_estimate(alma, tmp_path, *sets):
    out = tmp_path / "est.json"
    code = main(["estimate", "--tasks", "translation", "--methods", "lora_mcl",
                 "--set", f"task.backbone={alma}", "--set", f"method.num_hypotheses={K}",
                 "--set", f"method.rank={RANK}", "--set", "method.target_modules=[q_proj,v_proj]",
                 "--set", f"method.batch_size={BATCH}", "--set", f"method.decode_batch_size={DECODE_BATCH}",
                 *[a for s in sets for a in ("--set", s)], "--seq-len", str(SEQ), "--json", str(out)])
    assert code == 0
    return json.loads(out.read_text())[0]


def hand_count(model):
    cfg = model.config
    h, layers, v = cfg.hidden_size, cfg.num_hidden_layers, cfg.vocab_size
    kv_dim = cfg.num_key_value_heads * (h // cfg.num_attention_heads)
    adapters = K * RANK * layers * ((h + h) + (h + kv_dim))  # q: h -> h, v: h -> kv_dim
    linear = sum(m.weight.numel() for n, m in model.named_modules()
                 if isinstance(m, __import__("torch").nn.Linear) and n != "lm_head")
    return dict(h=h, layers=layers, v=v, kv_dim=kv_dim, adapters=adapters, linear=linear,
                total=sum(p.numel() for p in model.parameters()))


def test_estimate_equals_a_hand_count_in_bf16(alma, tmp_path, capsys):
    row = run_estimate(alma, tmp_path, "task.dtype=bfloat16")
    n = hand_count(T.LlamaForCausalLM.from_pretrained(alma))
    assert "| translation | lora_mcl | bfloat16 |" in capsys.readouterr().out
    assert row["base_params"] == n["total"] and row["adapter_params"] == n["adapters"]
    assert row["weights"] == n["total"] * 2
    assert row["adapter_state"] == n["adapters"] * 16  # fp32 weights, grads, two AdamW moments
    rows = K * BATCH
    assert row["activations"] == n["layers"] * 34 * SEQ * rows * n["h"]  # 16-bit: 34·s·b·h per layer
    assert row["logits"] == 2 * BATCH * SEQ * n["v"] * 4 + rows * SEQ * n["h"] * 2
    assert row["kv_cache"] == 2 * n["layers"] * DECODE_BATCH * K * SEQ * n["kv_dim"] * 2
    assert row["train"] == row["weights"] + row["adapter_state"] + row["activations"] + row["logits"]
    assert row["decode"] == row["weights"] + row["kv_cache"]


def test_estimate_4bit_and_checkpointing_need_no_gpu(alma, tmp_path):
    full = run_estimate(alma, tmp_path, "task.dtype=bfloat16")
    row = run_estimate(alma, tmp_path, "task.dtype=bfloat16", "task.load_in_4bit=true",
                       "method.gradient_checkpointing=true")
    n = hand_count(T.LlamaForCausalLM.from_pretrained(alma))
    nf4_bits = 4 + 8 / 64 + 32 / (64 * 256)
    assert row["quantisation"] == "load_in_4bit"
    assert row["weights"] == pytest.approx((n["total"] - n["linear"]) * 2 + n["linear"] * nf4_bits / 8)
    rows = K * BATCH
    assert row["activations"] == n["layers"] * SEQ * rows * n["h"] * 2 + 34 * SEQ * rows * n["h"]
    assert row["train"] < full["train"]
