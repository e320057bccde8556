"""Page-generation metrics (paper §5.1.1, §5.2.1, §5.2.2): HR, IoA, IoP, IoU, Val-P, New-P.

The implementation and its definitions live in ``evaluation/metrics/page_generation/page_metrics.py``,
beside the ``evaluate`` module that wraps them, so that the module loads where this package is not installed.

Example:
    >>> from evaluation.page_metrics import page_generation_scores
    >>> page_generation_scores([["home", "shoes"]], [["shoes", "cart"]], [["home"]])["IoU"]
    0.3333333333333333
"""

from evaluation.metrics.page_generation.page_metrics import (
    PAGE_MEAN_METRICS,
    PAGE_VARIANCE_METRICS,
    aggregate_page_scores,
    page_generation_scores,
    per_user_page_scores,
)

__all__ = [
    "PAGE_MEAN_METRICS",
    "PAGE_VARIANCE_METRICS",
    "aggregate_page_scores",
    "page_generation_scores",
    "per_user_page_scores",
]
