"""LoRA-MCL on Gemma 3 270M (262 k vocabulary): train step and decoding against their floors.

On real rows of ``tatoeba_en_de`` (the ALMA prompt, every target a German reference), K
hypotheses, batch B:

  train step (forward + backward + AdamW step)
    ours        FastMultiLoRAModel, K hypotheses of rank r in one forward of K·B rows, the NLL
                through the head at the target positions only (head_nll), relaxed WTA
    ours_bf16   the same under bf16 autocast (adapters and optimizer state in fp32)
    floor       the bare model on the same K·B rows: forward, logits at the target positions
                only, backward through every layer (the input embeddings take the gradient),
                no adapters, no optimizer

  decoding (greedy, KV cache on, a fixed number of new tokens)
    ours        one ``generate`` over K·B rows, each row with its hypothesis's adapter
    floor       the bare model's ``generate`` on the same K·B rows

Each variant runs in its own process (its own peak memory), --repeats timed calls after one
warm-up; --rounds such processes per variant, alternating. Reported: min and median, peak RSS;
ratio = variant median / floor median (< 1.3 for the train step and < 1.1 for decoding are
the goals). Also the mean |NLL(bf16) - NLL(fp32)| of the same batch (zero-initialised B: the
base's NLL).

    python benchmarks/pretrained_speed.py [--base gemma-3-270m] [--k 3] [--batch 8] [--rank 16]
                                          [--rounds 2] [--repeats 2] [--json FILE]
    python benchmarks/pretrained_speed.py --random-init   # Gemma 3 270M's config, random weights
    python benchmarks/pretrained_speed.py --no-bf16       # a CPU without native bf16 (AVX2 only)

--random-init needs no packages (the config is written here), for a machine without the
weights (or an accelerator check); --tiny shrinks it for the smoke test.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
NEW_TOKENS = 24
GEMMA_270M = dict(vocab_size=262144, hidden_size=640, intermediate_size=2048, num_hidden_layers=18,
                  num_attention_heads=4, num_key_value_heads=1, head_dim=256, sliding_window=512,
                  max_position_embeddings=32768, rope_theta=1e6, query_pre_attn_scalar=256,
                  bos_token_id=2, eos_token_id=1, pad_token_id=0)
TINY = dict(GEMMA_270M, vocab_size=4096, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
            head_dim=16, query_pre_attn_scalar=16)


def rows(args):
    """(base model, training batch of B rows, prompt batch of B rows) on the chosen base."""
    import torch

    if args.random_init:
        from transformers import Gemma3ForCausalLM, Gemma3TextConfig

        torch.manual_seed(0)
        model = Gemma3ForCausalLM(Gemma3TextConfig(**(TINY if args.tiny else GEMMA_270M))).eval()
        g = torch.Generator().manual_seed(1)
        vocab = model.config.vocab_size
        prompt = torch.randint(3, vocab, (args.batch, 24), generator=g)
        target = torch.randint(3, vocab, (args.batch, 14), generator=g)
        ids = torch.cat([prompt, target], 1)
        labels = torch.cat([torch.full_like(prompt, -100), target], 1)
        train = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": labels}
        return model, train, {"input_ids": prompt, "attention_mask": torch.ones_like(prompt)}
    from harness.registry import get_task

    cls = get_task("tatoeba_en_de")
    task = cls(cls.Config(backbone=args.base, num_train=64, num_test=args.batch))
    model = task.load_backbone(task.source)
    train = task.training_set().batch(torch.arange(args.batch))
    return model, train, task.prompt_batch(task.test_examples()[: args.batch])


def make_step(args):
    import torch
    import torch.nn.functional as F

    from methods.lora.fast import FastMultiLoRAModel
    from methods.lora.model import MultiLoRAConfig
    from methods.lora_mcl import relaxed_wta_loss

    base, train, prompt = rows(args)
    for p in base.parameters():
        p.requires_grad_(False)
    k, pad = args.k, base.config.pad_token_id
    gen = dict(max_new_tokens=NEW_TOKENS, min_new_tokens=NEW_TOKENS, do_sample=False, pad_token_id=pad)
    big = {n: v.repeat(k, 1) for n, v in train.items()}
    big_prompt = {n: v.repeat(k, 1) for n, v in prompt.items()}
    work = args.variant.split("_", 1)[1]

    if args.variant.startswith("train_ours"):
        model = FastMultiLoRAModel(base, MultiLoRAConfig(k, args.rank, 2.0 * args.rank, 0.0, TARGETS))
        model.train()
        params = [p for p in model.parameters() if p.requires_grad]
        opt = torch.optim.AdamW(params, lr=1e-4)
        autocast = torch.autocast("cpu", dtype=torch.bfloat16, enabled=work == "ours_bf16")

        def step():
            with autocast:
                loss = relaxed_wta_loss(model.sequence_nll(train), 0.05)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        return step

    if args.variant == "train_floor":
        embed = base.get_input_embeddings()
        head = base.get_output_embeddings()
        targets = big["labels"][:, 1:]
        counted = targets != -100

        def step():
            inputs = embed(big["input_ids"]).detach().requires_grad_(True)
            hidden = base.model(inputs_embeds=inputs, attention_mask=big["attention_mask"]).last_hidden_state
            logits = head(hidden[:, :-1][counted])
            F.cross_entropy(logits.float(), targets[counted]).backward()
        return step

    if args.variant == "decode_ours":
        model = FastMultiLoRAModel(base, MultiLoRAConfig(k, args.rank, 2.0 * args.rank, 0.0, TARGETS)).eval()
        for n, p in model.named_parameters():  # B = 0 would decode the base K times
            if "lora_B" in n:
                p.data.normal_(0, 0.01)
        return lambda: model.generate_hypotheses(prompt, **gen)

    if args.variant == "decode_floor":
        return lambda: base.generate(**big_prompt, **gen)

    if args.variant == "nll_bf16":
        model = FastMultiLoRAModel(base, MultiLoRAConfig(k, args.rank, 2.0 * args.rank, 0.0, TARGETS)).eval()

        def step():
            with torch.no_grad():
                fp32 = model.sequence_nll(train)
                with torch.autocast("cpu", dtype=torch.bfloat16):
                    bf16 = model.sequence_nll(train)
            return {"nll_fp32": fp32.mean().item(), "nll_bf16_abs_diff": (bf16 - fp32).abs().mean().item()}
        return step
    raise ValueError(args.variant)


def measure_one(args) -> dict:
    import torch

    step = make_step(args)
    if args.variant == "nll_bf16":
        return step()
    grad = torch.enable_grad() if args.variant.startswith("train") else torch.no_grad()
    times = []
    with grad:
        step()  # warm-up
        for _ in range(args.repeats):
            t = time.perf_counter()
            step()
            times.append(time.perf_counter() - t)
    return {"times": times, "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def run_child(variant: str, args) -> dict:
    flags = ["--base", args.base, "--k", str(args.k), "--batch", str(args.batch), "--rank", str(args.rank),
             "--repeats", str(args.repeats)] + ["--random-init"] * args.random_init + ["--tiny"] * args.tiny
    out = subprocess.run([sys.executable, __file__, "--_child", variant, *flags], capture_output=True,
                         text=True, cwd=ROOT, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    if out.returncode != 0:
        raise RuntimeError(f"{variant} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def groups(args) -> dict[str, list[str]]:
    train = ["ours", "floor"] if args.no_bf16 else ["ours", "ours_bf16", "floor"]
    return {"train": train, "decode": ["ours", "floor"]}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--base", default="gemma-3-270m", help="a packaged base or checkpoint folder")
    p.add_argument("--random-init", action="store_true", help="Gemma 3 270M's config, random weights")
    p.add_argument("--tiny", action="store_true", help="with --random-init: a tiny config (smoke test)")
    p.add_argument("--k", type=int, default=3)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--rank", type=int, default=16)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--no-bf16", action="store_true",
                   help="skip bf16 autocast (emulated on a CPU without bf16 instructions: minutes a step)")
    p.add_argument("--json", help="write the ratios and timings here")
    p.add_argument("--_child", dest="variant", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.variant:
        print(json.dumps(measure_one(args)))
        return
    import torch

    base = args.base
    if args.random_init:
        base = "random-init Gemma 3 270M config" + (" (tiny)" if args.tiny else "")
    print(f"base: {base}; K {args.k}, batch {args.batch} (K·B = {args.k * args.batch} rows), LoRA r "
          f"{args.rank} on {', '.join(TARGETS)}; decode {NEW_TOKENS} new tokens; torch {torch.__version__} "
          f"({torch.backends.cpu.get_cpu_capability()}), "
          f"{torch.get_num_threads()} threads; {args.rounds} rounds x {args.repeats} repeats\n")
    res: dict[str, dict] = {}
    for work, variants in groups(args).items():
        rounds = [{v: run_child(f"{work}_{v}", args) for v in variants} for _ in range(args.rounds)]
        for v in variants:
            t = [x for r in rounds for x in r[v]["times"]]
            res[f"{work}_{v}"] = {"min_s": min(t), "median_s": statistics.median(t),
                                  "peak_mib": max(r[v]["peak_mib"] for r in rounds)}
    out = {"base": base, "k": args.k, "batch": args.batch, "rank": args.rank, "timings": res,
           "train_vs_floor": res["train_ours"]["median_s"] / res["train_floor"]["median_s"],
           "decode_vs_floor": res["decode_ours"]["median_s"] / res["decode_floor"]["median_s"],
           "cpu_capability": torch.backends.cpu.get_cpu_capability()}
    if not args.no_bf16:
        out |= {"train_bf16_vs_floor": res["train_ours_bf16"]["median_s"] / res["train_floor"]["median_s"],
                **run_child("nll_bf16", args)}
    print(f"{'variant':<18}{'min s':>9}{'median s':>10}{'peak MiB':>10}")
    for name, r in res.items():
        print(f"{name:<18}{r['min_s']:>9.3f}{r['median_s']:>10.3f}{r['peak_mib']:>10.0f}")
    bf16 = "" if args.no_bf16 else (
        f" (bf16 autocast {out['train_bf16_vs_floor']:.2f}; NLL fp32 {out['nll_fp32']:.4f}, "
        f"|bf16 - fp32| {out['nll_bf16_abs_diff']:.4f})")
    print(f"\ntrain step / floor {out['train_vs_floor']:.2f}{bf16}; "
          f"decode / floor {out['decode_vs_floor']:.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
