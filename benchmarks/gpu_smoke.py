"""A short LoRA-MCL cell per task in bfloat16 on an accelerator: does the GPU path work here?

Prints the device's facts (name, compute capability, memory, bf16 support, torch and CUDA
versions), then runs ``mclbench run`` once per task of the default suite with LoRA-MCL
(``--steps`` train steps, ``--num-test`` test inputs, the task's base in bfloat16 where it
has a ``dtype``) on ``--device``, and reports each cell's wall time, peak device memory and
one score. Everything goes to a temporary cache and output folder.

    python benchmarks/gpu_smoke.py [--device cuda] [--steps 20] [--num-test 8] [--json FILE]

``--device cpu`` runs the same on the CPU (to try the script where no GPU is lent).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TASKS = {  # task -> the score reported for it
    "markov": "oracle_nll",
    "translation": "max/bleu",
    "tatoeba_en_de": "max/bleu",
    "image_captioning": "max/cider_d",
    "photo_captioning": "max/cider_d",
    "audio_captioning": "max/cider_d",
}


def device_facts(device: str) -> dict:
    facts = {"torch": torch.__version__, "device": device}
    if device.startswith("cuda"):
        index = torch.device(device).index or 0
        props = torch.cuda.get_device_properties(index)
        facts.update(name=props.name, capability=f"{props.major}.{props.minor}",
                     memory_gib=round(props.total_memory / 2**30, 1), cuda=torch.version.cuda,
                     bf16=torch.cuda.is_bf16_supported(), devices=torch.cuda.device_count())
    else:
        facts.update(name="cpu", threads=torch.get_num_threads())
    return facts


def run_cell(task: str, args, work: Path) -> dict:
    from harness.cli import main
    from harness.registry import get_task

    sets = [f"method.steps={args.steps}", "method.batch_size=8", f"task.num_test={args.num_test}"]
    if "dtype" in get_task(task).Config.__dataclass_fields__:
        sets.append("task.dtype=bfloat16")
    out = work / task
    if args.device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    code = main(["run", "--tasks", task, "--methods", "lora_mcl", "--device", args.device,
                 "--output", str(out), "--cache-dir", str(work / "cache"), "--no-tracking",
                 "--no-plots", *[a for s in sets for a in ("--set", s)]])
    wall = time.perf_counter() - start
    row = {"task": task, "exit": code, "wall_s": round(wall, 1)}
    if args.device.startswith("cuda"):
        row["peak_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 3)
    if code == 0:
        import pandas as pd

        scores = pd.read_csv(out / "scores.csv").set_index("metric")["value"]
        row[TASKS[task]] = float(scores.get(TASKS[task], float("nan")))
    return row


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cuda")
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--num-test", type=int, default=8)
    p.add_argument("--tasks", default=",".join(TASKS))
    p.add_argument("--json", help="write the device facts and the rows here")
    args = p.parse_args()
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        sys.exit("gpu_smoke: torch sees no CUDA device here; run where one is, or pass --device cpu")
    facts = device_facts(args.device)
    print("device:", json.dumps(facts))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for task in args.tasks.split(","):
            rows.append(run_cell(task, args, Path(tmp)))
            print(json.dumps(rows[-1]), flush=True)
    failed = [r["task"] for r in rows if r["exit"] != 0]
    print(f"\n{len(rows) - len(failed)}/{len(rows)} tasks ran on {facts['name']}"
          + (f"; failed: {', '.join(failed)}" if failed else ""))
    if args.json:
        Path(args.json).write_text(json.dumps({"device": facts, "rows": rows}, indent=2) + "\n")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
