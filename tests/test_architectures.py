"""LoRA-MCL on five architecture families, built tiny from configs.

For each: the batched K-hypothesis logits equal K separate single-adapter runs, each
hypothesis's `generate` output equals greedy decoding with that adapter alone, and the
PEFT export of hypothesis k loads with `peft.PeftModel.from_pretrained` and gives the
same logits.
"""

import copy

import pytest
import torch
import transformers as T

from methods.lora.fast import FastMultiLoRAModel
from methods.lora.model import MultiLoRAConfig

V = 13  # vocabulary: 0 pad, 1 bos/start, 2 eos


def gpt2():
    return T.GPT2LMHeadModel(T.GPT2Config(vocab_size=V, n_positions=32, n_embd=16, n_layer=2,
                                          n_head=2, bos_token_id=1, eos_token_id=2,
                                          pad_token_id=0))


def llama():
    return T.LlamaForCausalLM(T.LlamaConfig(
        vocab_size=V, hidden_size=16, intermediate_size=32, num_hidden_layers=2,
        num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=32,
        bos_token_id=1, eos_token_id=2, pad_token_id=0))


def t5():
    return T.T5ForConditionalGeneration(T.T5Config(
        vocab_size=V, d_model=16, d_kv=8, d_ff=32, num_layers=2, num_heads=2,
        decoder_start_token_id=0, pad_token_id=0, eos_token_id=2))


def whisper():
    return T.WhisperForConditionalGeneration(T.WhisperConfig(
        vocab_size=V, num_mel_bins=8, d_model=16, encoder_layers=1, decoder_layers=1,
        encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=32,
        decoder_ffn_dim=32, max_source_positions=8, max_target_positions=32,
        decoder_start_token_id=1, pad_token_id=0, eos_token_id=2, bos_token_id=1,
        begin_suppress_tokens=None, suppress_tokens=None))


def vision_gpt2():
    vit = T.ViTConfig(image_size=8, patch_size=4, num_channels=3, hidden_size=16,
                      num_hidden_layers=1, num_attention_heads=2, intermediate_size=32)
    dec = T.GPT2Config(vocab_size=V, n_positions=32, n_embd=16, n_layer=1, n_head=2,
                       add_cross_attention=True, is_decoder=True, bos_token_id=1,
                       eos_token_id=2, pad_token_id=0)
    model = T.VisionEncoderDecoderModel(T.VisionEncoderDecoderConfig.from_encoder_decoder_configs(vit, dec))
    model.config.decoder_start_token_id = 1
    model.config.pad_token_id = 0
    model.generation_config.decoder_start_token_id = 1
    return model


def inputs(name, batch=2):
    g = torch.Generator().manual_seed(1)
    if name in ("gpt2", "llama"):
        ids = torch.randint(3, V, (batch, 5), generator=g)
        mask = torch.ones_like(ids)
        mask[0, :2] = 0  # left padding
        return {"input_ids": ids, "attention_mask": mask}
    if name == "t5":
        ids = torch.randint(3, V, (batch, 6), generator=g)
        return {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
    if name == "whisper":
        return {"input_features": torch.randn(batch, 8, 16, generator=g)}
    return {"pixel_values": torch.randn(batch, 3, 8, 8, generator=g)}


ARCHS = {
    "gpt2": (gpt2, ["c_attn", "c_proj"]),            # transformers Conv1D layers
    "llama": (llama, "all-linear"),
    "t5": (t5, ["q", "k", "v", "o"]),
    "whisper": (whisper, ["q_proj", "k_proj", "v_proj", "out_proj"]),
    "vision_gpt2": (vision_gpt2, "all-linear"),       # ViT encoder + GPT-2 with cross-attention
}


def build(name, k=3, rank=2):
    factory, targets = ARCHS[name]
    torch.manual_seed(0)
    base = factory().eval()
    model = FastMultiLoRAModel(copy.deepcopy(base), MultiLoRAConfig(k, rank, 4.0, 0.0, targets))
    torch.manual_seed(1)
    for n, p in model.named_parameters():
        if "lora_B" in n:  # B = 0 at init: give each hypothesis a distinct non-zero update
            p.data.normal_(0, 0.3)
    return base, model.eval()


def targets(batch=2):
    return torch.randint(3, V, (batch, 4), generator=torch.Generator().manual_seed(2))


def forward_inputs(name, model):
    """Model inputs for one forward pass (encoder-decoders also get decoder inputs)."""
    batch = inputs(name)
    if model.is_encoder_decoder:
        batch["decoder_input_ids"] = targets()
    return batch


@pytest.mark.parametrize("name", list(ARCHS))
def test_batched_logits_equal_separate_adapters(name):
    base, model = build(name)
    batch = forward_inputs(name, model)
    batched = model.forward_hypotheses(**batch)
    assert batched.shape[0] == 3
    for k in range(3):
        alone = model.single_hypothesis(k, copy.deepcopy(base)).forward_hypotheses(**batch)[0]
        assert torch.allclose(batched[k], alone, atol=1e-5), (name, k)
    assert not torch.allclose(batched[0], batched[1], atol=1e-4)


@pytest.mark.parametrize("name", list(ARCHS))
def test_sequence_nll_runs_on_every_family(name):
    _, model = build(name)
    batch = inputs(name)
    if model.is_encoder_decoder:
        batch["labels"] = targets()
    else:
        batch["labels"] = batch["input_ids"].masked_fill(batch["attention_mask"] == 0, -100)
    nll = model.sequence_nll(batch)
    assert nll.shape == (3, 2) and torch.isfinite(nll).all()


@pytest.mark.parametrize("num_beams", [1, 2])
@pytest.mark.parametrize("name", list(ARCHS))
def test_generate_per_hypothesis_equals_that_adapter_alone(name, num_beams):
    base, model = build(name)
    batch = inputs(name)
    kw = dict(max_new_tokens=5, num_beams=num_beams, do_sample=False, pad_token_id=0)
    out = model.generate_hypotheses(batch, **kw)
    assert out.shape[:2] == (3, 2)
    for k in range(3):
        alone = model.single_hypothesis(k, copy.deepcopy(base)).generate_hypotheses(batch, **kw)[0]
        # decoded together, a hypothesis that stops early is filled (PAD or EOS) up to the
        # longest one; the tokens it generated are the same
        n = alone.shape[-1]
        assert torch.equal(out[k, :, :n], alone), (name, k)
        assert ((out[k, :, n:] == 0) | (out[k, :, n:] == 2)).all(), (name, k)


@pytest.mark.parametrize("name", list(ARCHS))
def test_peft_export_round_trips(name, tmp_path):
    from peft import PeftModel

    base, model = build(name)
    batch = forward_inputs(name, model)
    want = model.forward_hypotheses(**batch)
    for k in (0, 2):
        folder = tmp_path / f"h{k}"
        model.export_peft(k, folder)
        peft_model = PeftModel.from_pretrained(copy.deepcopy(base), folder).eval()
        got = peft_model(**batch).logits
        assert torch.allclose(got, want[k], atol=1e-5), (name, k)
