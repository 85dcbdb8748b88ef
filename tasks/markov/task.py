"""Mixtures of Markov chains: the task where the modes are known, so recovery is measurable.

Data: sequences of ``seq_len`` states over ``num_states`` symbols, each drawn from one of
``num_components`` chains (component and first state uniform by default). The first
state is the prompt; the model predicts the remaining ``seq_len - 1``.
Default: the LoRA-MCL paper's toy, V = 2, M = 2, P_k = [[1-p, p], [q, 1-q]] with
(p, q) = (0.2, 0.9) and (0.8, 0.25). Any other size, or ``random_chains: true``, draws
seeded random chains: ``P_k = (1 - separation)·Q + separation·R_k`` with shared Q and
per-chain R_k whose rows are Dirichlet(``concentration``) draws.

Backbone: a small GPT-Neo built from a ``transformers`` config, random-init from the run
seed and frozen (as in the paper); LoRA on the attention projections.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from harness.probes import HypothesisModel
from harness.registry import register_task
from harness.task import Example, Figure, MetricInfo, Task, TrainingSet
from tasks.markov import metrics as mm

PAPER_TRANSITIONS = [
    [[0.8, 0.2], [0.9, 0.1]],  # p = 0.2, q = 0.9
    [[0.2, 0.8], [0.25, 0.75]],  # p = 0.8, q = 0.25
]


@dataclass
class MarkovConfig:
    num_components: int = 2
    num_states: int = 2
    seq_len: int = 32
    transitions: list[list[list[float]]] | None = None  # explicit (M, V, V) matrices
    weights: list[float] | None = None  # component weights; default uniform
    random_chains: bool = False  # draw random chains even for V = M = 2
    seed: int = 0  # the data seed: random chains and the sampled sequences
    separation: float = 1.0  # 0: all chains equal ... 1: independent random chains
    concentration: float = 1.0  # Dirichlet concentration of random rows (low = peaky)
    num_train: int = 8192
    num_val: int = 2048
    num_test: int = 64
    hidden_size: int = 128
    num_layers: int = 2
    num_heads: int = 4

    def validate(self) -> None:
        sizes = ("num_train", "num_val", "num_test", "hidden_size", "num_layers", "num_heads")
        small = [k for k in sizes if getattr(self, k) < 1]
        if small:
            raise ValueError(f"{small[0]} must be >= 1, got {getattr(self, small[0])}")
        if self.num_states < 2 or self.num_components < 1 or self.seq_len < 3:
            raise ValueError("need num_states >= 2, num_components >= 1 and seq_len >= 3")
        if not 0.0 <= self.separation <= 1.0 or self.concentration <= 0:
            raise ValueError("separation must lie in [0, 1] and concentration be > 0")
        if self.transitions is not None:
            t = np.asarray(self.transitions, dtype=float)
            want = (self.num_components, self.num_states, self.num_states)
            if t.shape != want:
                raise ValueError(
                    f"transitions has shape {t.shape}, expected (num_components, num_states, "
                    f"num_states) = {want}; set num_components/num_states to match"
                )
            if (t < 0).any() or not np.allclose(t.sum(-1), 1.0, atol=1e-6):
                raise ValueError("every row of transitions must be a probability distribution")
        if self.weights is not None and (
            len(self.weights) != self.num_components
            or min(self.weights) < 0
            or not np.isclose(sum(self.weights), 1.0)
        ):
            raise ValueError(f"weights must be {self.num_components} non-negative numbers summing to 1")


class _SequenceSet(TrainingSet):
    def __init__(self, seqs: np.ndarray, bos: int):
        n = len(seqs)
        self.input_ids = torch.cat([torch.full((n, 1), bos), torch.from_numpy(seqs)], 1)
        self.labels = self.input_ids.clone()
        self.labels[:, :2] = -100  # BOS and the first state are the prompt

    def __len__(self) -> int:
        return len(self.input_ids)

    def batch(self, indices: torch.Tensor) -> dict[str, torch.Tensor]:
        ids = self.input_ids[indices]
        return {"input_ids": ids, "attention_mask": torch.ones_like(ids),
                "labels": self.labels[indices]}


@register_task("markov")
class MarkovTask(Task):
    """Mixture of Markov chains (paper's toy by default); scores recovery of each chain."""

    Config = MarkovConfig
    version = "1"
    training_defaults = {
        "steps": 1000, "batch_size": 64, "lr": 5e-3,
        "target_modules": ["q_proj", "k_proj", "v_proj", "out_proj"],
    }
    quality_diversity = ("markov_tv", "unique")
    figures = (Figure("transitions", "matrices", {
        "reference": "true_transitions", "found": "prefix_transitions", "matching": "matching",
        "reference_title": "true chain", "reference_label": "chain", "title": "transition matrices"}),)
    own_metrics = {
        "markov_tv": MetricInfo(False, "mean row TV of each hypothesis's next-state "
                                "distribution after a one-state context vs. its matched true "
                                "chain (Hungarian matching)"),
        "markov_tv_prefix": MetricInfo(False, "as markov_tv, next-state distributions averaged "
                                       "over the prefixes of held-out sequences"),
        "markov_tv_mixture": MetricInfo(False, "K = 1 only: prefix-averaged chain vs. the "
                                        "stationary(visit)-weighted mixture P̄"),
        "val_nll": MetricInfo(False, "held-out NLL per token; best-of-K (oracle) for K > 1"),
        "nll_mixture_bound": MetricInfo(None, "H_mix/(T-1): the MLE optimum"),
        "nll_mcl_low": MetricInfo(None, "(H_mix - log K)/(T-1): lower end of the MCL band"),
        "nll_mcl_high": MetricInfo(None, "mean per-chain entropy rate: upper end of the MCL band"),
        "collapsed_hypotheses": MetricInfo(False, "hypotheses winning < 5 % of held-out sequences"),
    }

    def metric_names(self) -> list[str]:
        return ["unique"]

    def __init__(self, config: MarkovConfig):
        super().__init__(config)
        c = config
        self.bos = c.num_states
        self.transitions = self._chains()
        self.weights = (np.asarray(c.weights, dtype=float) if c.weights is not None
                        else np.full(c.num_components, 1.0 / c.num_components))
        self.initial = np.full(c.num_states, 1.0 / c.num_states)
        rng = np.random.default_rng([c.seed, 1])
        self.train_seqs, _ = self._sample(c.num_train, rng)
        self.val_seqs, self.val_components = self._sample(c.num_val, rng)
        self.test_seqs, _ = self._sample(c.num_test, rng)

    def _chains(self) -> np.ndarray:
        c = self.config
        if c.transitions is not None:
            return np.asarray(c.transitions, dtype=float)
        if c.num_states == 2 and c.num_components == 2 and not c.random_chains:
            return np.asarray(PAPER_TRANSITIONS)
        rng = np.random.default_rng([c.seed, 0])
        alpha = np.full(c.num_states, c.concentration)
        shared = rng.dirichlet(alpha, size=c.num_states)
        own = rng.dirichlet(alpha, size=(c.num_components, c.num_states))
        return (1 - c.separation) * shared[None] + c.separation * own

    def _sample(self, n: int, rng: np.random.Generator):
        return mm.sample_mixture(self.transitions, self.weights, self.initial,
                                 self.config.seq_len, n, rng)

    # ---------------------------------------------------------------------------- data
    def data_fingerprint(self) -> str:
        h = hashlib.sha256()
        for arr in (self.transitions, self.weights, self.train_seqs, self.val_seqs, self.test_seqs):
            h.update(np.ascontiguousarray(arr).tobytes())
        return h.hexdigest()

    def training_set(self) -> TrainingSet:
        return _SequenceSet(self.train_seqs, self.bos)

    def reference_set(self, examples):
        by_id = {e.id: i for i, e in enumerate(self.test_examples())}
        rows = [by_id[e.id] for e in examples]
        return _SequenceSet(self.test_seqs[rows], self.bos), list(range(len(examples)))

    def test_examples(self) -> list[Example]:
        return [
            Example(id=f"test-{i}", source=[int(s[0])], references=[" ".join(map(str, s[1:]))])
            for i, s in enumerate(self.test_seqs)
        ]

    # ------------------------------------------------------------------------ backbone
    def backbone_spec(self, seed: int) -> dict[str, Any]:
        c = self.config
        return {"arch": "gpt_neo", "vocab": c.num_states + 1, "positions": c.seq_len + 1,
                "hidden": c.hidden_size, "layers": c.num_layers, "heads": c.num_heads,
                "init_seed": seed}

    def build_backbone(self, seed: int):
        from transformers import GPTNeoConfig, GPTNeoForCausalLM

        c = self.config
        cfg = GPTNeoConfig(
            vocab_size=c.num_states + 1, max_position_embeddings=c.seq_len + 1,
            hidden_size=c.hidden_size, num_layers=c.num_layers, num_heads=c.num_heads,
            attention_types=[[["global"], c.num_layers]], intermediate_size=4 * c.hidden_size,
            embed_dropout=0.0, attention_dropout=0.0, resid_dropout=0.0,
            bos_token_id=self.bos, eos_token_id=None, pad_token_id=self.bos,
        )
        torch.manual_seed(seed)
        return GPTNeoForCausalLM(cfg)

    def load_backbone(self, directory):
        from transformers import GPTNeoForCausalLM

        return GPTNeoForCausalLM.from_pretrained(directory)

    def backbone_skeleton(self, seed: int):
        with torch.device("meta"):
            return self.build_backbone(seed)

    # ------------------------------------------------------------------------ decoding
    def prompt_batch(self, examples: list[Example]) -> dict[str, torch.Tensor]:
        ids = torch.tensor([[self.bos, *e.source] for e in examples])
        return {"input_ids": ids, "attention_mask": torch.ones_like(ids)}

    def generation_kwargs(self) -> dict[str, Any]:
        n = self.config.seq_len - 1
        return {"max_new_tokens": n, "min_new_tokens": n, "suppress_tokens": [self.bos],
                "pad_token_id": self.bos}

    def decode_outputs(self, prompt, sequences: torch.Tensor) -> list[str]:
        new = sequences[:, prompt["input_ids"].shape[1]:]
        return [" ".join(map(str, row.tolist())) for row in new]

    # ------------------------------------------------------------------------- scoring
    @torch.no_grad()
    def _log_probs(self, model, input_ids: torch.Tensor, chunk: int = 512) -> torch.Tensor:
        """``(K, N, L, V+1)`` next-token log-probabilities of every hypothesis (on the CPU,
        whatever device the model is on)."""
        device = next(model.parameters()).device
        chunks = [ids.to(device) for ids in input_ids.split(chunk)]
        return torch.cat([torch.log_softmax(model.forward_hypotheses(
            input_ids=ids, attention_mask=torch.ones_like(ids)).float(), -1).cpu() for ids in chunks], 1)

    def _next_states(self, logp: torch.Tensor) -> torch.Tensor:
        """Distributions over the states only (BOS dropped, renormalised)."""
        return torch.softmax(logp[..., : self.config.num_states], -1)

    @torch.no_grad()
    def probe(self, model, examples):
        """Each hypothesis's next-state distributions after one state (``one_token``,
        (K, V, V)), averaged over the held-out prefixes by current state (``prefix``,
        (K, V, V)), and its per-token NLL of every held-out sequence (``val_nll``, (K, N))."""
        if not isinstance(model, HypothesisModel):
            return {}  # a model without hypotheses: only the candidate metrics
        probes = super().probe(model, examples)  # the test sequences' NLL: oracle_nll
        v, k = self.config.num_states, model.num_hypotheses
        # one-state context: [BOS, s] -> distribution of the next state
        ctx = torch.tensor([[self.bos, s] for s in range(v)])
        one_token = self._next_states(self._log_probs(model, ctx))[:, :, -1].numpy()  # (K, V, V)
        # one pass over held-out sequences: positions 1..T-1 predict s_2..s_T
        val = _SequenceSet(self.val_seqs, self.bos).input_ids
        logp = self._log_probs(model, val)[:, :, 1:-1]  # (K, N, T-1, V+1)
        targets = torch.from_numpy(self.val_seqs[:, 1:])
        nll = -logp.gather(-1, targets.expand(k, *targets.shape)[..., None]).squeeze(-1)
        nll = nll.mean(-1).numpy()  # (K, N): per-token NLL of each sequence
        # averaged over real prefixes, grouped by the current state s_t
        current = torch.from_numpy(self.val_seqs[:, :-1]).reshape(-1)
        onehot = torch.nn.functional.one_hot(current, v).double()  # (N·(T-1), V)
        probs = self._next_states(logp).reshape(k, -1, v).double()
        sums = torch.einsum("nc,knv->kcv", onehot, probs)
        prefix_avg = (sums / onehot.sum(0).clamp(min=1)[None, :, None]).numpy()
        return {**probes, "one_token": one_token, "prefix": prefix_avg, "val_nll": nll}

    def score(self, examples, candidates, probes):
        c = self.config
        if not probes:
            return {}, {"unavailable": {
                "markov_tv": "the method's model has no hypotheses to probe (harness.probes)"}}
        one_token, prefix_avg, nll = probes["one_token"], probes["prefix"], probes["val_nll"]
        k = nll.shape[0]
        tv, pairs = mm.matched_tv(one_token, self.transitions)
        tv_prefix, _ = mm.matched_tv(prefix_avg, self.transitions)
        shares = mm.winner_shares(nll)
        bounds = mm.nll_bounds(self.transitions, self.weights, self.initial, c.seq_len, k,
                               seed=c.seed)
        scores = {
            "markov_tv": tv,
            "markov_tv_prefix": tv_prefix,
            "val_nll": float(nll.min(0).mean()),
            "nll_mixture_bound": bounds["mixture"],
            "nll_mcl_low": bounds["mcl_low"],
            "nll_mcl_high": bounds["mcl_high"],
            "collapsed_hypotheses": float(mm.collapsed_hypotheses(shares)),
        }
        if k == 1:
            mixture = mm.visit_weighted_mixture(self.transitions, self.weights, self.initial,
                                                c.seq_len)
            scores["markov_tv_mixture"] = float(mm.total_variation(prefix_avg[0], mixture).mean())
        for h, share in enumerate(shares):
            scores[f"winner_share_{h}"] = float(share)
        details = {
            "true_transitions": self.transitions.tolist(),
            "one_token_transitions": one_token.tolist(),
            "prefix_transitions": prefix_avg.tolist(),
            "matching": pairs,
            "winner_shares": shares.tolist(),
        }
        return scores, details
