"""Outcome prediction (paper §5.1.2, §5.2.3): accuracy, precision, recall for Cart, Purchase and
Cart-or-Purchase, and F1 for Cart-or-Purchase (Table 4).

The implementation and its definitions live in ``evaluation/metrics/browsing_outcomes/outcome_metrics.py``,
beside the ``evaluate`` module that wraps them, so that the module loads where this package is not installed.

Example:
    >>> from evaluation.outcome_metrics import outcome_scores
    >>> outcome_scores([["shoes", "cart"], ["home"]], [["cart"], ["home", "cart"]])["Cart Rec"]
    0.5
"""

from evaluation.metrics.browsing_outcomes.outcome_metrics import (
    OUTCOME_CART,
    OUTCOME_METRICS,
    OUTCOME_PURCHASE,
    aggregate_outcome_scores,
    binary_scores,
    outcome_labels,
    outcome_scores,
)

__all__ = [
    "OUTCOME_CART",
    "OUTCOME_METRICS",
    "OUTCOME_PURCHASE",
    "aggregate_outcome_scores",
    "binary_scores",
    "outcome_labels",
    "outcome_scores",
]
