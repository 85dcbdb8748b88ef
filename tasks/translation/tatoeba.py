"""Tasks ``tatoeba_en_de`` and ``wmt14_en_de_multiref``: English→German with several human
references per source, where the candidates can cover *different correct* translations.

``tatoeba_en_de`` — test inputs: the English sentences of the Tatoeba test set v2021-08-07
with ≥ 2 distinct German translations (575; ``num_test`` takes the first ones). Training
data: Tatoeba's 50k deu–eng list with every test English sentence removed, grouped by
English sentence; a seeded half of its multi-reference sentences trains the adapters
(every (source, reference) pair is an example), everything else pre-trained the committed
base once (``tasks/data/tatoeba_base``; recipe: :mod:`tasks.translation.tatoeba_base`).
Its number of references varies (2–6), so its leave-one-out BLEU is ``loo_bleu_2refs`` (on
every input's first two references). Besides the translation metrics it reports the address
form of "you" (:mod:`tasks.translation.address`): the classifier labels every reference and
candidate with its form (du / ihr / Sie), which the registered ``modes_covered`` (forms of the
references that some candidate uses) and ``mode_recall`` (that over the references' forms)
read as mode labels, and the share of candidates in each form.

``wmt14_en_de_multiref`` — the 500 newstest2014 sources with the original and 10 extra
professional references (Ott et al., 2018), the test set of the LoRA-MCL paper's
translation experiment, scored with its metrics (LOO-BLEU, pairwise BLEU, ``max/bleu``,
refs covered, oracle NLL). The adapters train on Multi30k as in ``translation`` on the
Multi30k base: the domain is wrong (news vs. image captions), so its numbers say nothing
about the paper's; it is the documented path to the paper's figure with a real
checkpoint: ``task.backbone=<ALMA-style causal LM or seq2seq folder>`` and training data
(``task.train_jsonl=...``).
"""

from __future__ import annotations

from harness.registry import register_task
from harness.task import Example, Figure, MetricInfo
from tasks.translation import tatoeba_base as tab
from tasks.translation.address import MODES, address_form
from tasks.translation.loaders import read_fairseq_multiref
from tasks.translation.task import TranslationTask


@register_task("tatoeba_en_de")
class TatoebaTask(TranslationTask):
    """Tatoeba en→de, 2–6 references per sentence: translation metrics, forms of address covered.

    The forms of address (du / ihr / Sie) of the references are the modes; see the module doc."""

    version = "1"
    base = tab
    rebuild_env = "MCLBENCH_TATOEBA_BASE"
    quality_diversity = ("loo_bleu_2refs", "pairwise_bleu")  # the paper's translation plane
    figures = (Figure("address_forms", "bars", {
        "metrics": ["mode_recall", *(f"share_{m}" for m in MODES)],
        "labels": {"mode_recall": "mode recall (forms of the references used)",
                   **{f"share_{m}": f"share of candidates: {m}" for m in MODES}},
        "ylabel": "fraction", "title": "forms of address of the N candidates"}),)

    def default_train(self) -> list[Example]:
        return tab.training_split(tab.Recipe.seed)[1]

    def default_test(self) -> list[Example]:
        return tab.multiref_test_inputs()

    own_metrics = {f"share_{mode}": MetricInfo(None, f"share of the candidates (inputs with a form) in the "
                                                f"{mode} form") for mode in MODES}

    def loo_metric(self, counts: set[int]) -> list[str]:
        return ["loo_bleu_2refs"]  # 2-6 references: fairseq's loo_bleu is undefined

    def metric_names(self) -> list[str]:
        names = super().metric_names()
        return names if self.config.modes_field else [*names, "modes_covered", "mode_recall"]

    def mode_labels(self, examples, candidates):
        """The data's labels where ``modes_field`` names them, else the address-form classifier's
        of every reference and candidate."""
        if self.config.modes_field:
            return super().mode_labels(examples, candidates)
        return address_labels([e.source for e in examples], [e.references for e in examples], candidates)

    def score(self, examples, candidates, probes):
        sources, refs = [e.source for e in examples], [e.references for e in examples]
        labels, used = address_labels(sources, refs, candidates)
        forms = [f for refs, fs in zip(labels, used, strict=True) if any(refs) for f in fs]
        return {f"share_{m}": forms.count(m) / len(forms) for m in MODES} if forms else {}, {}


def address_labels(sources: list[str], references: list[list[str]],
                   candidates: list[list[str]]) -> tuple[list[list[str | None]], list[list[str | None]]]:
    """The address form of every reference (None: none of :data:`MODES`) and every candidate."""
    ref_forms = [[f if f in MODES else None for f in (address_form(r, src) for r in refs)]
                 for src, refs in zip(sources, references, strict=True)]
    used = [[address_form(c, src) for c in cands] for src, cands in zip(sources, candidates, strict=True)]
    return ref_forms, used


@register_task("wmt14_en_de_multiref")
class Wmt14MultirefTask(TranslationTask):
    """newstest2014 en→de with 11 references (Ott et al. 2018): the paper's test set and metrics.

    The offline default is the Multi30k base (wrong domain; see the module doc)."""

    version = "1"
    quality_diversity = ("loo_bleu", "pairwise_bleu")  # the paper's translation plane

    def default_test(self) -> list[Example]:
        return read_fairseq_multiref(tab.DATA / "wmt14-en-de.extra_refs.gz")
