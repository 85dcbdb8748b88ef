"""``mclbench``: list plugins, run a benchmark grid, print its tables."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from harness import registry
from harness.config import ConfigError, coerce, load_spec, parse_assignment
from harness.errors import MCLBenchError


def _csv(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


def cmd_list(args) -> int:
    for kind in ("task", "method"):
        print(f"{kind}s:")
        for name, cls in registry.available(kind).items():
            print(f"  {name:<14} {registry.describe(cls)}")
            if args.params:
                for f in dataclasses.fields(cls.Config):
                    default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
                    print(f"      {f.name} = {default!r}")
    return 0


def cmd_run(args) -> int:
    from harness.runner import Runner, plugin_has_key

    spec = load_spec(args.config)
    if args.tasks:
        spec.tasks = {n: spec.tasks.get(n, {}) for n in _csv(args.tasks)}
    if args.methods:
        spec.methods = {n: spec.methods.get(n, {}) for n in _csv(args.methods)}
    if args.seeds:
        try:
            spec.seeds = coerce([int(s) for s in _csv(args.seeds)], list[int], "--seeds")
        except ValueError:
            raise ConfigError(f"--seeds {args.seeds!r}: expected integers, e.g. 0,1,2") from None
    if args.output:
        spec.output = args.output
    if args.cache_dir:
        spec.cache_dir = args.cache_dir
    if args.processes is not None:
        if args.processes < 1:
            raise ConfigError("--processes must be >= 1")
        spec.processes = args.processes
    if args.accelerate_config:
        if not Path(args.accelerate_config).is_file():
            raise ConfigError(f"--accelerate-config {args.accelerate_config!r} does not exist")
        spec.accelerate_config = str(Path(args.accelerate_config).resolve())
    if args.best_of_n is not None:
        if args.best_of_n < 0:
            raise ConfigError("--best-of-n must be >= 0 (0: no best-of-N curves)")
        spec.best_of_n = args.best_of_n
    for name in spec.tasks:
        registry.get_task(name)
    for name in spec.methods:
        registry.get_method(name)
    spec.apply([parse_assignment(s) for s in args.set], plugin_has_key)
    executor = None
    if args.executor == "ray":
        from harness.executors import RayOptions, ray_executor

        executor = ray_executor(RayOptions(address=args.address, num_cpus=args.ray_cpus,
                                           num_gpus=args.ray_gpus, memory_gb=args.ray_memory_gb,
                                           max_retries=args.ray_retries))
    elif args.address:
        raise ConfigError("--address needs --executor ray")
    Runner(spec, tracking=not args.no_tracking, plots=not args.no_plots).run(executor)
    print((Path(spec.output) / "leaderboard.md").read_text())
    return 0


def cmd_table(args) -> int:
    from harness import tables

    try:
        sys.stdout.write(tables.render(args.dir, args.format, task=args.task))
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    return 0


def cmd_plot(args) -> int:
    from harness.plots import plot_run

    for path in plot_run(args.dir):
        print(path)
    return 0


def cmd_report(args) -> int:
    from harness.report import write

    print(write(args.dir, args.limit))
    return 0


def cmd_score(args) -> int:
    from harness import scoring
    from harness.metrics.text import signatures

    ids, cands, refs = scoring.load(args.predictions, args.references)
    values, missing = scoring.score(ids, cands, refs, _csv(args.metrics) if args.metrics else None)
    for name, reason in missing.items():
        print(f"mclbench: note: {name} is n/a: {reason}", file=sys.stderr)
    ci = scoring.intervals(cands, refs, values, args.bootstrap) if args.bootstrap else None
    sys.stdout.write(scoring.render(values, args.format, signatures(refs), ci, missing))
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="mclbench", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    ls = sub.add_parser("list", help="show every registered task and method")
    ls.add_argument("--params", action="store_true", help="also list each plugin's parameters")
    ls.set_defaults(func=cmd_list)

    run = sub.add_parser("run", help="train, decode and score tasks × methods × seeds")
    run.add_argument("--config", help="YAML run description (tasks, methods, seeds, output)")
    run.add_argument("--tasks", help="comma-separated task names")
    run.add_argument("--methods", help="comma-separated method names")
    run.add_argument("--seeds", help="comma-separated integer seeds (default 0)")
    run.add_argument("--output", help="directory for scores.csv and leaderboard.md (default out)")
    run.add_argument("--cache-dir", help="artifact cache (default .mclbench_cache)")
    run.add_argument("--best-of-n", type=int, metavar="N",
                     help="also decode N candidates per input (first seed) for best-of-N curves")
    run.add_argument("--set", action="append", default=[], metavar="SCOPE.KEY=VALUE",
                     help="override a parameter: task.KEY, method.KEY or <plugin>.KEY")
    run.add_argument("--no-tracking", action="store_true", help="do not log to MLflow")
    run.add_argument("--no-plots", action="store_true", help="do not draw DIR/<task>/plots/")
    run.add_argument("--processes", type=int, metavar="N",
                     help="train and decode each cell under `accelerate launch` on N processes "
                          "(GPUs, or CPU processes with gloo where there is no GPU)")
    run.add_argument("--accelerate-config", metavar="FILE",
                     help="an `accelerate config` file for those launches (DDP/FSDP/DeepSpeed, "
                          "mixed precision, gradient accumulation)")
    run.add_argument("--executor", choices=["local", "ray"], default="local",
                     help="local: cells one after another here (default); ray: one Ray task per "
                          "group of cells sharing an adapter (pip install 'mclbench[distributed]')")
    run.add_argument("--address", help="Ray cluster to join (auto, ray://host:10001); default: "
                                       "start a local Ray instance")
    run.add_argument("--ray-cpus", type=float, default=1.0, help="CPUs per Ray task (default 1)")
    run.add_argument("--ray-gpus", type=float, default=0.0, help="GPUs per Ray task (default 0)")
    run.add_argument("--ray-memory-gb", type=float, help="memory per Ray task, for the scheduler")
    run.add_argument("--ray-retries", type=int, default=3, help="retries of a failed Ray task")
    run.set_defaults(func=cmd_run)

    tb = sub.add_parser("table", help="print the leaderboard of a run directory")
    tb.add_argument("dir")
    tb.add_argument("--format", default="md", choices=["md", "csv", "latex", "html"])
    tb.add_argument("--task", help="only this task's table (default: every task in DIR)")
    tb.set_defaults(func=cmd_table)

    pl = sub.add_parser("plot", help="draw a run directory's figures (PNG and SVG)")
    pl.add_argument("dir", help="the --output directory of a finished `mclbench run`")
    pl.set_defaults(func=cmd_plot)

    rp = sub.add_parser("report", help="write DIR/report.html: tables, figures and candidates")
    rp.add_argument("dir", help="the --output directory of a finished `mclbench run`")
    rp.add_argument("--limit", type=int, default=50, help="inputs shown per task (default 50)")
    rp.set_defaults(func=cmd_report)

    sc = sub.add_parser("score", help="score a JSONL predictions file (no model needed)")
    sc.add_argument("--predictions", required=True,
                    help='JSONL: {"id", "candidates": [...]} (and "references" if no --references)')
    sc.add_argument("--references", help='JSONL: {"id", "references": [...]}, joined by id')
    sc.add_argument("--metrics", help="comma-separated subset of: bleu, chrf (sacreBLEU); bleu_1..bleu_4, "
                    "meteor, rouge_l, cider_d, spice, spider (COCO); mbleu_4, pairwise_bleu, loo_bleu, "
                    "refs_covered, div_1, div_2, vocab, unique (default: all)")
    sc.add_argument("--format", default="md", choices=["md", "csv", "json"])
    sc.add_argument("--bootstrap", type=int, default=0, metavar="N",
                    help="add 95%% bootstrap intervals over inputs from N resamples (e.g. 1000)")
    sc.set_defaults(func=cmd_score)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (MCLBenchError, FileNotFoundError) as exc:
        print(f"mclbench: error: {exc.args[0] if exc.args else exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("mclbench: interrupted; finished stages are cached and will be reused",
              file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
