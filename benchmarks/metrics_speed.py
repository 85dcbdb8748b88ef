"""Time every registered text metric on 5 000 inputs × 5 candidates × 5 references of real sentences.

Each metric module of the registry (:mod:`harness.metrics.registry`) alone (every metric it
registers, every reduction), then ``scoring.score`` with every text metric end to end, as
``mclbench score`` runs it (METEOR's JVM overlapping the Python metrics). Metrics that need
mode labels or run a model (SBERT) are timed apart and left out of the end-to-end figure, as
are those that cannot run here (SPICE without its CoreNLP jars).

The sentences are Multi30k task 2 training captions (five English captions per image),
read from ``../shared/data/multi30k`` (or --data): for input i the candidates are the
captions of image i and the references those of image i + 1 (a hard, realistic case:
related but different scenes).

    python benchmarks/metrics_speed.py [--inputs 5000] [--data DIR] [--repeats 3] [--json FILE]

``--json FILE`` writes ``{"end_to_end_s": min over repeats, "end_to_end_runs_s": [...],
"families_s": {module: seconds}, "apart_s": {module: seconds or None}, "end_to_end_metrics": [...],
"unavailable": {metric: reason}, "inputs": n}``.
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
from harness.metrics import registry  # noqa: E402


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
    ids = [str(i) for i in range(len(cands))]
    metrics = registry.load().values()
    apart = [m for m in metrics if m.kind == "probe" or "modes" in m.needs or m.tokenisation == "the model's"]
    text = [m for m in metrics if m not in apart]
    probe = registry.ScoreInputs(cands[:2], refs[:2])
    unavailable = registry.evaluate([m.name for m in text], probe).unavailable
    every = [m.name for m in text if m.name not in unavailable]
    families = {}
    for module in dict.fromkeys(m.module for m in text):
        names = [m.name for m in text if m.module == module and m.name in every]
        t = time.perf_counter()
        scoring.score(ids, cands, refs, names)
        families[module] = round(time.perf_counter() - t, 3)
        print(f"{module:<30}{families[module]:8.2f} s  ({', '.join(names)})")
    print(f"{'sum of the above':<30}{sum(families.values()):8.2f} s")
    labels = [[f"m{j}" for j in range(len(r))] for r in refs]
    apart_s = {}
    for module in dict.fromkeys(m.module for m in apart if m.kind != "probe"):  # probes: nothing to time
        names = [m.name for m in apart if m.module == module]
        t = time.perf_counter()
        _, missing = scoring.score(ids, cands, refs, names, reference_modes=labels)
        apart_s[module] = None if missing else round(time.perf_counter() - t, 3)
        shown = "     n/a" if missing else f"{apart_s[module]:8.2f} s"
        print(f"{module:<30}{shown}  ({', '.join(names)}; apart)")
    for name, reason in unavailable.items():
        print(f"{name:<30}     n/a  ({reason[:60]})")
    runs = []
    for _ in range(args.repeats):
        t = time.perf_counter()
        scoring.score(ids, cands, refs, every)
        runs.append(round(time.perf_counter() - t, 3))
    print(f"\n{'every text metric':<30}{min(runs):8.2f} s  min of {runs} (scoring.score, end to end)")
    if args.json:
        Path(args.json).write_text(json.dumps({
            "end_to_end_s": min(runs), "end_to_end_runs_s": runs, "families_s": families, "apart_s": apart_s,
            "end_to_end_metrics": every, "unavailable": unavailable, "inputs": args.inputs}, indent=2) + "\n")


if __name__ == "__main__":
    main()
