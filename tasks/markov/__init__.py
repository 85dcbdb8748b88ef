"""Task ``markov``: mixtures of Markov chains with known modes (:mod:`tasks.markov.task`) and
their metrics (:mod:`tasks.markov.metrics`)."""

from tasks.markov.task import MarkovConfig, MarkovTask

__all__ = ["MarkovConfig", "MarkovTask"]
