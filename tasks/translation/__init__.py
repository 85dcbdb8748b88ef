"""Translation tasks: ``translation`` (:mod:`tasks.translation.task`, Multi30k by default),
``tatoeba_en_de`` and ``wmt14_en_de_multiref`` (:mod:`tasks.translation.tatoeba`, several
references per source); the readers of parallel and multi-reference files
(:mod:`tasks.translation.loaders`); the offline bases' recipes (:mod:`tasks.translation.base`,
:mod:`tasks.translation.tatoeba_base`); the address-form detector
(:mod:`tasks.translation.address`)."""

from tasks.translation.task import TranslationConfig, TranslationTask
from tasks.translation.tatoeba import TatoebaTask, Wmt14MultirefTask

__all__ = ["TatoebaTask", "TranslationConfig", "TranslationTask", "Wmt14MultirefTask"]
