"""Where the ``evaluate`` metric modules live, so they load offline with ``evaluate.load(path)``.

Each module is a folder under ``evaluation/metrics/`` (a script of the same name and a metric
card README.md) that holds its logic beside the script: the plain functions of this package are
imported from there.

Example:
    >>> import evaluate
    >>> from evaluation.metric_modules import metric_path
    >>> page_generation = evaluate.load(metric_path("page_generation"))
    >>> page_generation.compute(predictions=[["home", "cart"]], references=[["cart"]], inputs=[["home"]])["IoP"]
    0.5
"""

from __future__ import annotations

from pathlib import Path

METRICS_DIR = Path(__file__).resolve().parent / "metrics"
METRIC_MODULES: tuple[str, ...] = (
    "page_generation",
    "browsing_outcomes",
    "page_ranking",
    "page_bleu",
    "outcome_probabilities",
)


def metric_path(name: str) -> str:
    """The folder of the ``evaluate`` module ``name`` (one of ``METRIC_MODULES``), for ``evaluate.load``.

    Example:
        >>> metric_path("page_bleu").endswith("page_bleu")
        True
    """
    if name not in METRIC_MODULES:
        raise ValueError(f"unknown metric module {name!r}; available: {', '.join(METRIC_MODULES)}")
    return str(METRICS_DIR / name)
