"""`mclbench estimate`: figures from the configs alone, checked against what one real
training step and one decoding prefill of a tiny Llama hold in memory."""

import json

import pytest
import torch
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


def measured(alma, dtype: torch.dtype) -> dict[str, int]:
    """Bytes of one real LoRA-MCL training step and one decoding prefill on the tiny Llama:
    the weights as loaded; the adapters' weights, gradients and AdamW moments after a step;
    every tensor autograd saves for the backward (the activations and the head's logits: the
    training peak above the weights); the KV cache of DECODE_BATCH·K rows of SEQ tokens."""
    from methods.lora.fast import FastMultiLoRAModel
    from methods.lora.model import MultiLoRAConfig
    from methods.lora_mcl import wta_loss

    base = T.LlamaForCausalLM.from_pretrained(alma, dtype=dtype)
    weights = sum(p.numel() * p.element_size() for p in base.parameters())
    base_params = sum(p.numel() for p in base.parameters())
    with torch.no_grad():  # the bare model's cache (the adapters add none)
        cache = base(input_ids=torch.randint(5, 300, (DECODE_BATCH * K, SEQ)), use_cache=True).past_key_values
    kv = sum(t.numel() * t.element_size() for layer in cache.layers for t in (layer.keys, layer.values))
    model = FastMultiLoRAModel(base, MultiLoRAConfig(K, RANK, 2.0 * RANK, 0.0, ["q_proj", "v_proj"]))
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-3)
    ids = torch.randint(5, 300, (BATCH, SEQ))
    saved = []

    def pack(t):
        saved.append(t.numel() * t.element_size())
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        nll = model.sequence_nll({"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": ids})
    wta_loss(nll).backward()
    opt.step()
    moments = sum(t.numel() * t.element_size() for st in opt.state.values() for k, t in st.items()
                  if k != "step")
    return {"base_params": base_params,
            "adapter_params": sum(p.numel() for p in params), "weights": weights,
            "adapter_state": moments + 2 * sum(p.numel() * p.element_size() for p in params),
            "saved": sum(saved), "kv_cache": kv}


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_estimate_against_what_a_tiny_run_holds(alma, tmp_path, capsys, dtype):
    row = run_estimate(alma, tmp_path, f"task.dtype={dtype}")
    real = measured(alma, getattr(torch, dtype))
    assert f"| translation | lora_mcl | {dtype} |" in capsys.readouterr().out
    for key in ("base_params", "adapter_params", "weights", "adapter_state", "kv_cache"):
        assert row[key] == real[key], key
    # activations and logits are an upper bound (Korthikanti et al.'s 34·s·b·h per layer), within 2x
    assert real["saved"] <= row["activations"] + row["logits"] <= 2 * real["saved"]
    assert row["train"] == row["weights"] + row["adapter_state"] + row["activations"] + row["logits"]
    assert row["decode"] == row["weights"] + row["kv_cache"]


def test_estimate_4bit_and_checkpointing_need_no_gpu(alma, tmp_path):
    full = run_estimate(alma, tmp_path, "task.dtype=bfloat16")
    row = run_estimate(alma, tmp_path, "task.dtype=bfloat16", "task.load_in_4bit=true",
                       "method.gradient_checkpointing=true")
    assert row["quantisation"] == "load_in_4bit"
    # NF4 stores the linear layers in about a quarter of bf16's bytes; checkpointing keeps one
    # layer's activations and each layer's input
    assert full["weights"] / 4 < row["weights"] < full["weights"]
    assert row["activations"] < full["activations"] and row["train"] < full["train"]
