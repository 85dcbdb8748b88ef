"""Task ``translation``: the plugin (:mod:`tasks.translation.task`), the readers of parallel
and multi-reference files (:mod:`tasks.translation.loaders`) and the offline base's recipe
(:mod:`tasks.translation.base`)."""

from tasks.translation.task import TranslationConfig, TranslationTask

__all__ = ["TranslationConfig", "TranslationTask"]
