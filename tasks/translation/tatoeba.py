"""Tasks ``tatoeba_en_de`` and ``wmt14_en_de_multiref``: English→German with several human
references per source, where the candidates can cover *different correct* translations.

``tatoeba_en_de`` — test inputs: the English sentences of the Tatoeba test set v2021-08-07
with ≥ 2 distinct German translations (575; ``num_test`` takes the first ones). Training
data: Tatoeba's 50k deu–eng list with every test English sentence removed, grouped by
English sentence; a seeded half of its multi-reference sentences trains the adapters
(every (source, reference) pair is an example), everything else pre-trained the committed
base once (``tasks/data/tatoeba_base``; recipe: :mod:`tasks.translation.tatoeba_base`).
Besides the translation metrics it reports the address form of "you" (:mod:`tasks.translation.address`): per
input the forms (du / ihr / Sie) among the references, and per method ``modes_covered``
(forms of the references that some candidate uses), ``mode_recall`` (that over the
references' forms) and the share of candidates in each form.

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

from harness.metrics import diversity as dv
from harness.metrics.catalogue import MODE_COVERAGE, MetricInfo, metric_info
from harness.metrics.modes import mode_coverage
from harness.metrics.ngrams import NgramTable
from harness.registry import register_task
from harness.task import Example, Figure
from tasks.translation import tatoeba_base as tab
from tasks.translation.address import MODES, address_form
from tasks.translation.loaders import read_fairseq_multiref
from tasks.translation.task import TranslationTask

LOO_REFERENCES = 2  # every test input has at least two references


@register_task("tatoeba_en_de")
class TatoebaTask(TranslationTask):
    """Tatoeba en→de, 2–6 references per sentence: translation metrics, forms of address covered.

    The forms of address (du / ihr / Sie) of the references are the modes; see the module doc."""

    version = "1"
    base = tab
    rebuild_env = "MCLBENCH_TATOEBA_BASE"
    quality_diversity = ("loo_bleu", "pairwise_bleu")  # the paper's translation plane
    figures = (Figure("address_forms", "bars", {
        "metrics": ["mode_recall", *(f"share_{m}" for m in MODES)],
        "labels": {"mode_recall": "mode recall (forms of the references used)",
                   **{f"share_{m}": f"share of candidates: {m}" for m in MODES}},
        "ylabel": "fraction", "title": "forms of address of the N candidates"}),)

    def default_train(self) -> list[Example]:
        return tab.training_split(tab.Recipe.seed)[1]

    def default_test(self) -> list[Example]:
        return tab.multiref_test_inputs()

    @property
    def metrics(self) -> dict[str, MetricInfo]:  # type: ignore[override]
        out = super().metrics
        out["loo_bleu"] = MetricInfo(
            True, f"leave-one-out multi-reference BLEU on every input's first {LOO_REFERENCES} references "
            "(fairseq's definition needs the same M for every input; Tatoeba's M is 2-6)",
            self._tokenised(metric_info("loo_bleu")).tokenisation)
        if not self.config.modes_field:  # else the data's labels (the base's entries)
            out["modes_covered"] = MetricInfo(True, "address forms (du/ihr/Sie) of the references that some "
                                              "candidate uses, per input with a form")
            out["mode_recall"] = MetricInfo(True, "modes_covered / the forms among the input's references")
        for mode in MODES:
            out[f"share_{mode}"] = MetricInfo(None, f"share of the candidates (inputs with a form) in the "
                                              f"{mode} form")
        return out

    def score(self, examples, candidates, probes):
        values, extras = super().score(examples, candidates, probes)
        values["loo_bleu"] = dv.loo_bleu(candidates, [e.references[:LOO_REFERENCES] for e in examples],
                                         NgramTable(self.tokenize))
        refs = [e.references for e in examples]
        coverage = address_coverage([e.source for e in examples], refs, candidates)
        if self.config.modes_field:  # the data's own mode labels give the coverage; the shares stay
            coverage = {k: v for k, v in coverage.items() if k not in MODE_COVERAGE}
        values.update(coverage)
        return values, extras


def address_coverage(sources: list[str], references: list[list[str]],
                     candidates: list[list[str]]) -> dict[str, float]:
    """``modes_covered`` and ``mode_recall`` (:func:`harness.metrics.modes.mode_coverage`, the
    address-form classifier labelling references and candidates) and ``share_<mode>``, over
    the inputs whose references use at least one form of address."""
    ref_forms = [[f if f in MODES else None for f in (address_form(r, src) for r in refs)]
                 for src, refs in zip(sources, references, strict=True)]
    used = [[address_form(c, src) for c in cands] for src, cands in zip(sources, candidates, strict=True)]
    values = mode_coverage(candidates, references, ref_forms, used)
    if values.unavailable:
        return {}
    forms = [f for labels, fs in zip(ref_forms, used, strict=True) if any(labels) for f in fs]
    return {**values, **{f"share_{m}": forms.count(m) / len(forms) for m in MODES}}


@register_task("wmt14_en_de_multiref")
class Wmt14MultirefTask(TranslationTask):
    """newstest2014 en→de with 11 references (Ott et al. 2018): the paper's test set and metrics.

    The offline default is the Multi30k base (wrong domain; see the module doc)."""

    version = "1"
    quality_diversity = ("loo_bleu", "pairwise_bleu")  # the paper's translation plane

    def default_test(self) -> list[Example]:
        return read_fairseq_multiref(tab.DATA / "wmt14-en-de.extra_refs.gz")
