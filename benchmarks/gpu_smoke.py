"""A short LoRA-MCL cell per task in bfloat16 on an accelerator: does the GPU path work here?

Prints the device's facts (name, compute capability, memory, bf16 support, torch and CUDA
versions), then runs ``mclbench run`` once per task of the default suite with LoRA-MCL
(``--steps`` train steps, ``--num-test`` test inputs, the task's base in bfloat16 where it
has a ``dtype``) on ``--device``, and reports each cell's wall time, peak device memory and
one score. With ``--paper`` it then runs the paper's three configurations
(``configs/paper/*.yaml``, bf16) on tiny random models of their classes
(``tests/paper_models.py``: LlamaForCausalLM, Qwen2Audio, Llava), and ALMA's again with the
base quantised (``--quant 4bit,8bit``: bitsandbytes NF4 / LLM.int8()). Everything goes to a
temporary cache and output folder.

    python benchmarks/gpu_smoke.py [--device cuda] [--steps 20] [--num-test 8] [--paper]
                                   [--quant 4bit,8bit] [--json FILE]

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


PAPER = {  # paper config -> builder of a tiny model of its class (tests/paper_models.py)
    "translation_alma": "alma",
    "audio_qwen2": "qwen2_audio",
    "image_llava": "llava",
}


def run_cell(name: str, spec: list[str], score: str, args, work: Path) -> dict:
    """``mclbench run`` with ``spec`` (its task/config arguments) on ``--device``: exit code,
    wall time, peak device memory, ``oracle_nll`` and ``score`` (n/a where a metric cannot run
    there, e.g. the COCO metrics without Java)."""
    from harness.cli import main

    out = work / name.replace("/", "_")
    if args.device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    code = main(["run", *spec, "--device", args.device, "--output", str(out),
                 "--cache-dir", str(work / "cache"), "--no-tracking", "--no-plots"])
    wall = time.perf_counter() - start
    row = {"cell": name, "exit": code, "wall_s": round(wall, 1)}
    if args.device.startswith("cuda"):
        row["peak_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 3)
    if code == 0:
        import pandas as pd

        scores = pd.read_csv(out / "scores.csv").set_index("metric")["value"]
        for metric in dict.fromkeys(["oracle_nll", score]):
            row[metric] = round(float(scores.get(metric, float("nan"))), 4)
    return row


def sets(*assignments: str) -> list[str]:
    return [a for s in assignments for a in ("--set", s)]


def suite_cells(args):
    """One LoRA-MCL cell per task of the default suite, the base in bf16 where it has a dtype."""
    from harness.registry import get_task

    for task in args.tasks.split(","):
        extra = ["task.dtype=bfloat16"] if "dtype" in get_task(task).Config.__dataclass_fields__ else []
        yield task, ["--tasks", task, "--methods", "lora_mcl",
                     *sets(f"method.steps={args.steps}", "method.batch_size=8",
                           f"task.num_test={args.num_test}", *extra)], TASKS[task]


def paper_cells(args, work: Path):
    """The paper's configurations on tiny models of their classes; ALMA's also quantised."""
    from tests import paper_models

    for config, builder in PAPER.items():
        backbone = getattr(paper_models, builder)(work / "models" / config)
        spec = ["--config", str(ROOT / "configs/paper" / f"{config}.yaml"),
                *sets(f"task.backbone={backbone}", "task.num_train=16", f"task.num_test={args.num_test}",
                      "task.max_new_tokens=8", f"method.steps={args.steps}", "method.batch_size=4")]
        yield f"paper/{config}", spec, "oracle_nll"
        if config == "translation_alma":
            for bits in filter(None, args.quant.split(",")):
                yield f"paper/{config}[{bits}]", [*spec, *sets(f"task.load_in_{bits}=true")], "oracle_nll"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cuda")
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--num-test", type=int, default=8)
    p.add_argument("--tasks", default=",".join(TASKS), help="default-suite tasks ('' for none)")
    p.add_argument("--paper", action="store_true", help="also the paper's configs on tiny models")
    p.add_argument("--quant", default="", help="with --paper: ALMA's also with 4bit and/or 8bit")
    p.add_argument("--json", help="write the device facts and the rows here")
    args = p.parse_args()
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        sys.exit("gpu_smoke: torch sees no CUDA device here; run where one is, or pass --device cpu")
    facts = device_facts(args.device)
    print("device:", json.dumps(facts))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        cells = list(suite_cells(args)) if args.tasks else []
        for name, spec, score in [*cells, *(paper_cells(args, work) if args.paper else [])]:
            rows.append(run_cell(name, spec, score, args, work))
            print(json.dumps(rows[-1]), flush=True)
    failed = [r["cell"] for r in rows if r["exit"] != 0]
    print(f"\n{len(rows) - len(failed)}/{len(rows)} cells ran on {facts['name']}"
          + (f"; failed: {', '.join(failed)}" if failed else ""))
    if args.json:
        Path(args.json).write_text(json.dumps({"device": facts, "rows": rows}, indent=2) + "\n")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
