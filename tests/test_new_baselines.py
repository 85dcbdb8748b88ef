"""The paper's other baselines: top-k and temperature sampling, MoE-LoRA expert-specific and
stochastic-routing decoding, test-time augmentation — their own logic, then a grid."""

import json

import pandas as pd
import pytest
import torch

from harness.cli import main
from methods.moe_lora import MoELoRAConfig, MoELoRALinear, MoELoRAModel
from methods.tta import TTAConfig, image_augment, spec_augment


def moe_layer():
    torch.manual_seed(0)
    layer = MoELoRALinear(torch.nn.Linear(8, 6), MoELoRAConfig(num_experts=3, rank=2, alpha=4.0))
    for p in (layer.lora_A, layer.lora_B, layer.lora_router):
        p.data.normal_(0, 0.5)
    return layer


def expert_alone(layer, x, e):
    """base(x) + (α/r) B_e A_e x, by hand."""
    r = layer.rank
    a, b = layer.lora_A[e * r:(e + 1) * r], layer.lora_B[:, e * r:(e + 1) * r]
    return layer.base(x) + layer.scaling * (x @ a.T) @ b.T


def test_one_expert_alone_is_its_own_lora_update():
    layer, x = moe_layer(), torch.randn(2, 4, 8)
    for e in range(3):
        layer.expert = e
        assert torch.allclose(layer(x), expert_alone(layer, x, e), atol=1e-6)
    layer.expert = None
    assert not torch.allclose(layer(x), expert_alone(layer, x, 0), atol=1e-4)  # the mixture


def test_stochastic_routing_picks_one_expert_per_token_from_the_noise():
    layer, x = moe_layer(), torch.randn(2, 4, 8)
    noise = torch.zeros(2, 3)
    noise[0, 2] = noise[1, 0] = 1e4  # overwhelming noise: row 0 takes expert 2, row 1 expert 0
    layer.noise = noise
    out = layer(x)
    assert torch.allclose(out[0], expert_alone(layer, x, 2)[0], atol=1e-6)
    assert torch.allclose(out[1], expert_alone(layer, x, 0)[1], atol=1e-6)
    layer.noise = torch.zeros(2, 3)  # no noise: each token's most likely expert
    probs = torch.softmax(x @ layer.lora_router.T, -1)
    picks = probs.argmax(-1)
    by_hand = torch.stack([torch.stack([expert_alone(layer, x, int(picks[i, t]))[i, t] for t in range(4)])
                           for i in range(2)])
    assert torch.allclose(layer(x), by_hand, atol=1e-6)


def test_route_sets_and_clears_every_layer():
    from test_multilora import tiny_base

    model = MoELoRAModel(tiny_base(), MoELoRAConfig(num_experts=2, rank=2, alpha=4.0,
                                                      target_modules=["q_proj", "v_proj"]))
    layers = model.moe_layers()
    model.route(noise=torch.randn(3, len(layers), 2))
    assert all(m.noise.shape == (3, 2) for m in layers)
    model.route(expert=1)
    assert all(m.expert == 1 and m.noise is None for m in layers)
    model.route()
    assert all(m.expert is None and m.noise is None for m in layers)


def test_spec_augment_masks_time_and_frequency_and_is_seeded():
    features = torch.randn(16, 100)
    cfg = TTAConfig(time_masks=2, time_mask_ratio=0.2, freq_masks=2, freq_mask_ratio=0.25)
    out = spec_augment(features, torch.Generator().manual_seed(3), cfg)
    again = spec_augment(features, torch.Generator().manual_seed(3), cfg)
    assert torch.equal(out, again) and not torch.equal(out, features)
    frames, bins = [], []
    for seed in range(10):  # each mask's width is uniform in 0 .. ratio·size
        out = spec_augment(features, torch.Generator().manual_seed(seed), cfg)
        changed = out != features
        assert torch.all(out[changed] == features.mean())
        frames.append(changed.all(0).sum().item())  # whole columns: time masks
        bins.append(changed.all(1).sum().item())  # whole rows: frequency masks
    assert 0 < max(frames) <= 2 * 20 and 0 < max(bins) <= 2 * 4
    none = spec_augment(features, torch.Generator().manual_seed(3), TTAConfig(time_masks=0, freq_masks=0))
    assert torch.equal(none, features)


def test_image_augment_crops_flips_jitters_and_is_seeded():
    pixels = torch.randn(3, 16, 16)
    cfg = TTAConfig(crop_scale=0.5, flip_prob=1.0, jitter=0.3)
    out = image_augment(pixels, torch.Generator().manual_seed(1), cfg)
    assert out.shape == pixels.shape and not torch.allclose(out, pixels)
    assert torch.equal(out, image_augment(pixels, torch.Generator().manual_seed(1), cfg))
    identity = TTAConfig(crop_scale=1.0, flip_prob=0.0, jitter=0.0)
    kept = image_augment(pixels, torch.Generator().manual_seed(1), identity)
    assert torch.allclose(kept, pixels, atol=1e-5)
    flip_only = TTAConfig(crop_scale=1.0, flip_prob=1.0, jitter=0.0)
    assert torch.allclose(image_augment(pixels, torch.Generator().manual_seed(1), flip_only),
                          pixels.flip(-1), atol=1e-5)


def test_tta_keeps_the_input_first_and_augments_the_copies():
    from harness.task import Example
    from methods.tta import TTADecoding

    method = TTADecoding(TTAConfig(num_candidates=3))
    pixels = torch.randn(2, 3, 8, 8)
    examples = [Example(id="a", source=None, references=[]), Example(id="b", source=None, references=[])]
    rows = method.augmented({"pixel_values": pixels}, examples, seed=0, modality="image")["pixel_values"]
    assert rows.shape == (6, 3, 8, 8)
    assert torch.equal(rows[0], pixels[0]) and torch.equal(rows[3], pixels[1])
    assert not torch.allclose(rows[1], pixels[0]) and not torch.allclose(rows[2], rows[1])
    alone = method.augmented({"pixel_values": pixels[1:]}, examples[1:], seed=0, modality="image")
    assert torch.equal(alone["pixel_values"], rows[3:])  # seeded per input, not per batch


def candidates(out, task, method, seed=0):
    path = out / "cells" / task / method / f"seed{seed}" / "candidates.jsonl"
    return [json.loads(line)["candidates"] for line in path.read_text().splitlines()]


def run(out, cache, tiny_sets, methods, *extra):
    return main(["run", "--tasks", "markov", "--methods", methods, "--output", str(out),
                 "--cache-dir", str(cache), "--no-tracking", "--no-plots", *tiny_sets, *extra])


@pytest.mark.slow
def test_samplers_are_seeded_per_input_and_top_1_is_greedy(run_dirs, tiny_sets):
    out, cache = run_dirs
    assert run(out, cache, tiny_sets, "lora_mle,top_k,temperature", "--set", "top_k.num_candidates=3",
               "--set", "temperature.num_candidates=3", "--set", "temperature.temperature=1.5") == 0
    tempered = candidates(out, "markov", "temperature")
    assert len({c for cands in tempered for c in cands}) > len(tempered)  # samples differ
    again = out.parent / "again"
    assert run(again, out.parent / "cache2", tiny_sets, "temperature,top_k",
               "--set", "temperature.num_candidates=3", "--set", "temperature.temperature=1.5",
               "--set", "top_k.num_candidates=3", "--set", "method.decode_batch_size=3") == 0
    assert candidates(again, "markov", "temperature") == tempered
    assert candidates(again, "markov", "top_k") == candidates(out, "markov", "top_k")
    greedy = out.parent / "greedy"
    assert run(greedy, cache, tiny_sets, "top_k", "--set", "top_k.top_k=1",
               "--set", "top_k.num_candidates=2") == 0
    mle = [c[0] for c in candidates(out, "markov", "lora_mle")]
    assert [c for cands in candidates(greedy, "markov", "top_k") for c in set(cands)] == mle


@pytest.mark.slow
def test_new_baselines_run_in_a_grid_and_tta_skips_text(run_dirs, tiny_sets, caplog):
    out, cache = run_dirs
    code = main(["run", "--tasks", "markov,audio_captioning", "--methods",
                 "moe_lora,moe_experts,moe_stochastic,tta,top_k,temperature", "--output", str(out),
                 "--cache-dir", str(cache), "--no-tracking", "--no-plots",
                 *[a for s in ("task.num_test=4", "method.steps=4", "method.batch_size=8",
                               "method.num_experts=3", "moe_lora.num_candidates=3",
                               "moe_stochastic.num_candidates=3", "tta.num_candidates=3")
                   for a in ("--set", s)]])
    assert code == 0
    scores = pd.read_csv(out / "scores.csv")
    rows = set(zip(scores["task"], scores["method"], strict=True))
    assert ("audio_captioning", "tta") in rows and ("markov", "tta") not in rows
    assert "tta on markov" in caplog.text
    assert len(list((cache / "train").glob("*/MANIFEST.json"))) == 2 * 2  # MoE + MLE adapter per task
    for method in ("moe_experts", "moe_stochastic", "tta"):
        assert all(len(c) == 3 for c in candidates(out, "audio_captioning", method))


def test_a_text_only_grid_of_tta_is_a_one_line_error(run_dirs, capsys):
    out, cache = run_dirs
    assert main(["run", "--tasks", "translation", "--methods", "tta", "--output", str(out),
                 "--cache-dir", str(cache), "--no-tracking"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "nothing to run" in err and "image or audio" in err


def test_row_seeded_sampler_draws_from_the_warped_softmax():
    """argmax(warped scores + Gumbel noise) over many seeds has the frequencies of
    softmax(logits / τ) kept to its top-k / top-p, as transformers' multinomial sampling."""
    from methods.lora.sampling import RowSeededSampling

    logits = torch.tensor([[2.0, 1.0, 0.5, 0.0, -1.0]])
    draws = 4000
    for top_p, top_k, temperature, expected in [
        (1.0, 0, 1.0, torch.softmax(logits[0], -1)),
        (1.0, 2, 0.5, torch.tensor([torch.softmax(logits[0, :2] / 0.5, -1)[0],
                                    torch.softmax(logits[0, :2] / 0.5, -1)[1], 0, 0, 0])),
    ]:
        sampler = RowSeededSampling(list(range(draws)), top_p, top_k, temperature)
        picks = sampler(None, logits.expand(draws, -1)).argmax(-1)
        freq = torch.bincount(picks, minlength=5).double() / draws
        assert torch.allclose(freq, expected.double(), atol=0.025), (freq, expected)
    again = RowSeededSampling([7, 8], 0.9, 0, 1.0)(None, logits.expand(2, -1))
    assert torch.equal(again, RowSeededSampling([7, 8], 0.9, 0, 1.0)(None, logits.expand(2, -1)))
