"""Outcome prediction (paper §5.1.2, §5.2.3): accuracy, precision, recall for Cart, Purchase and
Cart-or-Purchase, and F1 for Cart-or-Purchase -- the paper's 10 figures (Table 4).

Per user, the prediction is positive when the generated session G contains the outcome page and
the truth is positive when the actual session A contains it; for Cart-or-Purchase either page
counts. The figures are computed over users exactly like scikit-learn's binary metrics with
``zero_division=0``: precision is 0 when nothing is predicted positive, recall is 0 when nothing
is actually positive, F1 = 2·TP / (2·TP + FP + FN) and is 0 when that denominator is 0.

As for the page metrics, a user whose actual session has no page is excluded and counted in
``n_excluded_empty_actual``; with no evaluated user every figure is NaN.

Example:
    >>> from evaluation.outcome_metrics import outcome_scores
    >>> scores = outcome_scores(
    ...     generated=[["shoes", "cart"], ["home"], ["purchase"]],
    ...     actual=[["cart"], ["home", "cart"], ["home"]],
    ... )
    >>> scores["Cart Acc"], scores["Cart Rec"], scores["Cart Prec"], scores["CoP F1"]
    (0.6666666666666666, 0.5, 1.0, 0.5)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .page_sets import check_users, page_set

# The outcome pages (tokenization.constants, pinned equal by the tests; see page_sets.SPECIALS for why not imported).
OUTCOME_CART = "cart"
OUTCOME_PURCHASE = "purchase"

# Column order of the paper's Table 4.
OUTCOME_METRICS: tuple[str, ...] = (
    "Cart Acc",
    "Purchase Acc",
    "CoP Acc",
    "Cart Rec",
    "Purchase Rec",
    "CoP Rec",
    "Cart Prec",
    "Purchase Prec",
    "CoP Prec",
    "CoP F1",
)


def outcome_labels(generated: Sequence[Sequence[str]], actual: Sequence[Sequence[str]]) -> dict[str, np.ndarray]:
    """Per-user outcome flags: ``predicted_cart``, ``actual_cart``, ``predicted_purchase``,
    ``actual_purchase`` (bool arrays of length N) and ``evaluated`` (False where A is empty).

    Example:
        >>> labels = outcome_labels([["cart"], ["home"]], [["home"], ["purchase"]])
        >>> labels["predicted_cart"].tolist(), labels["actual_purchase"].tolist()
        ([True, False], [False, True])
    """
    num_users = check_users(generated=generated, actual=actual)
    labels = {
        name: np.zeros(num_users, dtype=bool)
        for name in ("predicted_cart", "actual_cart", "predicted_purchase", "actual_purchase", "evaluated")
    }
    for user, (generated_pages, actual_pages) in enumerate(zip(generated, actual)):
        actual_set = page_set(actual_pages)
        if not actual_set:
            continue
        generated_set = set(generated_pages)
        labels["evaluated"][user] = True
        labels["predicted_cart"][user] = OUTCOME_CART in generated_set
        labels["predicted_purchase"][user] = OUTCOME_PURCHASE in generated_set
        labels["actual_cart"][user] = OUTCOME_CART in actual_set
        labels["actual_purchase"][user] = OUTCOME_PURCHASE in actual_set
    return labels


def binary_scores(predicted: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """Accuracy, precision, recall and F1 of boolean predictions (scikit-learn, ``zero_division=0``).

    Example:
        >>> import numpy as np
        >>> binary_scores(np.array([True, True, False, False]), np.array([True, False, True, False]))
        {'Acc': 0.5, 'Prec': 0.5, 'Rec': 0.5, 'F1': 0.5}
    """
    predicted = np.asarray(predicted, dtype=bool)
    truth = np.asarray(truth, dtype=bool)
    if predicted.size == 0:
        return {name: float("nan") for name in ("Acc", "Prec", "Rec", "F1")}
    true_positives = int(np.sum(predicted & truth))
    false_positives = int(np.sum(predicted & ~truth))
    false_negatives = int(np.sum(~predicted & truth))
    return {
        "Acc": float(np.mean(predicted == truth)),
        "Prec": _ratio(true_positives, true_positives + false_positives),
        "Rec": _ratio(true_positives, true_positives + false_negatives),
        "F1": _ratio(2 * true_positives, 2 * true_positives + false_positives + false_negatives),
    }


def aggregate_outcome_scores(labels: dict[str, np.ndarray]) -> dict[str, float | int]:
    """The 10 outcome figures and the user counts from :func:`outcome_labels` (or a slice of it).

    Example:
        >>> labels = outcome_labels([["cart"], ["home"]], [["cart"], ["purchase"]])
        >>> aggregate_outcome_scores(labels)["CoP Rec"]
        0.5
    """
    evaluated = np.asarray(labels["evaluated"], dtype=bool)
    flags = {name: np.asarray(values, dtype=bool)[evaluated] for name, values in labels.items()}
    by_outcome = {
        "Cart": binary_scores(flags["predicted_cart"], flags["actual_cart"]),
        "Purchase": binary_scores(flags["predicted_purchase"], flags["actual_purchase"]),
        "CoP": binary_scores(
            flags["predicted_cart"] | flags["predicted_purchase"], flags["actual_cart"] | flags["actual_purchase"]
        ),
    }
    scores: dict[str, float | int] = {}
    for metric in OUTCOME_METRICS:
        outcome, figure = metric.split(" ")
        scores[metric] = by_outcome[outcome][figure]
    scores["n_users"] = int(evaluated.sum())
    scores["n_excluded_empty_actual"] = int(evaluated.size - evaluated.sum())
    return scores


def outcome_scores(generated: Sequence[Sequence[str]], actual: Sequence[Sequence[str]]) -> dict[str, float | int]:
    """The paper's 10 outcome figures ("Cart Acc" ... "CoP F1", see ``OUTCOME_METRICS``), n_users and
    n_excluded_empty_actual.

    Example:
        >>> outcome_scores([["cart"], []], [["cart"], ["home"]])["Cart Acc"]
        1.0
    """
    return aggregate_outcome_scores(outcome_labels(generated, actual))


def _ratio(numerator: int, denominator: int) -> float:
    return numerator / denominator if denominator else 0.0
