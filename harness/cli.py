"""``mclbench``: list plugins, run a benchmark grid, print its tables.

A user mistake (bad name, value, file or folder) ends in one line on stderr,
``mclbench: error: …``, and exit status 2; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import shlex
import signal
import sys
from pathlib import Path
from typing import Any

from harness import registry
from harness.config import ConfigError, RunSpec, load_spec, parse_assignment, unique
from harness.errors import MCLBenchError, error_line


def _csv(value: str, what: str) -> list[str]:
    return unique([v.strip() for v in value.split(",") if v.strip()], what)


def _positive(value: str) -> int:
    """argparse type: an integer >= 1."""
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {value!r}") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {number}")
    return number


def _say(line: str) -> None:
    """A message on its own line on stderr, above any progress bar."""
    from tqdm.auto import tqdm

    tqdm.write(line, file=sys.stderr)


class _LineHandler(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        _say(f"mclbench: {record.levelname.lower()}: {record.getMessage()}")


def cmd_list(args) -> int:
    for kind in ("task", "method"):
        print(f"{kind}s:")
        for name, cls in registry.available(kind).items():
            print(f"  {name:<15} {registry.describe(cls)}")
            if args.params:
                for f in dataclasses.fields(cls.Config):
                    default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
                    filled = _task_defaults(f.name) if kind == "method" and default is None else ""
                    print(f"      {f.name} = {default!r}{filled}")
    _print_bases()
    return 0


def _print_bases() -> None:
    from harness import bases

    print("bases (task.backbone=NAME; mclbench bases):")
    for name, base in bases.BASES.items():
        print(f"  {name:<15} {base.description}")


def cmd_bases(args) -> int:
    from harness import bases

    if args.action == "prepare":
        names = args.names or list(bases.BASES)
        unknown = [n for n in names if not bases.is_base(n)]
        if unknown:
            raise ConfigError(f"unknown base {unknown[0]!r}; the bases are {', '.join(bases.BASES)}")
        for name in names:
            print(f"{name}: {bases.prepare(name)}")
        return 0
    for name, base in bases.BASES.items():
        print(f"{name:<15} {base.description}\n{'':<15} licence: {base.licence}\n"
              f"{'':<15} {bases.state(name)}")
    return 0


def _task_defaults(key: str) -> str:
    """Where a method parameter left None is filled from each task's training defaults."""
    per_task = {name: cls.training_defaults[key] for name, cls in registry.available("task").items()
                if key in getattr(cls, "training_defaults", {})}
    if not per_task:
        return ""
    return "  (task default: " + ", ".join(f"{t} {v!r}" for t, v in per_task.items()) + ")"


# RunSpec field -> the flag that sets it (those `run` has; `estimate` has none of them)
RUN_FLAGS = {"seeds": "--seeds", "output": "--output", "cache_dir": "--cache-dir",
             "processes": "--processes", "accelerate_config": "--accelerate-config",
             "device": "--device", "best_of_n": "--best-of-n"}


def _flag_overlay(args) -> dict[str, Any]:
    """The run settings the command line gives, parsed (``RunSpec.validate`` checks them)."""
    given = {key: value for key in RUN_FLAGS if (value := vars(args).get(key)) is not None}
    if "seeds" in given:
        names = _csv(given["seeds"], "--seeds")
        try:
            given["seeds"] = [int(s) for s in names]
        except ValueError:
            raise ConfigError(f"--seeds {args.seeds!r}: expected integers, e.g. 0,1,2") from None
    if "accelerate_config" in given:
        given["accelerate_config"] = str(Path(given["accelerate_config"]).resolve())
    return given


def _run_spec(args) -> RunSpec:
    """The run described by ``--config`` and the flags given (``run`` and ``estimate``): the
    file, the flags laid over it, then one check of the whole (``RunSpec.validate``)."""
    from harness.plan import plugin_keys

    spec = load_spec(args.config)
    if args.tasks is not None:
        spec.tasks = {n: spec.tasks.get(n, {}) for n in _csv(args.tasks, "--tasks")}
    for file in args.task_file:
        spec.task_files.append(os.path.abspath(file))  # a symlinked file's data lie beside the link
        spec.tasks.setdefault(registry.load_task_file(file), {})
    if args.methods is not None:
        spec.methods = {n: spec.methods.get(n, {}) for n in _csv(args.methods, "--methods")}
    spec.overlay(_flag_overlay(args), RUN_FLAGS)
    spec.validate()
    spec.apply([parse_assignment(s) for s in args.set], plugin_keys)
    return spec


def cmd_run(args) -> int:
    from harness import manifest, publish
    from harness.files import check_writable_dir
    from harness.runner import Runner

    spec = _run_spec(args)
    executor = None
    if args.executor == "ray":
        from harness.executors import RayOptions, ray_executor

        executor = ray_executor(RayOptions(address=args.address, num_cpus=args.ray_cpus,
                                           num_gpus=args.ray_gpus, memory_gb=args.ray_memory_gb,
                                           max_retries=args.ray_retries))
    elif args.address:
        raise ConfigError("--address needs --executor ray")
    if args.threads is not None:
        import torch

        torch.set_num_threads(args.threads)
    runner = Runner(spec, tracking=not args.no_tracking, overwrite=args.overwrite)
    command = shlex.join(["mclbench", *(argv if (argv := getattr(args, "argv", None)) is not None
                                        else sys.argv[1:])])
    check_writable_dir(spec.output, "--output")
    with manifest.locked(spec.output):  # from the check of the published rows to the last file
        manifest.owned(spec.output, args.overwrite)  # a folder mclbench did not write: refused first
        result = runner.run(executor, on_progress=_say)
        published = publish.write(result, command, plots=not args.no_plots, overwrite=args.overwrite)
    if published.restored:
        _say(f"restored {len(published.restored)} damaged or missing published file(s): "
             f"{', '.join(published.restored[:5])}{' ...' if len(published.restored) > 5 else ''}")
    print((Path(spec.output) / "leaderboard.md").read_text())
    _say(result.summary())
    return 0


def cmd_table(args) -> int:
    from harness import tables

    try:
        metrics = _csv(args.metrics, "--metrics") if args.metrics else None
        sys.stdout.write(tables.render(args.dir, args.format, task=args.task, metrics=metrics))
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    return 0


def cmd_compare(args) -> int:
    from harness import compare

    result = compare.compare(args.dir, args.task, args.metric, args.a, args.b, args.resamples, args.seed,
                             also=args.also)
    sys.stdout.write(json.dumps(result, indent=2) + "\n" if args.json else compare.render(result))
    return 0


def cmd_plot(args) -> int:
    import tempfile

    from harness import manifest, tables
    from harness.plots import plot_run

    tables.load(args.dir)  # a run folder, as published
    with tempfile.TemporaryDirectory(dir=args.dir, prefix=".plots-") as staging:
        drawn = {p.relative_to(staging).as_posix(): p.read_bytes() for p in plot_run(args.dir, dest=staging)}
    for path in manifest.add(args.dir, drawn):
        print(path)
    return 0


def cmd_view(args) -> int:
    from harness.view import write

    page = write(args.dir)
    print(f"{page} ({page.stat().st_size / 1e6:.1f} MB): open it in a browser (works offline, from file://)")
    return 0


def cmd_score(args) -> int:
    from harness import scoring
    from harness.metrics.text import signatures

    data = scoring.load(args.predictions, args.references)
    wanted = None
    if args.metrics is not None:
        wanted, renamed = scoring.resolve_names(_csv(args.metrics, "--metrics"))
        if not wanted:
            raise ConfigError("--metrics names no metric; give a comma-separated list (`mclbench metrics` "
                              "lists them) or leave it out for all")
        for line in renamed:
            print(f"mclbench: note: {line}", file=sys.stderr)
    values, done = scoring.evaluate(data.ids, data.candidates, data.references, wanted,
                                    data.reference_modes, data.candidate_modes, args.tokenize)
    missing = done.unavailable
    for name, reason in missing.items():
        print(f"mclbench: note: {name} is n/a: {reason}", file=sys.stderr)
    ci = scoring.intervals(done, values, args.bootstrap) if args.bootstrap else None
    sys.stdout.write(scoring.render(values, args.format, signatures(data.references, args.tokenize), ci,
                                    missing))
    return 0


def cmd_metrics(args) -> int:
    from harness.metrics import registry

    if args.markdown:
        sys.stdout.write(registry.reference_markdown())
        return 0
    for m in registry.load().values():
        better = {True: "↑", False: "↓", None: " "}[m.higher_is_better]
        shown = ", ".join([*m.reductions, f"{m.best}@n"]) if m.reductions else ""
        print(f"{m.name:<22}{m.kind:<10}{better} {m.description[:70]}" + (f"  [{shown}]" if shown else ""))
    return 0


def cmd_estimate(args) -> int:
    from harness.estimate import estimate, table

    rows = estimate(_run_spec(args), args.seq_len)
    print(table(rows))
    print(f"\nsequences of {args.seq_len} tokens; estimates without allocator overhead "
          "(see harness/estimate.py for the formulas)")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2) + "\n")
    return 0


def cmd_cache(args) -> int:
    from harness.cache import Cache

    cache = Cache(args.cache_dir)
    if args.action == "ls":
        rows = cache.usage()
        print(f"{'stage':<10} {'artifacts':>9} {'partial':>7} {'leftovers':>9} {'size':>10}")
        for r in rows:
            print(f"{r['stage']:<10} {r['artifacts']:>9} {r['partial']:>7} {r['leftovers']:>9} "
                  f"{_bytes(r['bytes']):>10}")
        print(f"{'total':<10} {sum(r['artifacts'] for r in rows):>9} {sum(r['partial'] for r in rows):>7} "
              f"{sum(r['leftovers'] for r in rows):>9} {_bytes(sum(r['bytes'] for r in rows)):>10}  "
              f"({cache.root})")
    elif args.action == "gc":
        removed = cache.gc(partial=args.partial)
        for path in removed:
            print(f"removed {path}")
        print(f"{len(removed)} leftover(s) removed from {cache.root}")
    else:
        if not args.yes:
            raise ConfigError(f"cache clear deletes every artifact under {cache.root}: add --yes to confirm")
        freed, kept = cache.clear(args.stage)
        print(f"freed {_bytes(freed)} in {cache.root}")
        if kept:
            raise ConfigError(f"{len(kept)} cache entries could not be removed (e.g. {kept[0]}): the "
                              "cache is not writable here; fix its permissions and run `mclbench cache "
                              "clear` again")
    return 0


def _bytes(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("mclbench")
    except PackageNotFoundError:
        return "unknown (not installed)"


class _Parser(argparse.ArgumentParser):
    """argparse with its errors on one line (usage is one ``--help`` away)."""

    def error(self, message: str):
        command = self.prog.removeprefix("mclbench").strip()
        self.exit(2, f"mclbench: error: {command + ': ' if command else ''}{message} "
                     f"(see {self.prog} --help)\n")


def _add_spec_args(parser) -> None:
    """The flags that describe a run (``run`` and ``estimate``; see :func:`_run_spec`)."""
    parser.add_argument("--config", help="YAML run description (tasks, methods, seeds, output)")
    parser.add_argument("--tasks", help="comma-separated task names")
    parser.add_argument("--task-file", action="append", default=[], metavar="FILE",
                        help="a task declared in a YAML file (tasks/task_files.py); its task is run "
                             "too (repeatable)")
    parser.add_argument("--methods", help="comma-separated method names")
    parser.add_argument("--set", action="append", default=[], metavar="SCOPE.KEY=VALUE",
                        help="override a parameter: task.KEY, method.KEY or <plugin>.KEY")


def _add_run(sub) -> None:
    run = sub.add_parser("run", help="train, decode and score tasks × methods × seeds")
    _add_spec_args(run)
    run.add_argument("--seeds", help="comma-separated integer seeds (default 0)")
    run.add_argument("--output", help="directory for scores.csv and leaderboard.md (default out)")
    run.add_argument("--cache-dir", help="artifact cache (default .mclbench_cache)")
    run.add_argument("--overwrite", action="store_true",
                     help="replace an --output table that holds cells this run does not include "
                          "(without it such a run refuses, so no published row is dropped)")
    run.add_argument("--threads", type=_positive, metavar="N",
                     help="torch CPU threads (default: torch's own, all cores)")
    run.add_argument("--device", help="where in-process stages run: auto (default: CUDA when torch "
                     "sees it, else the CPU), cpu, cuda, cuda:N or mps")
    run.add_argument("--best-of-n", type=int, metavar="N",
                     help="also decode N candidates per input (first seed) for best-of-N curves")
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


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="mclbench", description=__doc__,
                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--version", action="version", version=f"mclbench {_version()}")
    p.add_argument("--debug", action="store_true", help="show the traceback of an error")
    sub = p.add_subparsers(dest="command", required=True)

    ls = sub.add_parser("list", help="show every registered task and method")
    ls.add_argument("--params", action="store_true", help="also list each plugin's parameters")
    ls.set_defaults(func=cmd_list)

    _add_run(sub)

    _add_readers(sub)
    _add_scoring(sub)
    _add_admin(sub)
    return p


def _add_readers(sub) -> None:
    """Commands that read a finished run folder: table, compare, plot, report."""
    tb = sub.add_parser("table", help="print the leaderboard of a run directory")
    tb.add_argument("dir")
    tb.add_argument("--format", default="md", choices=["md", "csv", "latex", "html"])
    tb.add_argument("--task", help="only this task's table (default: every task in DIR)")
    tb.add_argument("--metrics", help="comma-separated columns to show, in this order (default: all)")
    tb.set_defaults(func=cmd_table)

    cp = sub.add_parser("compare", help="paired bootstrap test of two methods of a run directory")
    cp.add_argument("dir", help="the --output directory of a finished `mclbench run`")
    cp.add_argument("a", help="a method (row) of the leaderboard")
    cp.add_argument("b", help="another one")
    cp.add_argument("--task", required=True)
    cp.add_argument("--metric", required=True, help="a column that decomposes over inputs, e.g. max/bleu")
    cp.add_argument("--resamples", type=_positive, default=1000, help="bootstrap resamples (default 1000)")
    cp.add_argument("--seed", type=int, default=0, help="seed of the resampling (default 0)")
    cp.add_argument("--also", action="append", default=[], metavar="DIR",
                    help="another run folder of the same configuration holding other seeds (repeatable): "
                         "their cells join DIR's, the seeds pooled as in the leaderboard's test")
    cp.add_argument("--json", action="store_true", help="print the result as JSON")
    cp.set_defaults(func=cmd_compare)

    pl = sub.add_parser("plot", help="draw a run directory's figures (PNG and SVG)")
    pl.add_argument("dir", help="the --output directory of a finished `mclbench run`")
    pl.set_defaults(func=cmd_plot)

    vw = sub.add_parser("view", aliases=["report"], help="write DIR/report.html, the run's explorer: "
                        "leaderboards, figures, every input's candidates, two methods compared")
    vw.add_argument("dir", help="the --output directory of a finished `mclbench run`")
    vw.set_defaults(func=cmd_view)


def _add_scoring(sub) -> None:
    """The metric catalogue and scoring a predictions file without a model."""
    mt = sub.add_parser("metrics", help="list the registered metrics (or write their Markdown reference)")
    mt.add_argument("--markdown", action="store_true", help="print the reference table (docs/metrics.md)")
    mt.set_defaults(func=cmd_metrics)

    sc = sub.add_parser("score", help="score a JSONL predictions file (no model needed)")
    sc.add_argument("--predictions", required=True,
                    help='JSONL: {"id", "candidates": [...]} (and "references" if no --references)')
    sc.add_argument("--references", help='JSONL: {"id", "references": [...]}, joined by id')
    sc.add_argument("--metrics", help="comma-separated names from `mclbench metrics`: a quality "
                    "metric alone (all its reductions, max@n/ for n <= N included) or one reduction "
                    "(top1/, mean/, max/ = the paper's oracle, max@n/, oracle_corpus/<name>), a set "
                    'metric by name; modes_covered and mode_recall need "reference_modes" rows '
                    "(default: every metric the rows allow)")
    sc.add_argument("--tokenize", default="13a", help="sacreBLEU tokenisation of BLEU and the 13a "
                    "diversity metrics: 13a, intl, zh, char, none (default 13a)")
    sc.add_argument("--format", default="md", choices=["md", "csv", "json"])
    sc.add_argument("--bootstrap", type=_positive, metavar="N",
                    help="add 95%% bootstrap intervals over inputs from N resamples (e.g. 1000)")
    sc.set_defaults(func=cmd_score)


def _add_admin(sub) -> None:
    """Planning and housekeeping: estimate, bases, cache."""
    es = sub.add_parser("estimate", help="memory a run's cells need (weights, adapters, optimizer, "
                        "activations, KV cache), from the configs alone")
    _add_spec_args(es)
    es.add_argument("--seq-len", type=_positive, default=512, metavar="T",
                    help="tokens per training sequence and per decoded row (default 512)")
    es.add_argument("--json", metavar="FILE", help="also write the figures (bytes) as JSON")
    es.set_defaults(func=cmd_estimate)

    bs = sub.add_parser("bases", help="the pretrained bases from PyPI packages: list them, or convert "
                        "them ahead of a run")
    bs.add_argument("action", nargs="?", default="ls", choices=["ls", "prepare"],
                    help="ls: each base, its licence and state (default); prepare: convert (all, or NAMES)")
    bs.add_argument("names", nargs="*", metavar="NAME", help="prepare: these bases (default: every one)")
    bs.set_defaults(func=cmd_bases)

    ca = sub.add_parser("cache", help="show or free the artifact cache")
    ca.add_argument("action", choices=["ls", "gc", "clear"],
                    help="ls: artifacts and size per stage; gc: remove what killed runs left and "
                         "artifacts that fail verification; clear: remove every artifact")
    ca.add_argument("--cache-dir", default=".mclbench_cache", help="default .mclbench_cache")
    ca.add_argument("--partial", action="store_true",
                    help="gc: also remove the resumable work (checkpoints) of unfinished stages")
    ca.add_argument("--stage", help="clear: only this stage (backbone, train, decode, score, curve, "
                                    "significance)")
    ca.add_argument("--yes", action="store_true", help="clear: confirm")
    ca.set_defaults(func=cmd_cache)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.argv = argv  # for the provenance of a run (None: sys.argv)
    handler = _LineHandler(logging.INFO)
    logging.getLogger("harness").addHandler(handler)
    logging.getLogger("harness").setLevel(logging.INFO)
    previous = signal.signal(signal.SIGTERM, _terminated) if _main_thread() else None
    try:
        return args.func(args)
    except Terminated:
        print("mclbench: terminated (SIGTERM); finished stages are cached and will be reused, and an "
              "interrupted training resumes from its last checkpoint", file=sys.stderr)
        return 143
    except KeyboardInterrupt:
        print("mclbench: interrupted; finished stages are cached and will be reused",
              file=sys.stderr)
        return 130
    except Exception as exc:
        if args.debug:
            raise
        print(f"mclbench: error: {error_line(exc)}", file=sys.stderr)
        return 2 if isinstance(exc, MCLBenchError | OSError) else 1
    finally:
        logging.getLogger("harness").removeHandler(handler)
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the process is, so that it unwinds as Ctrl-C does."""


def _terminated(signum, frame) -> None:
    raise Terminated()


def _main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


if __name__ == "__main__":
    sys.exit(main())
