"""mclbench's Python entry points beside the ``mclbench`` CLI (the engine is ``harness``).

HF ``evaluate`` modules of the candidate-set metrics ship inside the package, so they load
offline by path::

    import evaluate, mclbench
    bleu = evaluate.load(mclbench.evaluate_module_path("multi_candidate_bleu"))
    bleu.compute(predictions=[["a cat", "the cat"]], references=[["a cat sits", "the cat"]])

Each returns exactly what ``mclbench score --metrics <its metrics> --format json`` prints.
"""

from __future__ import annotations

from pathlib import Path

MODULES = Path(__file__).parent / "evaluate_modules"
EVALUATE_MODULES = ("multi_candidate_bleu", "multi_candidate_chrf", "multi_candidate_coco",
                    "candidate_diversity", "mode_coverage", "multi_candidate_metrics")


def evaluate_module_path(name: str) -> str:
    """The folder of the ``evaluate`` module ``name`` (one of :data:`EVALUATE_MODULES`), to
    pass to ``evaluate.load``: its script and its metric card (README.md)."""
    if name not in EVALUATE_MODULES:
        raise ValueError(f"no mclbench evaluate module {name!r}; there are {', '.join(EVALUATE_MODULES)}")
    return str(MODULES / name)
