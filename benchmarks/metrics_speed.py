"""Time every text metric on 5 000 inputs × 5 candidates × 5 references of real sentences.

Each metric alone (all three flavours), then ``scoring.score`` with every metric but SPICE
end to end, as ``mclbench score`` runs it (METEOR's JVM overlapping the Python metrics).

The sentences are Multi30k task 2 training captions (five English captions per image),
read from ``../shared/data/multi30k`` (or --data): for input i the candidates are the
captions of image i and the references those of image i + 1 (a hard, realistic case:
related but different scenes).

    python benchmarks/metrics_speed.py [--inputs 5000] [--data DIR] [--repeats 3] [--json FILE]

``--json FILE`` writes ``{"end_to_end_s": min over repeats, "end_to_end_runs_s": [...],
"families_s": {family: seconds}}``; model-based metrics (SBERT) are left out of the end to
end figure, as is SPICE.
"""

from __future__ import annotations

import argparse
import gzip
import json
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
    p.add_argument("--repeats", type=int, default=3, help="end-to-end runs; the minimum is reported")
    p.add_argument("--json", help="also write the figures to this JSON file")
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
        "bleu (top1/mean/oracle/max)": lambda: tx.quality_flavours(cands, refs, ["bleu"]),
        "chrf (top1/mean/oracle/max)": lambda: tx.quality_flavours(cands, refs, ["chrf"]),
        "mbleu_4": lambda: dv.mbleu_4(cands),
        "pairwise_bleu": lambda: dv.pairwise_bleu(cands),
        "loo_bleu": lambda: dv.loo_bleu(cands, refs),
        "refs_covered": lambda: dv.refs_covered(cands, refs),
        "refs_covered_fairseq": lambda: dv.refs_covered_fairseq(cands, refs),
        "div_1, div_2": lambda: (dv.div_n(cands, 1), dv.div_n(cands, 2)),
        "vocab, unique": lambda: (dv.vocab(cands), dv.unique(cands)),
        "COCO: PTB tokenizer (JVM)": lambda: coco.ptb_tokenize([c for r in cands + refs for c in r]),
        "COCO: bleu_1..4 (+ PTB)": lambda: coco.coco_flavours(cands, refs, coco.COCO[:4]),
        "COCO: meteor (+ PTB)": lambda: coco.coco_flavours(cands, refs, ["meteor"]),
        "COCO: rouge_l (+ PTB)": lambda: coco.coco_flavours(cands, refs, ["rouge_l"]),
        "COCO: cider_d (+ PTB)": lambda: coco.coco_flavours(cands, refs, ["cider_d"]),
        "PTB diversity (+ PTB)": lambda: coco.ptb_diversity(cands),
    }
    missing = coco.unavailable([m for m in coco.COCO if m not in coco.NEEDS_SPICE])
    if missing:
        sys.exit(f"COCO metrics cannot run here: {next(iter(missing.values()))}")
    families = {}
    for name, job in jobs.items():
        t = time.perf_counter()
        job()
        families[name] = round(time.perf_counter() - t, 3)
        print(f"{name:<30}{families[name]:8.2f} s")
    print(f"{'sum of the above':<30}{sum(families.values()):8.2f} s")
    every = [m for m in scoring.METRICS if m not in coco.NEEDS_SPICE and not m.startswith("sbert")]
    runs = []
    for _ in range(args.repeats):
        t = time.perf_counter()
        scoring.score([str(i) for i in range(len(cands))], cands, refs, every)
        runs.append(round(time.perf_counter() - t, 3))
    print(f"\n{'all but SPICE and SBERT':<30}{min(runs):8.2f} s  min of {runs} (scoring.score, end to end)")
    if args.json:
        Path(args.json).write_text(json.dumps({"end_to_end_s": min(runs), "end_to_end_runs_s": runs,
                                               "families_s": families, "inputs": args.inputs}, indent=2))


if __name__ == "__main__":
    main()
