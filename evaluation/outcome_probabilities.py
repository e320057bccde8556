"""Scores of predicted outcome probabilities: ROC-AUC, PR-AUC, Brier score, log-loss and base rate for
cart, purchase and cart-or-purchase.

The implementation is the ``evaluate`` module's own (``evaluation/metrics/outcome_probabilities/``,
which must load where this package is not installed); this module gives it its place in the package.
Labels of the actual sessions come from :func:`evaluation.outcome_metrics.outcome_labels`; score the
users it marks ``evaluated`` (an actual session with a page), as every other metric does.

Example:
    >>> from evaluation.outcome_probabilities import outcome_probability_scores
    >>> scores = outcome_probability_scores(
    ...     probabilities=[[0.8, 0.1, 0.8], [0.3, 0.5, 0.6], [0.6, 0.2, 0.7], [0.1, 0.0, 0.1]],
    ...     labels=[[1, 0], [1, 1], [0, 0], [0, 0]],
    ... )
    >>> scores["Cart ROC-AUC"], round(scores["Cart Brier"], 4), scores["CoP BaseRate"]
    (0.75, 0.225, 0.5)
"""

from __future__ import annotations

from evaluation.metrics.outcome_probabilities.probability_scores import (
    DEFAULT_EPSILON,
    OUTCOMES,
    PROBABILITY_METRICS,
    binary_probability_scores,
    outcome_label_columns,
    outcome_probability_scores,
)

__all__ = [
    "DEFAULT_EPSILON",
    "OUTCOMES",
    "PROBABILITY_METRICS",
    "binary_probability_scores",
    "outcome_label_columns",
    "outcome_probability_scores",
]
