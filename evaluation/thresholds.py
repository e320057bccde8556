"""Decision thresholds chosen on the validation split, for probabilistic predictions.

- Outcomes: the predicted outcome is ``P >= theta``; :func:`f1_optimal_threshold` picks the theta
  that maximises F1 on validation predictions (objective: F1 of the positive class), and
  :func:`f1_optimal_outcome_thresholds` does so for Cart, Purchase and Cart-or-Purchase.
- Pages: the predicted page set is ``{page : P(page) >= tau}`` (:func:`pages_above_threshold`);
  :func:`iou_optimal_page_threshold` picks the tau that maximises the mean IoU over validation users
  (the IoU of :func:`evaluation.page_metrics.per_user_page_scores`).

Candidates are the distinct validation probabilities (a share of S samples takes at most S + 1
values), so every distinct decision is tried; ties go to the largest threshold (the fewest
positives). Apply the chosen threshold to the test split unchanged.

Example:
    >>> choice = f1_optimal_threshold([0.9, 0.6, 0.4, 0.2], [True, False, True, False])
    >>> choice.threshold, round(choice.score, 4)
    (0.4, 0.8)
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from sklearn.metrics import precision_recall_curve

from evaluation.outcome_probabilities import OUTCOMES, outcome_label_columns
from evaluation.page_metrics import per_user_page_scores

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ThresholdChoice:
    """A threshold chosen on validation: its value, the objective reached there and its name.

    ``note`` explains a choice the objective could not make (e.g. no positive validation user).
    """

    threshold: float
    score: float
    objective: str
    n_users: int
    note: str | None = None


def f1_optimal_threshold(probabilities: ArrayLike, labels: ArrayLike) -> ThresholdChoice:
    """The theta maximising F1 of ``probabilities >= theta`` against ``labels`` (the validation users).

    With no positive label F1 is 0 for every theta: the choice is then a theta just above the largest
    probability (predicting no positive, the accuracy-optimal choice), with a note and a warning.
    Raises ``ValueError`` for no user, lengths that differ or probabilities outside [0, 1].

    Example:
        >>> f1_optimal_threshold([0.5, 0.5, 0.1], [1, 0, 0]).threshold
        0.5
        >>> choice = f1_optimal_threshold([0.3, 0.2], [0, 0])
        >>> choice.threshold > 0.3, choice.score, choice.note
        (True, 0.0, 'no positive validation user: F1 is 0 for every threshold; predicting no positive')
    """
    probabilities = np.asarray(probabilities, dtype=np.float64)
    labels = np.asarray(labels, dtype=bool)
    if probabilities.ndim != 1 or probabilities.shape != labels.shape:
        raise ValueError(
            f"one probability and one label per validation user are needed, got shapes {probabilities.shape} "
            f"and {labels.shape}"
        )
    if probabilities.size == 0:
        raise ValueError("no validation user to choose a threshold on")
    if not np.all((probabilities >= 0.0) & (probabilities <= 1.0)):
        raise ValueError("probabilities must lie in [0, 1] (NaN found or a value outside)")
    if not labels.any():
        note = "no positive validation user: F1 is 0 for every threshold; predicting no positive"
        logger.warning("threshold selection: %s", note)
        return ThresholdChoice(float(np.nextafter(probabilities.max(), np.inf)), 0.0, "F1", labels.size, note)
    precision, recall, thresholds = precision_recall_curve(labels, probabilities)
    # The last precision/recall pair has no threshold (it is "predict nothing").
    precision, recall = precision[:-1], recall[:-1]
    denominator = precision + recall
    f1 = np.divide(2 * precision * recall, denominator, out=np.zeros_like(denominator), where=denominator > 0)
    best = len(f1) - 1 - int(np.argmax(f1[::-1]))  # thresholds increase: the last maximum is the largest
    return ThresholdChoice(float(thresholds[best]), float(f1[best]), "F1", labels.size)


def f1_optimal_outcome_thresholds(probabilities: ArrayLike, labels: ArrayLike) -> dict[str, ThresholdChoice]:
    """:func:`f1_optimal_threshold` for each outcome (Cart, Purchase, CoP) of the validation users.

    Args:
        probabilities: per user ``[P(cart), P(purchase), P(cart or purchase)]``, shape (N, 3).
        labels: per user ``[cart, purchase]`` of the actual next session, shape (N, 2).

    Example:
        >>> choices = f1_optimal_outcome_thresholds([[0.6, 0.1, 0.6], [0.2, 0.4, 0.5], [0.1, 0.1, 0.1]],
        ...                                         [[1, 0], [0, 1], [0, 0]])
        >>> {outcome: choice.threshold for outcome, choice in choices.items()}
        {'Cart': 0.6, 'Purchase': 0.4, 'CoP': 0.5}
    """
    probabilities = np.asarray(probabilities, dtype=np.float64)
    outcome_labels = outcome_label_columns(labels)
    if probabilities.shape != (len(outcome_labels["Cart"]), len(OUTCOMES)):
        raise ValueError(
            f"probabilities: expected {len(OUTCOMES)} values for each of the {len(outcome_labels['Cart'])} "
            f"labelled users, got an array of shape {probabilities.shape}"
        )
    return {
        outcome: f1_optimal_threshold(probabilities[:, column], outcome_labels[outcome])
        for column, outcome in enumerate(OUTCOMES)
    }


def pages_above_threshold(page_probabilities: Sequence[Mapping[str, float]], threshold: float) -> list[list[str]]:
    """Each user's predicted page set ``{page : P(page) >= threshold}``, most probable first (ties by name).

    Example:
        >>> pages_above_threshold([{"home": 0.9, "cart": 0.3, "shoes": 0.5}, {"home": 0.1}], 0.5)
        [['home', 'shoes'], []]
    """
    predicted = []
    for user in page_probabilities:
        pages = [page for page, probability in user.items() if probability >= threshold]
        predicted.append(sorted(pages, key=lambda page: (-user[page], page)))
    return predicted


def iou_optimal_page_threshold(
    page_probabilities: Sequence[Mapping[str, float]], actual: Sequence[Sequence[str]]
) -> ThresholdChoice:
    """The tau maximising the mean IoU of :func:`pages_above_threshold` against the actual sessions.

    Args:
        page_probabilities: per validation user, P(page in the next session) for each page with a
            non-zero probability (e.g. the share of sampled sessions containing it).
        actual: the actual next session of each validation user. Users whose session has no page are
            excluded from the mean, as in every page metric.

    Raises ``ValueError`` for lengths that differ, a probability outside (0, 1] or no user with a
    non-empty actual session or with a page probability.

    Example:
        >>> probabilities = [{"home": 0.9, "shoes": 0.4, "bags": 0.2}, {"home": 0.7, "cart": 0.3}]
        >>> choice = iou_optimal_page_threshold(probabilities, [["home", "shoes"], ["home", "cart"]])
        >>> choice.threshold, choice.score, choice.objective
        (0.3, 1.0, 'mean IoU')
    """
    if len(page_probabilities) != len(actual):
        raise ValueError(
            f"one page-probability mapping and one actual session per validation user are needed, got "
            f"{len(page_probabilities)} and {len(actual)}"
        )
    values = np.array([probability for user in page_probabilities for probability in user.values()], dtype=float)
    if not np.all((values > 0.0) & (values <= 1.0)):
        raise ValueError("page probabilities must lie in (0, 1]: list only pages with a non-zero probability")
    candidates = np.unique(values)
    if candidates.size == 0:
        raise ValueError("no validation user has a page probability to choose a threshold on")
    empty_inputs = [[] for _ in actual]
    best_threshold, best_score, n_users = float(candidates[-1]), -1.0, 0
    for threshold in candidates[::-1]:  # largest first, so ties keep the largest threshold
        scores = per_user_page_scores(pages_above_threshold(page_probabilities, threshold), actual, empty_inputs)
        n_users = int(scores["evaluated"].sum())
        if n_users == 0:
            raise ValueError("no validation user has an actual session with a page")
        mean_iou = float(scores["iou"][scores["evaluated"]].mean())
        if mean_iou > best_score:
            best_threshold, best_score = float(threshold), mean_iou
    return ThresholdChoice(best_threshold, best_score, "mean IoU", n_users)
