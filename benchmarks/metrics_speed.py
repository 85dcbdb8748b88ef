"""Time every text metric on 5 000 inputs × 5 candidates × 5 references of real sentences.

Each metric alone (all three flavours), then ``scoring.score`` with every metric but SPICE
end to end, as ``mclbench score`` runs it (METEOR's JVM overlapping the Python metrics).

The sentences are Multi30k task 2 training captions (five English captions per image),
read from ``../shared/data/multi30k`` (or --data): for input i the candidates are the
captions of image i and the references those of image i + 1 (a hard, realistic case:
related but different scenes).

    python benchmarks/metrics_speed.py [--inputs 5000] [--data DIR]
"""

from __future__ import annotations

import argparse
import gzip
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from harness import scoring  # noqa: E402
from harness.metrics import coco  # noqa: E402
from harness.metrics import diversity as dv  # noqa: E402
from harness.metrics import text as tx  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--inputs", type=int, default=5000)
    p.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "multi30k"))
    args = p.parse_args()
    files = [Path(args.data) / "task2" / f"train.{k}.en.gz" for k in range(1, 6)]
    if not all(f.is_file() for f in files):
        sys.exit(f"Multi30k task 2 captions not found under {args.data}; pass --data")
    caps = [gzip.open(f, "rt").read().splitlines()[: args.inputs + 1] for f in files]
    images = list(zip(*caps, strict=True))
    cands = [list(images[i]) for i in range(args.inputs)]
    refs = [list(images[i + 1]) for i in range(args.inputs)]
    print(f"{args.inputs} inputs × 5 candidates × 5 references (Multi30k captions)\n")
    jobs = {
        "bleu (top1/mean/oracle)": lambda: tx.quality_flavours(cands, refs, ["bleu"]),
        "chrf (top1/mean/oracle)": lambda: tx.quality_flavours(cands, refs, ["chrf"]),
        "mbleu_4": lambda: dv.mbleu_4(cands),
        "pairwise_bleu": lambda: dv.pairwise_bleu(cands),
        "loo_bleu": lambda: dv.loo_bleu(cands, refs),
        "refs_covered": lambda: dv.refs_covered(cands, refs),
        "div_1, div_2": lambda: (dv.div_n(cands, 1), dv.div_n(cands, 2)),
        "vocab, unique": lambda: (dv.vocab(cands), dv.unique(cands)),
        "COCO: PTB tokenizer (JVM)": lambda: coco.ptb_tokenize([c for r in cands + refs for c in r]),
        "COCO: bleu_1..4 (+ PTB)": lambda: coco.coco_flavours(cands, refs, coco.COCO[:4]),
        "COCO: meteor (+ PTB)": lambda: coco.coco_flavours(cands, refs, ["meteor"]),
        "COCO: rouge_l (+ PTB)": lambda: coco.coco_flavours(cands, refs, ["rouge_l"]),
        "COCO: cider_d (+ PTB)": lambda: coco.coco_flavours(cands, refs, ["cider_d"]),
    }
    missing = coco.unavailable([m for m in coco.COCO if m not in coco.NEEDS_SPICE])
    if missing:
        sys.exit(f"COCO metrics cannot run here: {next(iter(missing.values()))}")
    total = 0.0
    for name, job in jobs.items():
        t = time.perf_counter()
        job()
        dt = time.perf_counter() - t
        total += dt
        print(f"{name:<28}{dt:8.2f} s")
    print(f"{'sum of the above':<28}{total:8.2f} s")
    every = [m for m in scoring.METRICS if m not in coco.NEEDS_SPICE]
    t = time.perf_counter()
    scoring.score([str(i) for i in range(len(cands))], cands, refs, every)
    elapsed = time.perf_counter() - t
    print(f"\n{'all but SPICE, end to end':<28}{elapsed:8.2f} s  (scoring.score, as mclbench score runs it)")


if __name__ == "__main__":
    main()
