"""Scores of predicted outcome probabilities: ROC-AUC, PR-AUC, Brier score, log-loss and base rate.

Per user the model gives P(cart), P(purchase) and P(cart-or-purchase) for the next session (e.g.
the share of S sampled sessions that contain the outcome page); the labels say whether the actual
next session contains ``cart`` and ``purchase``, and cart-or-purchase (CoP) is positive when either
is. Per outcome, over users (scikit-learn's definitions):

- ROC-AUC: ``roc_auc_score``; PR-AUC: average precision, ``average_precision_score``;
- Brier: mean squared error of the probability, ``brier_score_loss`` (lower is better);
- LogLoss: ``log_loss`` of the probabilities clipped to ``[epsilon, 1 - epsilon]`` (lower is
  better): a share of S samples is often exactly 0 or 1, and the clip bounds the cost of one
  confident miss at ``-ln(epsilon)`` (6.9 nats for the default ``epsilon=1e-3``);
- BaseRate: the share of positive users, the Brier and PR-AUC a constant guess is judged against.

ROC-AUC and PR-AUC need both classes: when an outcome has only positive or only negative users,
both are ``None``, the reason is listed in ``undefined_auc`` and counted in ``n_undefined_auc``.
With no user at all every figure is ``None``.

This file imports nothing from the HeTLM package, so the ``evaluate`` module beside it loads where
the package is not installed.

Example:
    >>> scores = outcome_probability_scores(
    ...     probabilities=[[0.9, 0.1, 0.9], [0.2, 0.6, 0.7], [0.4, 0.0, 0.4], [0.1, 0.2, 0.3]],
    ...     labels=[[1, 0], [0, 1], [1, 0], [0, 0]],
    ... )
    >>> scores["Cart ROC-AUC"], scores["CoP ROC-AUC"], round(scores["Cart Brier"], 4), scores["CoP BaseRate"]
    (1.0, 1.0, 0.105, 0.75)
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from sklearn.metrics import average_precision_score, brier_score_loss, log_loss, roc_auc_score

logger = logging.getLogger(__name__)

# Column order of ``probabilities``; ``labels`` holds the first two, CoP is their union.
OUTCOMES: tuple[str, ...] = ("Cart", "Purchase", "CoP")
PROBABILITY_METRICS: tuple[str, ...] = ("ROC-AUC", "PR-AUC", "Brier", "LogLoss", "BaseRate")
DEFAULT_EPSILON = 1e-3


def binary_probability_scores(
    probabilities: ArrayLike, labels: ArrayLike, epsilon: float = DEFAULT_EPSILON
) -> dict[str, float | None]:
    """ROC-AUC, PR-AUC, Brier, LogLoss and BaseRate of one outcome (see the module docstring).

    ROC-AUC and PR-AUC are ``None`` when ``labels`` hold one class only; every figure is ``None``
    for no user. Raises ``ValueError`` for a probability outside [0, 1] (or NaN), a label other
    than 0/1, arrays of different lengths or an ``epsilon`` outside (0, 0.5).

    Example:
        >>> scores = binary_probability_scores([0.8, 0.3, 0.6, 0.1], [1, 1, 0, 0])
        >>> scores["ROC-AUC"], scores["PR-AUC"], round(scores["Brier"], 4), scores["BaseRate"]
        (0.75, 0.8333333333333333, 0.225, 0.5)
        >>> binary_probability_scores([0.8, 0.3], [1, 1])["ROC-AUC"] is None
        True
    """
    if not 0.0 < epsilon < 0.5:
        raise ValueError(f"epsilon must lie in (0, 0.5) to clip probabilities for the log-loss, got {epsilon}")
    probabilities = _checked_probabilities(probabilities, "probabilities")
    labels = _checked_labels(labels, "labels")
    if probabilities.shape != labels.shape:
        raise ValueError(
            f"one probability and one label per user are needed, got {probabilities.size} probabilities "
            f"and {labels.size} labels"
        )
    if labels.size == 0:
        return dict.fromkeys(PROBABILITY_METRICS)
    both_classes = 0 < labels.sum() < labels.size
    return {
        "ROC-AUC": float(roc_auc_score(labels, probabilities)) if both_classes else None,
        "PR-AUC": float(average_precision_score(labels, probabilities)) if both_classes else None,
        "Brier": float(brier_score_loss(labels, probabilities, pos_label=1)),
        "LogLoss": float(log_loss(labels, np.clip(probabilities, epsilon, 1.0 - epsilon), labels=[0, 1])),
        "BaseRate": float(labels.mean()),
    }


def outcome_label_columns(labels: ArrayLike) -> dict[str, np.ndarray]:
    """The boolean label of each outcome of ``OUTCOMES`` from per-user ``[cart, purchase]`` labels (CoP = either).

    Example:
        >>> {outcome: column.tolist() for outcome, column in outcome_label_columns([[1, 0], [0, 0]]).items()}
        {'Cart': [True, False], 'Purchase': [False, False], 'CoP': [True, False]}
    """
    labels = _checked_labels(labels, "labels", columns=2)
    return {"Cart": labels[:, 0], "Purchase": labels[:, 1], "CoP": labels[:, 0] | labels[:, 1]}


def outcome_probability_scores(
    probabilities: ArrayLike, labels: ArrayLike, epsilon: float = DEFAULT_EPSILON
) -> dict[str, Any]:
    """The five figures for Cart, Purchase and CoP (keys such as ``"Cart ROC-AUC"``, ``"CoP Brier"``),
    ``n_users``, ``n_undefined_auc`` (outcomes whose labels hold one class) and ``undefined_auc`` (the
    reasons, one line per such outcome).

    Args:
        probabilities: per user ``[P(cart), P(purchase), P(cart or purchase)]``, shape (N, 3).
        labels: per user ``[cart, purchase]`` of the actual next session (0/1 or bool), shape (N, 2).
        epsilon: the clip of the probabilities for the log-loss.

    Example:
        >>> scores = outcome_probability_scores([[0.5, 0.2, 0.6], [0.1, 0.1, 0.2]], [[1, 0], [0, 0]])
        >>> scores["Cart ROC-AUC"], scores["Purchase ROC-AUC"], scores["n_undefined_auc"]
        (1.0, None, 1)
        >>> scores["undefined_auc"]
        ['Purchase: 0 of 2 users positive (one class), ROC-AUC and PR-AUC undefined']
    """
    probabilities = _checked_probabilities(probabilities, "probabilities", columns=len(OUTCOMES))
    outcome_labels = outcome_label_columns(labels)
    n_users = len(outcome_labels["Cart"])
    if len(probabilities) != n_users:
        raise ValueError(
            f"one row of probabilities and one row of labels per user are needed, got {len(probabilities)} "
            f"and {n_users}"
        )
    scores: dict[str, Any] = {}
    undefined: list[str] = []
    for column, outcome in enumerate(OUTCOMES):
        outcome_scores = binary_probability_scores(probabilities[:, column], outcome_labels[outcome], epsilon)
        scores.update({f"{outcome} {metric}": value for metric, value in outcome_scores.items()})
        if outcome_scores["ROC-AUC"] is None:
            positives = int(outcome_labels[outcome].sum())
            undefined.append(
                f"{outcome}: {positives} of {n_users} users positive (one class), ROC-AUC and PR-AUC undefined"
            )
    for reason in undefined:
        logger.warning("outcome probabilities: %s", reason)
    scores["n_users"] = n_users
    scores["n_undefined_auc"] = len(undefined)
    scores["undefined_auc"] = undefined
    return scores


def _checked_probabilities(values: ArrayLike, name: str, columns: int | None = None) -> np.ndarray:
    array = _checked_shape(np.asarray(values, dtype=np.float64), name, columns)
    outside = ~((array >= 0.0) & (array <= 1.0))  # NaN is outside too
    if outside.any():
        user = int(np.argwhere(outside)[0][0])
        raise ValueError(f"{name}[{user}]: probabilities must lie in [0, 1], got {array[user].tolist()}")
    return array


def _checked_labels(values: ArrayLike, name: str, columns: int | None = None) -> np.ndarray:
    array = _checked_shape(np.asarray(values), name, columns)
    if array.dtype != bool:
        not_binary = ~np.isin(array, (0, 1))
        if not_binary.any():
            user = int(np.argwhere(not_binary)[0][0])
            raise ValueError(f"{name}[{user}]: labels must be 0/1 or bool, got {array[user].tolist()}")
    return array.astype(bool)


def _checked_shape(array: np.ndarray, name: str, columns: int | None) -> np.ndarray:
    expected = (-1,) if columns is None else (-1, columns)
    if array.size == 0:
        return array.reshape((0,) if columns is None else (0, columns))
    if array.ndim != len(expected) or (columns is not None and array.shape[1] != columns):
        shape = "one value per user" if columns is None else f"{columns} values per user"
        raise ValueError(f"{name}: expected {shape}, got an array of shape {array.shape}")
    return array
