"""LoRA-MCL speed and memory, side by side with the PEFT paths it replaces.

On one small decoder-only model (Llama-style config, ≈5 M parameters), batch B of T
tokens, for each K:

  train step (forward + backward + AdamW step)
    ours        MultiLoRAModel: the K hypotheses in one forward of K·B rows
    peft_loop   PEFT with K adapters, `set_adapter(k)` and one forward per hypothesis
                (the official LoRA-MCL code's standard path), WTA over the K losses
    floor       one PEFT LoRA on a K·B batch: the same FLOPs, no routing

  decoding K candidates per input (greedy per hypothesis, KV cache on)
    ours        one `generate` call over K·B rows
    peft_mixed  PEFT mixed-adapter batch: `generate(adapter_names=[...])` over K·B rows
    beam        HF beam search with K beams on one LoRA, K sequences returned
    no_lora     the bare base model generating the same K·B rows: the floor

Each measurement runs in its own process (so peak memory is its own), --repeats timed calls
after 3 warm-up calls; --rounds such processes per variant, the variants alternating round
by round, so that the drift of a shared machine hits them alike. Reported: min and median
wall time over all rounds' calls, and the peak resident memory (CPU) or peak allocated
memory (CUDA). Ratios are the other's median / ours (> 1: ours is faster).

    python benchmarks/lora_mcl_speed.py [--ks 2,4,8] [--batch 16] [--repeats 3] [--rounds 5]
                                        [--json ratios.json] [--device cpu] [--heap-only]

--heap-only runs every variant with glibc's mmap allocations off (MALLOC_MMAP_MAX_=0):
allocations above 32 MB otherwise get fresh pages from the kernel on every step, which on
CPU taxes the one big K·B batch (its 64 MB logits) but not the K small ones.
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

TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj"]
PROMPT_LEN = 16
WARMUP = 3  # untimed calls first: the first ones of a fresh process run several times slower here


def build_base(device: str):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=4096, hidden_size=256, intermediate_size=688,
                      num_hidden_layers=4, num_attention_heads=4, num_key_value_heads=4,
                      max_position_embeddings=128, bos_token_id=1, eos_token_id=2,
                      pad_token_id=0, tie_word_embeddings=True)
    return LlamaForCausalLM(cfg).to(device).eval()


def peft_model(base, k: int, rank: int, alpha: float):
    from peft import LoraConfig, get_peft_model

    cfg = LoraConfig(r=rank, lora_alpha=alpha, target_modules=TARGETS, lora_dropout=0.0,
                     init_lora_weights=True)
    model = get_peft_model(base, cfg, adapter_name="h0")
    for i in range(1, k):
        model.add_adapter(f"h{i}", cfg)
    return model


def per_sequence_nll(logits, ids):
    import torch.nn.functional as F

    logp = F.cross_entropy(logits[:, :-1].flatten(0, 1).float(), ids[:, 1:].flatten(),
                           reduction="none")
    return logp.view(ids.shape[0], -1).mean(-1)


def make_step(variant: str, k: int, batch: int, seq: int, rank: int, device: str):
    """A zero-argument callable doing one unit of work, built once."""
    import torch

    from methods.lora.fast import FastMultiLoRAModel
    from methods.lora.model import MultiLoRAConfig
    from methods.lora_mcl import wta_loss

    g = torch.Generator().manual_seed(1)
    ids = torch.randint(3, 4096, (batch, seq), generator=g).to(device)
    prompt = ids[:, :PROMPT_LEN]
    base = build_base(device)
    gen = dict(max_new_tokens=seq - PROMPT_LEN, min_new_tokens=seq - PROMPT_LEN,
               do_sample=False, pad_token_id=0)

    def optimizer_step(model, loss_fn):
        """One unit of training work: loss, backward, AdamW step on the LoRA weights."""
        params = [p for n, p in model.named_parameters() if "lora_" in n]
        for p in params:
            p.requires_grad_(True)
        opt = torch.optim.AdamW(params, lr=1e-4)

        def step():
            loss = loss_fn()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        return step

    if variant in ("train_ours", "decode_ours"):
        model = FastMultiLoRAModel(base, MultiLoRAConfig(k, rank, 2.0 * rank, 0.0, TARGETS)).to(device)
        if variant == "decode_ours":
            model.eval()
            return lambda: model.generate_hypotheses({"input_ids": prompt}, **gen)
        batch_dict = {"input_ids": ids, "labels": ids}
        return optimizer_step(model, lambda: wta_loss(model.sequence_nll(batch_dict)))

    if variant == "train_peft_loop":
        model = peft_model(base, k, rank, 2.0 * rank)

        def looped_wta():
            nlls = []
            for i in range(k):
                model.set_adapter(f"h{i}")
                nlls.append(per_sequence_nll(model(input_ids=ids).logits, ids))
            return wta_loss(torch.stack(nlls))
        return optimizer_step(model, looped_wta)

    if variant == "train_floor":
        model = peft_model(base, 1, rank, 2.0 * rank)
        big = ids.repeat(k, 1)
        return optimizer_step(model, lambda: per_sequence_nll(model(input_ids=big).logits, big).mean())

    if variant == "decode_peft_mixed":
        model = peft_model(base, k, rank, 2.0 * rank).eval()  # adapter_names needs eval mode
        for n, p in model.named_parameters():  # B = 0 would make every adapter the base
            if "lora_B" in n:
                p.data.normal_(0, 0.01)
        names = [f"h{i}" for i in range(k) for _ in range(batch)]
        rows = prompt.repeat(k, 1)
        return lambda: model.generate(input_ids=rows, adapter_names=names, **gen)

    if variant == "decode_no_lora":
        rows = prompt.repeat(k, 1)
        return lambda: base.generate(input_ids=rows, **gen)

    if variant == "decode_beam":
        model = peft_model(base, 1, rank, 2.0 * rank).eval()
        return lambda: model.generate(input_ids=prompt, num_beams=k, num_return_sequences=k,
                                      **gen)
    raise ValueError(variant)


def measure_one(args) -> dict:
    """Run in a child process: time one variant, report its own peak memory."""
    import torch

    torch.set_num_threads(args.threads) if args.threads else None
    step = make_step(args.variant, args.k, args.batch, args.seq, args.rank, args.device)
    sync = torch.cuda.synchronize if args.device.startswith("cuda") else (lambda: None)
    grad = torch.enable_grad() if args.variant.startswith("train") else torch.no_grad()
    with grad:
        for _ in range(WARMUP):
            step()
        sync()
        if args.device.startswith("cuda"):
            torch.cuda.reset_peak_memory_stats()
        times = []
        for _ in range(args.repeats):
            t = time.perf_counter()
            step()
            sync()
            times.append(time.perf_counter() - t)
    if args.device.startswith("cuda"):
        peak = torch.cuda.max_memory_allocated() / 2**20
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB -> MiB
    return {"times": times, "peak_mib": peak}


def run_child(variant: str, k: int, args) -> dict:
    cmd = [sys.executable, __file__, "--_child", variant, "--k", str(k), "--batch",
           str(args.batch), "--seq", str(args.seq), "--rank", str(args.rank), "--repeats",
           str(args.repeats), "--device", args.device, "--threads", str(args.threads)]
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    if args.heap_only:
        env.update(MALLOC_MMAP_MAX_="0", MALLOC_TRIM_THRESHOLD_=str(2**36))
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env)
    if out.returncode != 0:
        raise RuntimeError(f"{variant} K={k} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


GROUPS = {"train": ["ours", "peft_loop", "floor"],
          "decode": ["ours", "peft_mixed", "beam", "no_lora"]}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--ks", default="2,4,8")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--seq", type=int, default=64, help=f"tokens per sequence (> {PROMPT_LEN}, the prompt)")
    p.add_argument("--rank", type=int, default=8)
    p.add_argument("--repeats", type=int, default=3, help="timed calls per child process")
    p.add_argument("--rounds", type=int, default=5,
                   help="child processes per variant, the variants alternating (default 5)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    p.add_argument("--json", help="write the K = 4 ratios here")
    p.add_argument("--heap-only", action="store_true",
                   help="glibc: serve large allocations from the heap (MALLOC_MMAP_MAX_=0)")
    p.add_argument("--_child", dest="variant", help=argparse.SUPPRESS)
    p.add_argument("--k", type=int, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.seq <= PROMPT_LEN:
        p.error(f"--seq must exceed the {PROMPT_LEN}-token prompt that decoding continues")
    if args.variant:
        print(json.dumps(measure_one(args)))
        return

    import torch

    base = build_base("cpu")
    n_params = sum(p.numel() for p in base.parameters())
    print(f"model: Llama-style, {n_params / 1e6:.1f} M parameters; batch {args.batch} x "
          f"{args.seq} tokens (decode: {PROMPT_LEN}-token prompt + {args.seq - PROMPT_LEN} "
          f"new); LoRA rank {args.rank} on {', '.join(TARGETS)}; device {args.device}; "
          f"torch {torch.__version__}; {args.rounds} rounds x {args.repeats} repeats after {WARMUP} "
          f"warm-up calls; allocator: "
          f"{'heap only (MALLOC_MMAP_MAX_=0)' if args.heap_only else 'glibc default'}\n")
    header = f"{'work':<7}{'K':>3}  {'variant':<11}{'min s':>9}{'median s':>10}{'peak MiB':>10}{'ratio':>8}"
    print(header)
    print("-" * len(header))
    ratios = {}
    for k in [int(x) for x in args.ks.split(",")]:
        for work, variants in GROUPS.items():
            # rounds of one child per variant, alternating: drift of the (shared) machine
            # then hits every variant alike instead of whichever ran during it
            rounds = [{v: run_child(f"{work}_{v}", k, args) for v in variants} for _ in range(args.rounds)]
            res = {v: {"min": min(t := [x for r in rounds for x in r[v]["times"]]),
                       "median": statistics.median(t),
                       "peak_mib": max(r[v]["peak_mib"] for r in rounds)} for v in variants}
            ours = res["ours"]["median"]
            for v in variants:
                r = res[v]
                ratio = r["median"] / ours
                ratios[(work, k, v)] = ratio
                print(f"{work:<7}{k:>3}  {v:<11}{r['min']:>9.4f}{r['median']:>10.4f}"
                      f"{r['peak_mib']:>10.0f}{ratio:>8.2f}")
            sys.stdout.flush()
    print("\nratio = that variant's median time / ours (> 1: ours is faster)")
    if args.json and all((w, 4, v) in ratios for w, vs in GROUPS.items() for v in vs):
        out = {"train_vs_peft_loop": ratios["train", 4, "peft_loop"],
               "decode_vs_no_lora": ratios["decode", 4, "no_lora"],
               "train_vs_floor": ratios["train", 4, "floor"],
               "decode_vs_peft_mixed": ratios["decode", 4, "peft_mixed"],
               "decode_vs_beam": ratios["decode", 4, "beam"]}
        Path(args.json).write_text(json.dumps(out, indent=2) + "\n")
        print(f"K = 4 ratios written to {args.json}: {out}")


if __name__ == "__main__":
    main()
