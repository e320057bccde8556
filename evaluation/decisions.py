"""From graded forecasts to the predicted page set G, with thresholds tuned on the VALIDATION split.

The predicted set of a user (used by every page metric and by the outcome metrics, so both agree) is

    G = {non-outcome page p : P(p) >= tau}  plus  cart if P(cart) >= theta_cart  plus  purchase if
        P(purchase) >= theta_purchase

and Cart-or-Purchase is predicted when G holds either outcome page. The objectives (stated, and
computed on validation users only, never on test):

1. theta_cart and theta_purchase each maximise the F1 of their outcome
   (:func:`evaluation.thresholds.f1_optimal_threshold`);
2. then tau maximises the mean IoU of the whole set G against the actual sessions, the outcome
   pages fixed by step 1 (:func:`evaluation.thresholds.iou_optimal_page_threshold`).

Example:
    >>> from evaluation.forecasts import Forecast
    >>> validation = [Forecast([], {"home": 0.9, "bags": 0.3, "cart": 0.6}, (0.6, 0.0, 0.6), []),
    ...               Forecast([], {"home": 0.8, "cart": 0.2}, (0.2, 0.0, 0.2), [])]
    >>> rule = DecisionRule.tune(validation, [["home", "cart"], ["home"]])
    >>> rule.page_threshold.threshold, rule.outcome_thresholds["Cart"].threshold
    (0.8, 0.6)
    >>> rule.predicted_sets([Forecast([], {"home": 0.85, "shoes": 0.5, "cart": 0.7}, (0.7, 0.0, 0.7), [])])
    [['home', 'cart']]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from tokenization.constants import OUTCOME_CART, OUTCOME_PURCHASE

from .forecasts import Forecast
from .thresholds import ThresholdChoice, f1_optimal_threshold, iou_optimal_page_threshold, pages_above_threshold

OUTCOME_PAGES: dict[str, str] = {"Cart": OUTCOME_CART, "Purchase": OUTCOME_PURCHASE}


@dataclass(frozen=True)
class DecisionRule:
    """tau for the non-outcome pages and theta per outcome page, tuned on validation (module docstring)."""

    page_threshold: ThresholdChoice
    outcome_thresholds: dict[str, ThresholdChoice]

    @classmethod
    def tune(cls, forecasts: Sequence[Forecast], actual: Sequence[Sequence[str]]) -> "DecisionRule":
        """Choose theta per outcome (F1), then tau (mean IoU of G), on the validation users' forecasts.

        Users whose actual session is empty are left out, as in every metric. Raises ``ValueError``
        when the lengths differ or no validation user has an actual page.
        """
        if len(forecasts) != len(actual):
            raise ValueError(f"{len(forecasts)} validation forecasts for {len(actual)} actual sessions")
        scored = [user for user, session in enumerate(actual) if session]
        if not scored:
            raise ValueError("no validation user has an actual session with a page to tune thresholds on")
        outcome_thresholds = {}
        for column, (outcome, page) in enumerate(OUTCOME_PAGES.items()):
            probabilities = [forecasts[user].outcome_probabilities[column] for user in scored]
            labels = [page in actual[user] for user in scored]
            outcome_thresholds[outcome] = f1_optimal_threshold(probabilities, labels)
        fixed = cls(ThresholdChoice(1.0, float("nan"), "mean IoU", 0), outcome_thresholds)
        page_probabilities = [
            fixed._set_probabilities(forecast, outcome_pages_as_certain=True) for forecast in forecasts
        ]
        return cls(iou_optimal_page_threshold(page_probabilities, actual), outcome_thresholds)

    def _set_probabilities(self, forecast: Forecast, outcome_pages_as_certain: bool = False) -> dict[str, float]:
        """The forecast's non-outcome pages with their P and the outcome pages that pass their theta."""
        probabilities = {
            page: p for page, p in forecast.page_probabilities.items() if page not in OUTCOME_PAGES.values()
        }
        for column, (outcome, page) in enumerate(OUTCOME_PAGES.items()):
            probability = forecast.outcome_probabilities[column]
            if probability > 0 and probability >= self.outcome_thresholds[outcome].threshold:
                probabilities[page] = 1.0 if outcome_pages_as_certain else probability
        return probabilities

    def predicted_sets(self, forecasts: Sequence[Forecast]) -> list[list[str]]:
        """Each user's predicted set G, most probable page first."""
        tau = self.page_threshold.threshold
        sets = []
        for forecast in forecasts:
            probabilities = self._set_probabilities(forecast)
            outcome_pages = [page for page in OUTCOME_PAGES.values() if page in probabilities]
            other_pages = {page: p for page, p in probabilities.items() if page not in outcome_pages}
            pages = pages_above_threshold([other_pages], tau)[0]
            sets.append(sorted(pages + outcome_pages, key=lambda page: (-probabilities[page], page)))
        return sets

    def to_dict(self) -> dict[str, Any]:
        """The thresholds with their validation objectives, JSON-ready."""
        return {
            "tau": asdict(self.page_threshold),
            "theta": {outcome: asdict(choice) for outcome, choice in self.outcome_thresholds.items()},
            "rule": "G = {non-outcome pages with P >= tau} + {outcome page with P >= its theta}; "
            "theta maximises F1 per outcome, then tau the mean IoU of G, on the validation split",
        }


def outcome_probability_matrix(forecasts: Sequence[Forecast]) -> np.ndarray:
    """``[N, 3]`` P(cart), P(purchase), P(cart or purchase) of the forecasts.

    Example:
        >>> outcome_probability_matrix([Forecast([], {}, (0.5, 0.25, 0.75), [])]).tolist()
        [[0.5, 0.25, 0.75]]
    """
    return np.array([forecast.outcome_probabilities for forecast in forecasts], dtype=np.float64).reshape(-1, 3)
