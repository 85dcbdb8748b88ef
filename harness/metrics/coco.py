"""COCO caption metrics, as the COCO evaluation server computes them (pycocoevalcap).

Tokenisation: every candidate and reference goes once through pycocoevalcap's PTB
tokenizer (Stanford CoreNLP 3.4.1 ``PTBTokenizer -preserveLines -lowerCase``, then its
punctuation list removed), in one JVM for the whole call. All metrics below are computed
on those tokens; every value is on pycocoevalcap's scale (0..1; CIDEr-D 0..10).

- ``bleu_1`` … ``bleu_4``: pycocoevalcap BLEU (closest reference length, its 1e-9/1e-15
  smoothing); corpus score from summed statistics, its per-sentence form for ``oracle/``.
- ``meteor``: METEOR 1.5 (``-l en -norm``), one JVM per scoring call; the corpus score is
  METEOR's own aggregate of the segments' statistics.
- ``rouge_l``: ROUGE-L F (β = 1.2), the mean over inputs.
- ``cider_d``: CIDEr-D (pycocoevalcap's ``Cider``: clipped tf-idf n-grams 1–4, Gaussian
  length penalty σ = 6, ×10; idf from the references of the scored set), mean over inputs.
- ``spice``: SPICE 1.0 F-score, mean over inputs; ``spider`` = (CIDEr-D + SPICE) / 2, and
  ``oracle/spider`` is SPIDEr-max (per input the best candidate's SPIDEr). SPICE needs
  Stanford CoreNLP 3.6.0 (``stanford-corenlp-3.6.0.jar`` and ``…-models.jar``), which
  pycocoevalcap downloads at first use: offline, point ``MCLBENCH_CORENLP_DIR`` at a folder
  that holds them, else ``spice`` and ``spider`` are reported "n/a" with the reason.

Each is registered as a quality metric (:mod:`harness.metrics.registry` derives ``top1/``,
``mean/``, ``max/`` — aac-metrics' ``-max``, the LoRA-MCL paper's captioning oracle —,
``max@n/`` and ``oracle_corpus/`` from every candidate's score), together with the paper's
captioning diversity on PTB tokens (``mbleu_4_ptb``, ``div_1_ptb``, ``div_2_ptb``,
``vocab_ptb``). The family is computed in one pass per scoring call (one PTB tokenisation,
METEOR's JVM beside the Python metrics), in the registry's JVM thread. Equality with
pycocoevalcap's classes (corpus and per-sentence, 1e-6) is tested on real captions.

BLEU, ROUGE-L and CIDEr-D are re-implemented here with pycocoevalcap's arithmetic so the
statistics of N·I candidates are computed once; METEOR runs in its own JVM concurrently
with them.
"""

from __future__ import annotations

import atexit
import json
import math
import os
import shutil
import subprocess
import tempfile
import threading
from collections import defaultdict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from pathlib import Path

import numpy as np

from harness.metrics.registry import (
    CandidateScores,
    MetricUnavailable,
    MetricValues,
    ScoreInputs,
    register_metric,
    score,
)

COCO = ("bleu_1", "bleu_2", "bleu_3", "bleu_4", "meteor", "rouge_l", "cider_d", "spice", "spider")
NEEDS_SPICE = ("spice", "spider")
PUNCTUATION = {"''", "'", "``", "`", "-LRB-", "-RRB-", "-LCB-", "-RCB-", ".", "?", "!", ",", ":", "-",
               "--", "...", ";"}  # pycocoevalcap's list, removed after PTB tokenisation
CORENLP_JARS = ("stanford-corenlp-3.6.0.jar", "stanford-corenlp-3.6.0-models.jar")


def _package_dir() -> Path:
    try:
        import pycocoevalcap
    except ImportError:
        raise MetricUnavailable("pycocoevalcap is not installed (pip install pycocoevalcap)") from None
    return Path(pycocoevalcap.__path__[0])


def java() -> str:
    """The java executable, or MetricUnavailable saying how to install one."""
    home = os.environ.get("JAVA_HOME")
    in_home = Path(home, "bin", "java") if home else None
    found = shutil.which("java") or (str(in_home) if in_home and in_home.exists() else None)
    if not found:
        raise MetricUnavailable("Java not found (METEOR, the PTB tokenizer and SPICE run on the JVM): "
                                "install a JRE (apt-get install default-jre-headless) or set JAVA_HOME")
    return found


def corenlp_dir() -> Path:
    """The folder with the two Stanford CoreNLP 3.6.0 jars SPICE needs."""
    candidates = [Path(os.environ["MCLBENCH_CORENLP_DIR"])] if os.environ.get("MCLBENCH_CORENLP_DIR") else []
    candidates.append(_package_dir() / "spice" / "lib")
    for folder in candidates:
        if all((folder / jar).is_file() for jar in CORENLP_JARS):
            return folder
    raise MetricUnavailable("SPICE needs Stanford CoreNLP 3.6.0 (stanford-corenlp-3.6.0.jar and "
                            "-models.jar), not downloadable offline: set MCLBENCH_CORENLP_DIR to theirs")


def unavailable(metrics: Sequence[str]) -> dict[str, str]:
    """The COCO metrics among ``metrics`` that cannot run here, each with its reason."""
    out = {}
    for name in metrics:
        try:
            _package_dir()
            java()
            if name in NEEDS_SPICE:
                corenlp_dir()
        except MetricUnavailable as exc:
            out[name] = str(exc)
    return out


# ---------------------------------------------------------------- tokenisation
# Java reads these as line ends (PTBTokenizer's -preserveLines, METEOR's and SPICE's line
# readers); inside one text they would split it into two lines and shift every later one.
JAVA_LINE_BREAKS = ("\r\n", "\n", "\r", "\x0b", "\x0c", "\x85", "\u2028", "\u2029")


def jvm_text(text: str, meteor: bool = False) -> str:
    """``text`` as one line for the Java tools: every line break Java honours becomes a space;
    for METEOR also without ``|||``, its field separator (pycocoevalcap removes it from
    candidates). The one place text is sanitised before it reaches a JVM."""
    for brk in JAVA_LINE_BREAKS:
        text = text.replace(brk, " ")
    return " ".join(text.replace("|||", "").split()) if meteor else text


def ptb_tokenize(sentences: Sequence[str]) -> list[str]:
    """pycocoevalcap's PTBTokenizer on every sentence in one JVM: lower-cased, punctuation
    removed; one output line per sentence, checked before it is used."""
    jar = _package_dir() / "tokenizer" / "stanford-corenlp-3.4.1.jar"
    text = "\n".join(jvm_text(s) for s in sentences)
    with tempfile.NamedTemporaryFile("wb", suffix=".txt", delete=False) as f:
        f.write(text.encode())
    try:
        done = subprocess.run([java(), "-cp", str(jar), "edu.stanford.nlp.process.PTBTokenizer",
                               "-preserveLines", "-lowerCase", f.name], capture_output=True)
    except OSError as exc:
        raise MetricUnavailable(f"the PTB tokenizer's JVM could not start: {exc}") from None
    finally:
        os.remove(f.name)
    if done.returncode:
        last = [ln for ln in done.stderr.decode(errors="replace").splitlines() if ln.strip()]
        raise MetricUnavailable(f"the PTB tokenizer's JVM exited with status {done.returncode}: "
                                f"{last[-1].strip()[:300] if last else 'it wrote nothing to stderr'}")
    lines = done.stdout.decode().split("\n")
    while len(lines) > len(sentences) and lines[-1] == "":  # the output's final line ends
        lines.pop()
    if len(lines) < len(sentences) and not "".join(sentences[len(lines):]).strip():
        lines += [""] * (len(sentences) - len(lines))  # blank sentences at the end write no line
    if len(lines) != len(sentences):
        raise RuntimeError(f"PTB tokenizer returned {len(lines)} lines for {len(sentences)} sentences: "
                           "a line break it honours was not removed (harness.metrics.coco.jvm_text)")
    return [" ".join(w for w in line.rstrip().split(" ") if w not in PUNCTUATION) for line in lines]


# ---------------------------------------------------------------- n-gram counts
def _ngrams(words: list[str], n: int = 4) -> dict[tuple, int]:
    counts: dict[tuple, int] = defaultdict(int)
    for k in range(1, n + 1):
        for i in range(len(words) - k + 1):
            counts[tuple(words[i:i + k])] += 1
    return counts


@lru_cache(maxsize=1 << 17)
def _counts(text: str, n: int) -> dict[tuple, int]:
    """n-gram counts (orders 1-n) of one tokenised string, counted once: BLEU, CIDEr-D and
    the PTB diversity count the same strings again and again. Read-only. ``n`` has no default
    so that every caller makes the same cache key."""
    return _ngrams(text.split(), n)


# ---------------------------------------------------------------- BLEU
_SMALL, _TINY = 1e-9, 1e-15


def bleu_stats(hyp: str, refs: Sequence[str], ref_max: dict | None = None) -> np.ndarray:
    """``[testlen, closest reflen, guess_1..4, correct_1..4]`` of one tokenised candidate."""
    words = hyp.split()
    ref_lens = [len(r.split()) for r in refs]
    if ref_max is None:
        ref_max = _ref_max_counts(refs)
    testlen = len(words)
    reflen = min((abs(length - testlen), length) for length in ref_lens)[1]
    correct = [0, 0, 0, 0]
    for ngram, count in _counts(hyp, 4).items():
        correct[len(ngram) - 1] += min(ref_max.get(ngram, 0), count)
    return np.array([testlen, reflen, *[max(0, testlen - k + 1) for k in range(1, 5)], *correct], dtype=float)


def _ref_max_counts(refs: Sequence[str]) -> dict:
    out: dict[tuple, int] = {}
    for ref in refs:
        for ngram, count in _counts(ref, 4).items():
            out[ngram] = max(out.get(ngram, 0), count)
    return out


def bleu_from_stats(stats: np.ndarray) -> np.ndarray:
    """BLEU-1..4 from statistics rows ``(..., 10)`` (one row: that sentence's BLEU, as
    pycocoevalcap's per-sentence list; summed rows: its corpus BLEU)."""
    testlen, reflen = stats[..., 0], stats[..., 1]
    guess, correct = stats[..., 2:6], stats[..., 6:10]
    precisions = (correct + _TINY) / (guess + _SMALL)
    cumulative = np.cumprod(precisions, axis=-1)
    bleus = cumulative ** (1.0 / np.arange(1, 5))
    ratio = (testlen + _TINY) / (reflen + _SMALL)
    with np.errstate(divide="ignore"):
        penalty = np.where(ratio < 1, np.exp(1 - 1 / np.maximum(ratio, 1e-300)), 1.0)
    return bleus * penalty[..., None]


# ---------------------------------------------------------------- ROUGE-L
def _lcs(a: list[str], b: list[str]) -> int:
    """Length of the longest common subsequence: Hyyrö's bit-parallel form of the dynamic
    programme (one big-integer step per token of ``b``; the same integer as the table)."""
    masks: dict[str, int] = {}
    for i, x in enumerate(a):
        masks[x] = masks.get(x, 0) | (1 << i)
    full = (1 << len(a)) - 1
    v = full
    for y in b:
        u = v & masks.get(y, 0)
        v = ((v + u) | (v - u)) & full
    return len(a) - v.bit_count()


def rouge_l(hyp: str, refs: Sequence[str], beta: float = 1.2) -> float:
    """pycocoevalcap's ROUGE-L: best precision and best recall over references, F_β."""
    cand = hyp.split(" ")
    prec, rec = [], []
    for ref in refs:
        tokens = ref.split(" ")
        lcs = _lcs(tokens, cand)
        prec.append(lcs / len(cand))
        rec.append(lcs / len(tokens))
    p, r = max(prec), max(rec)
    return (1 + beta**2) * p * r / (r + beta**2 * p) if p != 0 and r != 0 else 0.0


# ---------------------------------------------------------------- CIDEr-D
class CiderD:
    """pycocoevalcap's ``Cider`` (CIDEr-D) with the references' vectors computed once."""

    def __init__(self, references: Sequence[Sequence[str]], n: int = 4, sigma: float = 6.0):
        self.n, self.sigma = n, sigma
        cooked = [[_counts(r, n) for r in refs] for refs in references]
        self.df: dict[tuple, float] = defaultdict(float)
        for refs in cooked:
            for ngram in {g for ref in refs for g in ref}:
                self.df[ngram] += 1
        self.ref_len = np.log(float(len(cooked)))
        self._idf: dict[tuple, float] = {}
        self.ref_vecs = [[self._vec(r) for r in refs] for refs in cooked]

    def _vec(self, counts):
        vec = [defaultdict(float) for _ in range(self.n)]
        norm = [0.0] * self.n
        length = 0
        for ngram, tf in counts.items():
            idf = self._idf.get(ngram)
            if idf is None:  # the same value for every string: computed once per n-gram
                idf = self._idf[ngram] = self.ref_len - np.log(max(1.0, self.df.get(ngram, 0.0)))
            k = len(ngram) - 1
            vec[k][ngram] = float(tf) * idf
            norm[k] += pow(vec[k][ngram], 2)
            if k == 1:  # pycocoevalcap counts bigrams as the "length" of the length penalty
                length += tf
        return vec, [np.sqrt(x) for x in norm], length

    def score(self, i: int, hyp: str) -> float:
        vec, norm, length = self._vec(_counts(hyp, self.n))
        total = np.zeros(self.n)
        for vec_r, norm_r, length_r in self.ref_vecs[i]:
            penalty = np.e ** (-(float(length - length_r) ** 2) / (2 * self.sigma**2))
            for k in range(self.n):
                ref_k = vec_r[k]  # n-grams absent from the reference add exactly 0.0: skipped
                value = sum(min(w, ref_k[g]) * ref_k[g] for g, w in vec[k].items() if g in ref_k)
                if norm[k] != 0 and norm_r[k] != 0:
                    value /= norm[k] * norm_r[k]
                total[k] += value * penalty
        return float(np.mean(total) / len(self.ref_vecs[i]) * 10.0)


# ---------------------------------------------------------------- METEOR
class Meteor:
    """One METEOR 1.5 JVM (pycocoevalcap's jar and flags); statistics pipelined through stdio."""

    def __init__(self):
        folder = _package_dir() / "meteor"
        self.java = java()
        self.stderr = tempfile.TemporaryFile()  # what the JVM says if it fails
        try:
            self.proc = subprocess.Popen(
                # pycocoevalcap's command; one GC thread, as the other core scores in Python
                [self.java, "-XX:+UseSerialGC", "-jar", "-Xmx2G", "meteor-1.5.jar", "-", "-", "-stdio",
                 "-l", "en", "-norm"],
                cwd=folder, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.stderr)
        except OSError as exc:
            raise MetricUnavailable(f"the METEOR JVM could not start: {exc}") from None

    def stats(self, hyps: Sequence[str], refs: Sequence[Sequence[str]]) -> list[str]:
        """The statistics line of each (candidate, references) pair, in order."""
        def write():
            try:
                for hyp, rs in zip(hyps, refs, strict=True):
                    hyp = jvm_text(hyp, meteor=True)
                    line = f"SCORE ||| {' ||| '.join(jvm_text(r, meteor=True) for r in rs)} ||| {hyp}\n"
                    self.proc.stdin.write(line.encode())
                self.proc.stdin.flush()
            except BrokenPipeError:  # the JVM died; the reader reports why
                pass

        writer = threading.Thread(target=write)
        writer.start()  # the JVM's output pipe would fill up if we wrote everything first
        lines = [self._readline() for _ in hyps]
        writer.join()
        return lines

    def evaluate(self, stats: Sequence[str]) -> tuple[float, list[float]]:
        """METEOR's corpus score of these segments and each segment's score."""
        try:
            self.proc.stdin.write(("EVAL ||| " + " ||| ".join(stats) + "\n").encode())
            self.proc.stdin.flush()
        except BrokenPipeError:
            pass  # the JVM died: _readline says why
        segments = [float(self._readline()) for _ in stats]
        return float(self._readline()), segments

    def _readline(self) -> str:
        line = self.proc.stdout.readline()
        if not line:
            self.proc.wait()
            raise MetricUnavailable(f"the METEOR JVM exited with status {self.proc.returncode}: "
                                    f"{_last_words(self.stderr)}")
        return line.decode().strip()

    def close(self) -> None:
        try:
            self.proc.stdin.close()
        except OSError:  # the JVM already died: its pipe is broken
            pass
        self.proc.kill()
        self.proc.wait()
        self.stderr.close()


_SHARED: Meteor | None = None
_SHARED_LOCK = threading.Lock()  # one caller at a time talks to the shared JVM


def shared_meteor() -> Meteor:
    """This process's METEOR JVM, started on first use and kept for later calls (as
    pycocoevalcap keeps its ``Meteor`` process): loading the paraphrase table takes ~7 s, so
    a run that scores many cells pays it once. A JVM that died, or one of another ``java``
    than the one now found (PATH or JAVA_HOME changed), is replaced."""
    global _SHARED
    if _SHARED is None or _SHARED.proc.poll() is not None or _SHARED.java != java():
        if _SHARED is not None:
            _SHARED.close()
        _SHARED = Meteor()
        atexit.register(_SHARED.close)
    return _SHARED


def _discard_shared(meteor: Meteor) -> None:
    """Forget a shared JVM that failed mid-conversation (its pipes may hold half an answer)."""
    global _SHARED
    if _SHARED is meteor:
        _SHARED = None
    meteor.close()


def _last_words(stream) -> str:
    """The last non-empty line a failed JVM wrote to ``stream`` (a file), or that it wrote none."""
    stream.seek(0)
    lines = [line.strip() for line in stream.read().decode(errors="replace").splitlines() if line.strip()]
    return lines[-1][:300] if lines else "it wrote nothing to stderr"


def meteor_flavours(hyps: list[list[str]], refs: list[list[str]],
                    meteor: Meteor | None = None) -> tuple[list[float], float, np.ndarray]:
    """Each rank's METEOR corpus score, the oracle's (per input the best segment) and every
    segment's score ``(inputs, N)``, in one JVM (``meteor``, by default the process's shared
    one, started early by the caller so that its paraphrase table loads meanwhile). One JVM:
    a second would load the table again (~7 CPU-s) and gains nothing on two cores. METEOR's
    statistics and EVAL lines carry no state between calls, so reuse changes no number."""
    with _SHARED_LOCK:
        meteor = meteor or shared_meteor()
        try:
            return _meteor_flavours(meteor, hyps, refs)
        except BaseException:
            _discard_shared(meteor)
            raise


def _meteor_flavours(meteor: Meteor, hyps: list[list[str]], refs: list[list[str]]):
    n = len(hyps[0])
    flat = meteor.stats([h for row in hyps for h in row], [r for r in refs for _ in range(n)])
    stats = [flat[i * n:(i + 1) * n] for i in range(len(hyps))]
    sentence, corpus = np.zeros((len(hyps), n)), []
    for k in range(n):
        score, sentence[:, k] = meteor.evaluate([row[k] for row in stats])
        corpus.append(score)
    best = sentence.argmax(1)  # ties: the first
    oracle, _ = meteor.evaluate([row[b] for row, b in zip(stats, best, strict=True)])
    return corpus, oracle, sentence


# ---------------------------------------------------------------- SPICE
def spice_scores(hyps: Sequence[str], refs: Sequence[Sequence[str]]) -> np.ndarray:
    """SPICE F-score of each (candidate, references) pair, as pycocoevalcap's ``Spice``."""
    spice_dir = _package_dir() / "spice"
    classpath = os.pathsep.join([str(spice_dir / "spice-1.0.jar"), str(spice_dir / "lib" / "*"),
                                 *(str(corenlp_dir() / jar) for jar in CORENLP_JARS)])
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        pairs = enumerate(zip(hyps, refs, strict=True))
        items = [{"image_id": i, "test": jvm_text(h), "refs": [jvm_text(x) for x in r]}
                 for i, (h, r) in pairs]
        (tmp / "in.json").write_text(json.dumps(items))
        subprocess.run([java(), "-Xmx8G", "-cp", classpath, "edu.anu.spice.SpiceScorer", str(tmp / "in.json"),
                        "-cache", str(tmp / "cache"), "-out", str(tmp / "out.json"), "-subset", "-silent"],
                       cwd=spice_dir, check=True)
        out = json.loads((tmp / "out.json").read_text())
        results = {item["image_id"]: item["scores"]["All"]["f"] for item in out}
    return np.array([float(results[i]) if results[i] is not None else math.nan for i in range(len(hyps))])


# ---------------------------------------------------------------- the family's pass
PTB_DIVERSITY = ("mbleu_4_ptb", "div_1_ptb", "div_2_ptb", "vocab_ptb")


def family(inputs: ScoreInputs) -> tuple[dict[str, CandidateScores | float], dict[str, str]]:
    """Every requested metric of this module in one pass: ``(results, missing)``, ``missing``
    the reason of each that cannot run here. Computed once per scoring call."""
    return inputs.shared(__name__, lambda: _family(inputs))


def _family(inputs: ScoreInputs):
    metrics = [m for m in COCO if m in inputs.requested]
    diversity = [m for m in PTB_DIVERSITY if m in inputs.requested]
    missing = unavailable([*metrics, *diversity])
    wanted = [m for m in metrics if m not in missing]
    if not wanted and not [m for m in diversity if m not in missing]:
        return {}, missing
    meteor = None
    if "meteor" in wanted:  # started first: its paraphrase table (~7 s) loads while PTB tokenises
        try:
            with _SHARED_LOCK:
                meteor = shared_meteor()
        except MetricUnavailable as exc:
            missing["meteor"] = str(exc)
            wanted.remove("meteor")
    try:
        hyps, refs = ptb_tokenize_inputs(inputs.candidates, inputs.references)
    except MetricUnavailable as exc:  # every metric here reads PTB tokens
        return {}, {**missing, **{m: str(exc) for m in [*wanted, *diversity]}}
    results, failed = _scores_from_tokens(hyps, refs, wanted, meteor)
    if diversity:
        results.update(_ptb_diversity_from_tokens(hyps))
    return results, {**missing, **failed}


def _result(inputs: ScoreInputs, name: str):
    results, missing = family(inputs)
    if name in missing:
        raise MetricUnavailable(missing[name])
    return results[name]


def ptb_tokenize_inputs(candidates: Sequence[Sequence[str]], references: Sequence[Sequence[str]]):
    """PTB tokens of every candidate and reference in one JVM, in the inputs' shapes."""
    n, inputs = len(candidates[0]), len(candidates)
    tokens = ptb_tokenize([c for row in candidates for c in row] + [r for rs in references for r in rs])
    hyps = [tokens[i * n:(i + 1) * n] for i in range(inputs)]
    refs, offset = [], inputs * n
    for r in references:
        refs.append(tokens[offset:offset + len(r)])
        offset += len(r)
    return hyps, refs


def _scores_from_tokens(hyps: list[list[str]], refs: list[list[str]], wanted: Sequence[str],
                        meteor: Meteor | None) -> tuple[dict[str, CandidateScores], dict[str, str]]:
    n, inputs = len(hyps[0]), len(hyps)
    out: dict[str, CandidateScores] = {}
    missing: dict[str, str] = {}
    with ThreadPoolExecutor(1) as pool:  # METEOR's JVM works on the other core meanwhile
        if meteor is not None:
            meteor = pool.submit(meteor_flavours, hyps, refs, meteor)
        if any(m.startswith("bleu_") for m in wanted):
            ref_max = [_ref_max_counts(r) for r in refs]
            stats = np.array([[bleu_stats(h, refs[i], ref_max[i]) for h in hyps[i]] for i in range(inputs)])
            per_sentence = bleu_from_stats(stats)  # (I, N, 4)
            for order in range(1, 5):
                if f"bleu_{order}" in wanted:
                    def corpus(rows, order=order):
                        return float(bleu_from_stats(rows.sum(0))[order - 1])

                    out[f"bleu_{order}"] = CandidateScores(per_sentence[..., order - 1], stats, corpus)
        sentence: dict[str, np.ndarray] = {}
        if "rouge_l" in wanted:
            sentence["rouge_l"] = np.array([[rouge_l(h, refs[i]) for h in hyps[i]] for i in range(inputs)])
        if {"cider_d", "spider"} & set(wanted):
            cider = CiderD(refs)
            sentence["cider_d"] = np.array([[cider.score(i, h) for h in hyps[i]] for i in range(inputs)])
        if {"spice", "spider"} & set(wanted):
            flat = spice_scores([h for row in hyps for h in row], [r for r in refs for _ in range(n)])
            sentence["spice"] = flat.reshape(inputs, n)
            sentence["spider"] = (sentence["cider_d"] + sentence["spice"]) / 2
        # means of sentence scores: oracle_corpus = max; max/spider is SPIDEr-max
        out.update({name: CandidateScores(scores) for name, scores in sentence.items() if name in wanted})
        if meteor is not None:
            try:
                corpus_by_rank, oracle, segments = meteor.result()
                fixed = {"top1": corpus_by_rank[0], "mean": float(np.mean(corpus_by_rank)),
                         "oracle_corpus": oracle}
                out["meteor"] = CandidateScores(segments, fixed=fixed)
            except MetricUnavailable as exc:  # the other metrics stand; METEOR reads n/a — why
                missing["meteor"] = str(exc)
    return out, missing


_PTB = "PTB (pycocoevalcap: lower-cased, punctuation removed)"
_PAPER = "max/: aac-metrics mult_cands_metric -max"


def _signature(references, tokenize) -> str:
    return "COCO metrics: pycocoevalcap on PTB-tokenised text; 0–1 scale (CIDEr-D 0–10)"


_CODE = "the LoRA-MCL code's utils_diversity.eval_div_stats"
# The family, each name read from the one pass (_result): name -> what the registry records.
FAMILY = {
    **{f"bleu_{n}": dict(kind="candidate", higher_is_better=True, paper=_PAPER,
                         description=f"COCO BLEU-{n} (pycocoevalcap)") for n in range(1, 5)},
    "meteor": dict(kind="candidate", higher_is_better=True, paper=_PAPER, own_corpus=True,
                   description="COCO METEOR 1.5 (corpus: METEOR's own aggregate)"),
    "rouge_l": dict(kind="candidate", higher_is_better=True, paper=_PAPER,
                    description="COCO ROUGE-L (F, beta 1.2), mean over inputs"),
    "cider_d": dict(kind="candidate", higher_is_better=True,
                    paper="max/: aac-metrics -max; the LoRA-MCL paper's captioning CIDEr oracle",
                    description="COCO CIDEr-D (0-10), mean over inputs"),
    "spice": dict(kind="candidate", higher_is_better=True, paper=_PAPER,
                  description="COCO SPICE 1.0 F-score (needs Stanford CoreNLP 3.6.0)"),
    "spider": dict(kind="candidate", higher_is_better=True, paper="aac-metrics spider_max",
                   description="SPIDEr = (CIDEr-D + SPICE) / 2; max/: SPIDEr-max"),
    "mbleu_4_ptb": dict(kind="set", higher_is_better=False, needs=("two_candidates",), paper=_CODE,
                        description="mean over ranks i of pycocoevalcap corpus BLEU-4 of candidate i vs the "
                        "other N-1 (lower = more diverse; the paper's captioning mBLEU-4)"),
    "div_1_ptb": dict(kind="set", higher_is_better=True, paper=_CODE,
                      description="distinct unigrams / (1e-6 + tokens) over the N candidates (the paper's "
                      "Div-1)"),
    "div_2_ptb": dict(kind="set", higher_is_better=True, paper=_CODE,
                      description="distinct bigrams / (1e-6 + tokens) over the N candidates (the paper's "
                      "Div-2)"),
    "vocab_ptb": dict(kind="set", higher_is_better=True, paper=_CODE,
                      description="distinct tokens over all candidates (the paper's vocabulary size)"),
}
for _name, _declared in FAMILY.items():
    _signed = {"signature": _signature} if _declared["kind"] == "candidate" else {}
    register_metric(_name, tokenisation=_PTB, group="jvm", **_signed, **_declared)(
        lambda inputs, _name=_name: _result(inputs, _name))


def ptb_diversity(candidates: Sequence[Sequence[str]]) -> MetricValues:
    """The LoRA-MCL paper's captioning diversity (its ``utils_diversity.eval_div_stats``), on
    PTB tokens: ``mbleu_4_ptb`` — for each candidate rank i, pycocoevalcap's corpus BLEU-4 of
    candidate i against the other N-1, averaged over ranks (lower = more diverse);
    ``div_1_ptb`` / ``div_2_ptb`` — per input distinct n-grams over its N candidates /
    (1e-6 + their tokens), averaged; ``vocab_ptb`` — distinct tokens over all candidates."""
    try:
        _package_dir()
        java()
        n = len(candidates[0])
        flat = ptb_tokenize([c for row in candidates for c in row])
    except MetricUnavailable as exc:
        return MetricValues({}, {m: str(exc) for m in PTB_DIVERSITY})
    return _ptb_diversity_from_tokens([flat[i * n:(i + 1) * n] for i in range(len(candidates))])


def _ptb_diversity_from_tokens(rows: list[list[str]]) -> MetricValues:
    n = len(rows[0])
    out = {f"div_{k}_ptb": float(np.mean([_distinct(row, k) for row in rows])) for k in (1, 2)}
    out["vocab_ptb"] = float(len({w for row in rows for c in row for w in c.split()}))
    if n >= 2:
        by_rank = []
        for i in range(n):
            stats = np.array([bleu_stats(row[i], row[:i] + row[i + 1:]) for row in rows])
            by_rank.append(bleu_from_stats(stats.sum(0))[3])
        out["mbleu_4_ptb"] = float(np.mean(by_rank))
    return MetricValues({m: out[m] for m in PTB_DIVERSITY if m in out})


def _distinct(captions: Sequence[str], n: int) -> float:
    words = [c.split() for c in captions]
    grams = {tuple(w[k:k + n]) for w in words for k in range(len(w) - n + 1)}
    return len(grams) / (1e-6 + sum(len(w) for w in words))


def coco_flavours(candidates: Sequence[Sequence[str]], references: Sequence[Sequence[str]],
                  metrics: Sequence[str] = COCO, diversity: bool = False) -> MetricValues:
    """Every reduction of the COCO metrics in ``metrics`` (and, with ``diversity``, the PTB
    diversity), through the registry; ``unavailable``: the reason of each that cannot run here."""
    return score(candidates, references, [*metrics, *(PTB_DIVERSITY if diversity else ())])
