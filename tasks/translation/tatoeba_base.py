"""Pre-train the ``tatoeba_en_de`` task's offline base once, and the task's data split.

The base is the Multi30k recipe's Marian (:mod:`tasks.translation.base`) trained on
Tatoeba's short everyday sentences — the 50k deu–eng list without any test English
sentence and without the adapters' half of the multi-reference sentences
(:func:`training_split`), 39 726 pairs — and, for longer sentences, the 22 000 Multi30k
pairs the Multi30k base was trained on. Seeded and resumable like the Multi30k base::

    python -m tasks.translation.tatoeba_base --work .mclbench_cache/tatoeba_base

writes ``tasks/data/tatoeba_base/`` (fp16 safetensors, tokenizer, log, summary with the
greedy multi-reference BLEU on the 575 test inputs).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

from harness.task import Example
from tasks.translation import base as tb
from tasks.translation.loaders import read_grouped_parallel, read_parallel, read_tab_pairs

DATA = Path(__file__).parents[1] / "data" / "mt_multiref"
BASE_DIR = Path(__file__).parents[1] / "data" / "tatoeba_base"


def multiref_test_inputs() -> list[Example]:
    """The Tatoeba test set's English sentences with ≥ 2 distinct German references."""
    grouped = read_grouped_parallel(DATA / "tatoeba-test-v2021-08-07.eng.gz",
                                    DATA / "tatoeba-test-v2021-08-07.deu.gz")
    return [e for e in grouped if len(e.references) >= 2]


def training_split(seed: int = 0) -> tuple[list[Example], list[Example]]:
    """``(base, adapters)``: the 50k list without any test English sentence, grouped by
    English sentence; the adapters get a seeded half of the multi-reference sentences."""
    held_out = {e.source for e in multiref_test_inputs()}
    grouped = [e for e in read_tab_pairs(DATA / "tatoeba-deu-50k.txt.gz") if e.source not in held_out]
    multi = [i for i, e in enumerate(grouped) if len(e.references) >= 2]
    random.Random(seed).shuffle(multi)
    adapters = set(multi[: len(multi) // 2])
    return ([e for i, e in enumerate(grouped) if i not in adapters],
            [e for i, e in enumerate(grouped) if i in adapters])


@dataclass
class Recipe(tb.Recipe):
    """The Tatoeba base: the Multi30k recipe (model, 2 000 steps) on Tatoeba's sentences."""


def base_pairs(seed: int = 0) -> list[tuple[str, str]]:
    """The base's (English, German) training pairs: every pair of its share of the 50k list
    and, for longer sentences, Multi30k's base pairs (the Multi30k base's own); no test
    English sentence among them."""
    held_out = {e.source for e in multiref_test_inputs()}
    base, _ = training_split(seed)
    multi30k = read_parallel(tb.DATA / "train.en.gz", [tb.DATA / "train.de.gz"])
    multi30k_base, _ = tb.base_split(len(multi30k), tb.Recipe.base_pairs, tb.Recipe.seed)
    return ([(e.source, ref) for e in base for ref in e.references]
            + [(multi30k[i].source, multi30k[i].references[0]) for i in multi30k_base
               if multi30k[i].source not in held_out])


def pretrain(r: Recipe, work: Path, output: Path, checkpoint_every: int = 250, eval_every: int = 500):
    _, adapters = training_split(r.seed)
    tb.fit(r, base_pairs(r.seed), ("adapter300_bleu", adapters[:300]),
           {"tatoeba_multiref_test": multiref_test_inputs()}, work, output, checkpoint_every, eval_every)


if __name__ == "__main__":
    tb.cli(__doc__, pretrain, Recipe, BASE_DIR, ".mclbench_cache/tatoeba_base")
