"""The metric registry: one definition per name, the reductions derived from it.

A metric is registered once, on the function that computes it::

    @register_metric("chrf", kind="candidate", higher_is_better=True, tokenisation="characters",
                     description="sacreBLEU chrF", paper="...")
    def chrf(inputs: ScoreInputs) -> CandidateScores: ...

Three kinds:

- ``candidate``: a quality metric. ``compute`` returns every candidate's score
  (:class:`CandidateScores`) once; the registry derives the reductions over the N candidates
  of an input, each a name ``<reduction>/<metric>``:

  - ``top1/`` the first candidate of every input (what a user would be shown);
  - ``mean/`` the mean over candidate ranks n of the corpus score of every input's n-th candidate;
  - ``max/`` per input the best sentence score, then the mean over inputs: **the LoRA-MCL
    paper's oracle** (aac-metrics' ``mult_cands_metric(..., "max")``, ALMA's
    ``compute_oracle_sentence_bleu``);
  - ``max@n/`` the same over the first n candidates, for every n ≤ N (best-of-n curves from one
    decode; ``max@N/`` is ``max/``, and ``max@1/`` is ``top1/`` for metrics that are means of
    sentence scores);
  - ``oracle_corpus/`` the *corpus* score of each input's best candidate (by its sentence
    score, ties to the first): equal to ``max/`` for means of sentence scores (CIDEr-D,
    ROUGE-L), different for corpus BLEU, chrF and METEOR — not the paper's oracle.

  A metric where lower is better (TER) has ``min/`` and ``min@n/`` instead of ``max/`` and
  ``max@n/``: the best candidate is always the one its direction prefers.

- ``set``: a function of each input's set of candidates (diversity, references covered, mode
  coverage). ``compute`` returns a per-input array (the metric is its mean over the inputs
  where it is defined, NaN marking the others, and it decomposes over inputs for the
  bootstrap and the significance test) or one float (it does not).
- ``probe``: read from what was measured with the model at decode time (``inputs.probes``);
  returns a per-input array, like a ``set`` metric.

``needs`` names what a metric reads besides candidates and references; a metric whose needs the
inputs do not meet is left out (or, asked for by name in ``strict`` mode, refused in one line).
Metric modules are the files of this package (found by :func:`load`), and third-party ones
register through the ``mclbench.metrics`` entry-point group: adding a metric is one file.
A second registration of a name is an error.
"""

from __future__ import annotations

import importlib
import pkgutil
import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any

import numpy as np

KINDS = ("candidate", "set", "probe")
REDUCTIONS = ("top1", "mean", "oracle_corpus", "max")  # max@n/ is derived for every n <= N
BEST = ("max", "min")  # the best candidate's reduction: max, or min where lower is better
RENAMED = {"oracle": "oracle_corpus"}  # old reduction names a user may still type (mclbench score)
NEEDS = {  # what a metric may need, and the reason shown where the inputs lack it
    "two_candidates": "needs at least 2 candidates per input",
    "two_references": "needs at least 2 references per input",
    "equal_references": "needs the same number (>= 2) of references for every input",
    "modes": 'needs a mode label per reference ("reference_modes" in every references row)',
    "reference_nll": "needs the reference-NLL probes of a model with hypotheses (harness.probes)",
}
GROUPS = ("python", "jvm")  # the jvm group runs in a thread beside the Python metrics
Decomposition = tuple[np.ndarray, Callable[[np.ndarray], float]]


class MetricUnavailable(RuntimeError):
    """A metric that cannot run on this machine; the message is the reason shown in tables."""


class MetricNameError(ValueError):
    """An unknown metric name, or a metric the inputs cannot give (one line: what to do)."""


class MetricValues(dict):
    """``{metric: value}``, and in ``unavailable`` ``{metric: reason}`` for the metrics that
    could not be computed here (n/a, never a number)."""

    def __init__(self, values=(), unavailable: dict[str, str] | None = None):
        super().__init__(values)
        self.unavailable = dict(unavailable or {})


@dataclass
class ScoreInputs:
    """What every metric reads: ``candidates[i][n]`` (the same N for every input),
    ``references[i][m]``, sacreBLEU's tokenisation of the BLEU-based metrics, mode labels (a
    label or None per reference; per candidate, optional) and the model's probes.
    ``requested``: the base names being computed together (a family computes them in one pass)."""

    candidates: Sequence[Sequence[str]]
    references: Sequence[Sequence[str]]
    tokenize: str = "13a"
    reference_modes: Sequence[Sequence[str | None]] | None = None
    candidate_modes: Sequence[Sequence[str | None]] | None = None
    probes: dict[str, Any] | None = None
    requested: frozenset[str] = frozenset()
    _shared: dict = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def n_candidates(self) -> int:
        return len(self.candidates[0])

    def shared(self, key: str, compute: Callable[[], Any]) -> Any:
        """``compute()`` once per inputs and key (tokens, n-gram tables, a family's pass); a
        lock per key, so that one family's long pass does not hold up another's."""
        with self._lock:
            lock = self._shared.setdefault(("lock", key), threading.Lock())
        with lock:
            if key not in self._shared:
                self._shared[key] = compute()
            return self._shared[key]

    def unmet(self, needs: Iterable[str]) -> str | None:
        """The reason the first of ``needs`` these inputs do not meet, or None."""
        refs = [len(r) for r in self.references]
        met = {
            "two_candidates": self.n_candidates >= 2,
            "two_references": min(refs) >= 2,
            "equal_references": len(set(refs)) == 1 and refs[0] >= 2,
            "modes": self.reference_modes is not None,
            "reference_nll": bool(self.probes) and "reference_nll" in self.probes,
        }
        return next((NEEDS[n] for n in needs if not met[n]), None)


@dataclass
class CandidateScores:
    """Every candidate's score of a quality metric, what its reductions read.

    ``sentence`` ``(inputs, N)``: each candidate's sentence score (what ``max/`` and the
    oracle's pick read). ``stats`` ``(inputs, N, S)`` and ``corpus(rows (inputs, S)) -> float``:
    sufficient statistics of a corpus metric (BLEU, chrF); None: the corpus score is the mean of
    the sentence scores. ``fixed``: reductions the metric computes itself (METEOR's corpus
    aggregate is its own), which then do not decompose over inputs."""

    sentence: np.ndarray
    stats: np.ndarray | None = None
    corpus: Callable[[np.ndarray], float] | None = None
    fixed: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class MetricSpec:
    """A registered metric. ``tokenisation`` may hold ``{tokenize}`` (sacreBLEU's, per task);
    ``paper``: the published number or code it reproduces; ``group``: "jvm" for metrics that
    run on the JVM (scored in a thread beside the others)."""

    name: str
    kind: str
    compute: Callable[[ScoreInputs], Any]
    higher_is_better: bool | None
    description: str
    tokenisation: str | None = None
    paper: str = ""
    needs: frozenset[str] = frozenset()
    reductions: tuple[str, ...] = ()
    group: str = "python"
    per_input: bool = False  # a set metric: compute returns per-input rows (it decomposes)
    own_corpus: bool = False  # a candidate metric whose corpus reductions are its own (METEOR)
    # (references, tokenize) -> the footer line that says exactly what was computed (sacreBLEU's
    # signature); None: the description says it
    signature: Callable[[Sequence[Sequence[str]], str], str] | None = None

    def decomposes(self, name: str) -> bool:
        """Whether reported name ``name`` of this metric decomposes over inputs."""
        reduction, _ = split(name)
        if self.kind == "candidate":
            return reduction is not None and (not self.own_corpus or reduction.startswith(self.best))
        return self.kind == "probe" or self.per_input

    @property
    def best(self) -> str:
        """``max`` (or ``min`` where lower is better): the reduction of each input's best candidate."""
        return "min" if self.higher_is_better is False else "max"

    @property
    def module(self) -> str:
        """The module that defines the metric (its source is part of the score stage's key)."""
        return self.compute.__module__

    def names(self, n_candidates: int = 0) -> list[str]:
        """The names this metric reports: its reductions (and ``max@n/`` for n ≤ ``n_candidates``
        where it has ``max``), or its own name."""
        if self.kind != "candidate":
            return [self.name]
        best = self.best
        at = ([f"{best}@{n}/{self.name}" for n in range(1, n_candidates + 1)]
              if best in self.reductions else [])
        return [f"{r}/{self.name}" for r in self.reductions] + at


_REGISTRY: dict[str, MetricSpec] = {}
_LOADED = False
FIRST = ("text", "coco", "diversity", "modes", "sbert", "likelihood")  # listing order of the built-ins


def register_metric(name: str, *, kind: str, higher_is_better: bool | None, description: str,
                    tokenisation: str | None = None, paper: str = "", needs: Iterable[str] = (),
                    reductions: Sequence[str] | None = None, group: str = "python",
                    per_input: bool = False, own_corpus: bool = False, signature=None):
    """Register the decorated function as metric ``name`` (see the module docstring)."""
    if kind not in KINDS:
        raise ValueError(f"metric {name!r}: kind must be one of {', '.join(KINDS)}")
    unknown = [n for n in needs if n not in NEEDS]
    if unknown or group not in GROUPS or "/" in name or "@" in name:
        raise ValueError(f"metric {name!r}: bad name, needs {unknown} or group {group!r}")
    best = "min" if higher_is_better is False else "max"
    default = (*REDUCTIONS[:-1], best) if kind == "candidate" else ()
    chosen = tuple(reductions if reductions is not None else default)
    if any(r not in (*REDUCTIONS[:-1], best) for r in chosen) or (kind != "candidate" and chosen):
        raise ValueError(f"metric {name!r}: reductions are for candidate metrics, from {default}")

    def decorate(fn):
        if name in _REGISTRY:
            raise ValueError(f"metric {name!r} is registered twice ({_REGISTRY[name].module} and "
                             f"{fn.__module__}): one name, one definition")
        _REGISTRY[name] = MetricSpec(name, kind, fn, higher_is_better, description, tokenisation, paper,
                                     frozenset(needs), chosen, group, per_input, own_corpus, signature)
        return fn

    return decorate


def load() -> dict[str, MetricSpec]:
    """Every registered metric: this package's modules (the built-ins first, in their listing
    order), then the ``mclbench.metrics`` entry points."""
    global _LOADED
    if not _LOADED:
        _LOADED = True
        package = importlib.import_module("harness.metrics")
        found = sorted(m.name for m in pkgutil.iter_modules(package.__path__))
        for module in [*FIRST, *(m for m in found if m not in FIRST)]:
            importlib.import_module(f"harness.metrics.{module}")
        for ep in entry_points(group="mclbench.metrics"):
            ep.load()
        # one listing order whatever was imported first: the built-ins' modules in FIRST order
        modules = [*FIRST, *(m for m in found if m not in FIRST)]
        rank = {f"harness.metrics.{m}": i for i, m in enumerate(modules)}
        ordered = sorted(_REGISTRY.values(), key=lambda m: rank.get(m.module, len(rank)))
        _REGISTRY.clear()
        _REGISTRY.update({m.name: m for m in ordered})
    return _REGISTRY


def split(name: str) -> tuple[str | None, str]:
    """``(reduction or None, base name)`` of ``"max@2/bleu"``, ``"top1/bleu"`` or ``"vocab"``."""
    if "/" not in name:
        return None, name
    reduction, base = name.split("/", 1)
    return reduction, base


def spec(name: str) -> MetricSpec:
    """The spec of a metric name (with or without its reduction), or MetricNameError."""
    reduction, base = split(name)
    metrics = load()
    if base not in metrics:
        raise MetricNameError(f"unknown metric {name!r}; registered: {', '.join(metrics)} (see "
                              "docs/metrics.md; a quality metric also as top1/, mean/, max/, max@n/, "
                              "oracle_corpus/<name>)")
    found = metrics[base]
    if reduction is not None and not _reduction_ok(found, reduction):
        offered = [*found.reductions, *([f"{found.best}@n"] if found.best in found.reductions else [])]
        raise MetricNameError(f"{name!r}: {base} has no reduction {reduction!r}; "
                              + (f"it has {', '.join(offered)}" if offered else "it is a set metric: "
                                 f"name it as {base!r}"))
    return found


def _reduction_ok(found: MetricSpec, reduction: str) -> bool:
    if found.kind != "candidate":
        return False
    if reduction.startswith(f"{found.best}@"):
        n = reduction[4:]
        return found.best in found.reductions and n.isdigit() and int(n) >= 1
    return reduction in found.reductions


def info(name: str, tokenize: str = "13a") -> tuple[bool | None, str, str | None]:
    """``(higher_is_better, description, tokenisation)`` of a reported name."""
    found = spec(name)
    reduction, _ = split(name)
    description = found.description
    if reduction is not None:
        description += f", {reduction} reduction" + (" (the paper's oracle)" if reduction in BEST else "")
    tokens = found.tokenisation.format(tokenize=tokenize) if found.tokenisation else None
    return found.higher_is_better, description, tokens


# ---------------------------------------------------------------- reductions
def _mean(rows: np.ndarray) -> float:
    return float(np.mean(rows))


def _mean_where_defined(rows: np.ndarray) -> float:
    """The mean of per-input rows over the inputs a set metric is defined on (NaN elsewhere);
    NaN where it is defined on none (a resample may draw only those)."""
    defined = rows[~np.isnan(rows)]
    return float(np.mean(defined)) if defined.size else float("nan")


def _mean_over_ranks(corpus: Callable[[np.ndarray], float]) -> Callable[[np.ndarray], float]:
    return lambda rows: float(np.mean([corpus(rows[:, k]) for k in range(rows.shape[1])]))


def reduce(metric: MetricSpec, scores: CandidateScores) -> tuple[dict[str, float], dict[str, Decomposition]]:
    """Every reduction of a candidate metric: ``(values, parts)``; ``parts[name]`` the per-input
    rows and the aggregate that recomputes the value from any resample of them."""
    sentence = np.asarray(scores.sentence, dtype=float)
    inputs, n = sentence.shape
    best = metric.best
    pick = np.max if best == "max" else np.min
    if scores.stats is None:  # a mean of sentence scores: every reduction is a mean over inputs
        corpus = _mean
        rows = {"top1": sentence[:, 0], "mean": sentence.mean(1), "oracle_corpus": pick(sentence, 1)}
    else:
        stats, corpus = scores.stats, scores.corpus
        chosen = (sentence.argmax(1) if best == "max" else sentence.argmin(1))  # ties: the first
        rows = {"top1": stats[:, 0], "mean": stats, "oracle_corpus": stats[np.arange(inputs), chosen]}
    parts: dict[str, Decomposition] = {}
    for reduction in metric.reductions:
        if reduction in scores.fixed:
            continue
        if reduction == best:
            parts[f"{best}/{metric.name}"] = (pick(sentence, 1), _mean)
        else:
            over_ranks = reduction == "mean" and scores.stats is not None
            aggregate = _mean_over_ranks(corpus) if over_ranks else corpus
            parts[f"{reduction}/{metric.name}"] = (rows[reduction], aggregate)
    if best in metric.reductions:
        for k in range(1, n + 1):
            parts[f"{best}@{k}/{metric.name}"] = (pick(sentence[:, :k], 1), _mean)
    values = {k: float(aggregate(r)) for k, (r, aggregate) in parts.items()}
    values.update({f"{r}/{metric.name}": float(v) for r, v in scores.fixed.items() if r in metric.reductions})
    return values, parts


# ---------------------------------------------------------------- evaluation
@dataclass
class Evaluation:
    """What :func:`evaluate` computed: ``values`` (every reported name of every metric that ran),
    ``unavailable`` (base name → why it could not run here), ``parts`` (the names that decompose
    over inputs: per-input rows and aggregate) and ``skipped`` (base name → the need not met)."""

    values: dict[str, float] = field(default_factory=dict)
    unavailable: dict[str, str] = field(default_factory=dict)
    parts: dict[str, Decomposition] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)

    def select(self, names: Sequence[str]) -> dict[str, float]:
        """``values`` of ``names`` (a base name: all its reported names), in that order."""
        out = {}
        for name in names:
            keys = [name] if name in self.values else [k for k in self.values if split(k)[1] == name]
            out.update({k: self.values[k] for k in keys})
        return out


def bases(names: Sequence[str]) -> list[str]:
    """The distinct base metrics of ``names``, in order (each checked against the registry)."""
    return list(dict.fromkeys(spec(name).name for name in names))


def evaluate(names: Sequence[str], inputs: ScoreInputs, strict: bool = False) -> Evaluation:
    """Compute the metrics of ``names`` (base names or reported names) once each. A metric whose
    needs the inputs do not meet is skipped (``strict``: MetricNameError naming it); one that
    cannot run here (Java missing) is in ``unavailable`` with the reason."""
    wanted = [load()[b] for b in bases(names)]
    out = Evaluation()
    runnable = []
    for metric in wanted:
        reason = inputs.unmet(metric.needs)
        if reason is None:
            runnable.append(metric)
        elif strict:
            raise MetricNameError(f"{metric.name} {reason}")
        else:
            out.skipped[metric.name] = reason
    inputs.requested = frozenset(m.name for m in runnable)
    jvm = [m for m in runnable if m.group == "jvm"]
    # The JVM metrics in a thread: METEOR's JVM (~1.2 cores) takes the other core. A second
    # Python process was measured slower: three CPU-bound consumers on two cores slow the JVM
    # more than they save.
    with ThreadPoolExecutor(1) as pool:
        job = pool.submit(_compute_all, jvm, inputs) if jvm else None
        results = _compute_all([m for m in runnable if m.group != "jvm"], inputs)
        if job is not None:
            results.update(job.result())
    for metric in runnable:  # in the order asked for
        result = results[metric.name]
        if isinstance(result, MetricUnavailable):
            out.unavailable[metric.name] = str(result)
        elif metric.kind == "candidate":
            values, parts = reduce(metric, result)
            out.values.update(values)
            out.parts.update(parts)
        elif metric.per_input or metric.kind == "probe":  # the mean of per-input rows: it decomposes
            rows = np.asarray(result, dtype=float)
            out.values[metric.name] = _mean_where_defined(rows)
            out.parts[metric.name] = (rows, _mean_where_defined)
        else:
            out.values[metric.name] = float(result)
    return out


def _compute_all(metrics: Sequence[MetricSpec], inputs: ScoreInputs) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for metric in metrics:
        try:
            out[metric.name] = metric.compute(inputs)
        except MetricUnavailable as exc:
            out[metric.name] = exc
    return out


def score(candidates, references, names: Sequence[str], tokenize: str = "13a", **inputs) -> MetricValues:
    """The values of ``names`` on these candidates (a convenience over :func:`evaluate`), with
    the reasons of those that could not run in ``unavailable``."""
    done = evaluate(names, ScoreInputs(candidates, references, tokenize, **inputs))
    return MetricValues(done.select(names), done.unavailable)


def reference_markdown() -> str:
    """The metrics reference (``docs/metrics.md``): every registered metric, generated."""
    lines = ["# Metrics reference", "",
             "Generated by `mclbench metrics --markdown > docs/metrics.md` from the registry "
             "(`harness/metrics/registry.py`); `tests/test_metric_registry.py` checks it is current.", "",
             "Reductions of a quality (`candidate`) metric m over the N candidates of an input: "
             "`top1/m` (the first candidate), `mean/m` (the mean over ranks of the corpus score), "
             "`max/m` (per input the best sentence score, mean over inputs: **the LoRA-MCL paper's "
             "oracle**, aac-metrics' `-max`), `max@n/m` (the same over the first n candidates, every "
             "n ≤ N) and `oracle_corpus/m` (the corpus score of each input's best pick; not the paper's "
             "oracle). Set metrics are functions of an input's candidate set; probe metrics read what "
             "the model measured at decode time.", "",
             "| metric | kind | better | reductions | tokens | needs | decomposes | reproduces "
             "| what it is |",
             "|---|---|---|---|---|---|---|---|---|"]
    for m in load().values():
        better = {True: "↑", False: "↓", None: "–"}[m.higher_is_better]
        reductions = ", ".join([*m.reductions, *([f"{m.best}@n"] if m.best in m.reductions else [])]) or "–"
        decomposes = "per input" if m.kind in ("candidate", "probe") or m.per_input else "no"
        if m.own_corpus:
            decomposes = f"{m.best}, {m.best}@n only"
        needs = ", ".join(sorted(m.needs)) or "–"
        tokens = (m.tokenisation or "–").format(tokenize="13a")
        cells = [f"`{m.name}`", m.kind, better, reductions, tokens, needs, decomposes, m.paper or "–",
                 m.description]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"

