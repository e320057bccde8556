"""From graded forecasts to the predicted page set G, with every choice made on the VALIDATION split.

A forecast's distribution of the next session is its S sampled sessions (weight 1/S each) or, with the
history-aware decoding, their mixture with the user's own input sessions at weight lambda
(:mod:`evaluation.history_blend`; lambda = 0 is the pure model); P(cart) and P(purchase) are the forecast's
own (for a model, its estimates along the samples), mixed at the same lambda. The predicted set of a user (used by
every page metric and by the outcome metrics, so both agree) is

    G = (the non-outcome pages chosen by the page rule)  plus, when P(cart or purchase) >= theta_CoP,
        cart if P(cart) >= theta_cart and purchase if P(purchase) >= theta_purchase (the likelier of the
        two when neither passes its own theta)

so Cart-or-Purchase is predicted, exactly when P(cart or purchase) >= theta_CoP, by its own probability
and threshold rather than by the union of the two outcome decisions (two low thresholds made that union
predict nearly every user). Two page rules:

- ``"expected-iou"`` (the default): each user's prefix of the pages ranked by P(page) that maximises the
  user's expected IoU under the distribution (:func:`evaluation.expected_iou.expected_iou_set`), the
  outcome pages counted as decided; no threshold is tuned;
- ``"threshold"``: ``{p : P(p) >= tau}`` with one tau for all users
  (:func:`evaluation.thresholds.iou_optimal_page_threshold`).

The objectives, computed on validation users only (never on test), in this order:

1. the outcome weight lambda_outcome minimises the validation Brier score of P(cart) and P(purchase)
   (a proper scoring rule: the mixture weight best supported by the validation outcomes);
2. theta_cart, theta_purchase and theta_CoP each maximise the F1 of their outcome at that weight
   (:func:`evaluation.thresholds.f1_optimal_threshold`);
3. the page weight lambda_page (and, for the threshold rule, tau) maximises the mean IoU of G.

Each weight is chosen among ``history_weights`` (only 0.0: the pure model); ties go to the smaller weight.

Example:
    >>> from evaluation.forecasts import Forecast
    >>> validation = [Forecast([], {"home": 0.9, "bags": 0.3, "cart": 0.6}, (0.6, 0.0, 0.6), []),
    ...               Forecast([], {"home": 0.8, "cart": 0.2}, (0.2, 0.0, 0.2), [])]
    >>> rule = DecisionRule.tune(validation, [["home", "cart"], ["home"]], page_rule="threshold")
    >>> thresholds = rule.outcome_thresholds
    >>> rule.page_threshold.threshold, thresholds["Cart"].threshold, thresholds["CoP"].threshold
    (0.8, 0.6, 0.6)
    >>> rule.predicted_sets([Forecast([], {"home": 0.85, "shoes": 0.5, "cart": 0.7}, (0.7, 0.0, 0.7), [])])
    [['home', 'cart']]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from tokenization.constants import OUTCOME_CART, OUTCOME_PURCHASE

from .expected_iou import expected_iou_set, page_marginals
from .forecasts import Forecast, Sessions
from .history_blend import blended_outcome_probabilities, history_mixture
from .page_metrics import per_user_page_scores
from .thresholds import ThresholdChoice, f1_optimal_threshold, iou_optimal_page_threshold, pages_above_threshold

OUTCOME_PAGES: dict[str, str] = {"Cart": OUTCOME_CART, "Purchase": OUTCOME_PURCHASE}
# The outcome "an outcome page in the session", whose theta gates both outcome pages.
EITHER_OUTCOME = "CoP"
PAGE_RULES: tuple[str, ...] = ("expected-iou", "threshold")


@dataclass(frozen=True)
class Distribution:
    """One user's next-session distribution: page marginals, P(cart), P(purchase), P(either) and the weighted
    sessions (None for a forecast without samples, whose probabilities are taken as they are)."""

    page_probabilities: dict[str, float]
    outcome_probabilities: tuple[float, float, float]
    sessions: list[tuple[frozenset[str], float]] | None


def distribution(forecast: Forecast, input_sessions: Sessions, weight: float) -> Distribution:
    """The forecast's distribution mixed with the user's input sessions at ``weight`` (0: the forecast's own).

    Example:
        >>> from evaluation.forecasts import sampled_forecast
        >>> forecast = sampled_forecast([["home", "cart"], ["bags"]], [])
        >>> distribution(forecast, [["home"]], 0.5).page_probabilities
        {'home': 0.75, 'bags': 0.25, 'cart': 0.25}
    """
    if weight == 0.0:
        sessions = None
        if forecast.samples:
            sessions = [(frozenset(sample), 1.0 / len(forecast.samples)) for sample in forecast.samples]
        return Distribution(dict(forecast.page_probabilities), tuple(forecast.outcome_probabilities), sessions)
    if not forecast.samples:
        raise ValueError("the history-aware decoding needs the forecast's sampled sessions, and it has none")
    sessions = history_mixture(forecast.samples, input_sessions, weight)
    outcomes = blended_outcome_probabilities(forecast.outcome_probabilities, input_sessions, weight)
    return Distribution(page_marginals(sessions), outcomes, sessions)


@dataclass(frozen=True)
class DecisionRule:
    """The page rule, the history weights and theta per outcome page (and tau), tuned on validation.

    Attributes:
        page_threshold: tau of the ``"threshold"`` rule (None for ``"expected-iou"``).
        outcome_thresholds: theta per outcome (``"Cart"``, ``"Purchase"`` and, gating both, ``"CoP"``; a rule
            without ``"CoP"`` decides each outcome page by its own theta alone).
        page_rule: One of :data:`PAGE_RULES`.
        page_history_weight: lambda of the page distribution (0: the pure model).
        outcome_history_weight: lambda of the outcome probabilities (0: the pure model).
        validation_scores: The validation objective of each weight tried (``"pages"``: mean IoU,
            ``"outcomes"``: Brier score), for the report.
    """

    page_threshold: ThresholdChoice | None
    outcome_thresholds: dict[str, ThresholdChoice]
    page_rule: str = "threshold"
    page_history_weight: float = 0.0
    outcome_history_weight: float = 0.0
    validation_scores: dict[str, dict[float, float]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.page_rule not in PAGE_RULES:
            raise ValueError(f"page_rule must be one of {PAGE_RULES}, got {self.page_rule!r}")
        if self.page_rule == "threshold" and self.page_threshold is None:
            raise ValueError("the threshold page rule needs a page threshold tau")

    @classmethod
    def tune(
        cls,
        forecasts: Sequence[Forecast],
        actual: Sequence[Sequence[str]],
        input_sessions: Sequence[Sessions] | None = None,
        page_rule: str = "expected-iou",
        history_weights: Sequence[float] = (0.0,),
    ) -> "DecisionRule":
        """Choose the weights, theta per outcome and the page rule's parameters on the validation users'
        forecasts (module docstring).

        Users whose actual session is empty are left out, as in every metric. Raises ``ValueError``
        when the lengths differ, no validation user has an actual page, no weight is given or a weight
        above 0 comes without the users' input sessions.
        """
        if len(forecasts) != len(actual):
            raise ValueError(f"{len(forecasts)} validation forecasts for {len(actual)} actual sessions")
        weights = sorted(set(float(weight) for weight in history_weights))
        if not weights:
            raise ValueError("no history weight to choose from (give at least 0.0, the pure model)")
        if input_sessions is None:
            if weights != [0.0]:
                raise ValueError("history weights above 0 need each validation user's input sessions")
            input_sessions = [[] for _ in forecasts]
        if len(input_sessions) != len(forecasts):
            raise ValueError(f"{len(input_sessions)} users' input sessions for {len(forecasts)} forecasts")
        scored = [user for user, session in enumerate(actual) if session]
        if not scored:
            raise ValueError("no validation user has an actual session with a page to tune thresholds on")
        labels = np.array([[page in actual[user] for page in OUTCOME_PAGES.values()] for user in scored], dtype=float)
        labels = np.column_stack([labels, labels.max(axis=1)])

        def outcome_matrix(weight: float) -> np.ndarray:
            rows = [distribution(forecasts[user], input_sessions[user], weight) for user in scored]
            return np.array([row.outcome_probabilities for row in rows])

        brier = {weight: float(np.mean((outcome_matrix(weight)[:, :2] - labels[:, :2]) ** 2)) for weight in weights}
        outcome_weight = min(weights, key=lambda weight: (brier[weight], weight))
        probabilities = outcome_matrix(outcome_weight)
        outcome_thresholds = {
            outcome: f1_optimal_threshold(probabilities[:, column], labels[:, column].astype(bool))
            for column, outcome in enumerate([*OUTCOME_PAGES, EITHER_OUTCOME])
        }
        candidates = {}
        for weight in weights:
            rule = cls(None, outcome_thresholds, "expected-iou", weight, outcome_weight)
            if page_rule == "threshold":
                page_probabilities = [
                    rule._page_probabilities(forecast, sessions, outcome_pages_as_certain=True)
                    for forecast, sessions in zip(forecasts, input_sessions)
                ]
                tau = iou_optimal_page_threshold(page_probabilities, actual)
                candidates[weight] = (cls(tau, outcome_thresholds, page_rule, weight, outcome_weight), tau.score)
            elif page_rule == "expected-iou":
                sets = rule.predicted_sets(forecasts, input_sessions)
                scores = per_user_page_scores(sets, actual, [[] for _ in actual])
                candidates[weight] = (rule, float(scores["iou"][scores["evaluated"]].mean()))
            else:
                raise ValueError(f"page_rule must be one of {PAGE_RULES}, got {page_rule!r}")
        page_weight = max(weights, key=lambda weight: (candidates[weight][1], -weight))
        chosen = candidates[page_weight][0]
        return cls(
            chosen.page_threshold,
            outcome_thresholds,
            page_rule,
            page_weight,
            outcome_weight,
            {"pages": {weight: score for weight, (_, score) in candidates.items()}, "outcomes": brier},
        )

    def _decided_outcome_pages(self, outcome_probabilities: tuple[float, float, float]) -> list[str]:
        gate = self.outcome_thresholds.get(EITHER_OUTCOME)
        either = outcome_probabilities[2]
        if gate is not None and not (either > 0 and either >= gate.threshold):
            return []
        pages = [
            page
            for column, (outcome, page) in enumerate(OUTCOME_PAGES.items())
            if outcome_probabilities[column] > 0
            and outcome_probabilities[column] >= self.outcome_thresholds[outcome].threshold
        ]
        if gate is not None and not pages:
            likelier = max(range(len(OUTCOME_PAGES)), key=lambda column: outcome_probabilities[column])
            pages = [list(OUTCOME_PAGES.values())[likelier]]
        return pages

    def outcome_probabilities(self, forecast: Forecast, input_sessions: Sessions = ()) -> tuple[float, float, float]:
        """P(cart), P(purchase), P(cart or purchase) at the outcome weight."""
        return distribution(forecast, input_sessions, self.outcome_history_weight).outcome_probabilities

    def _page_probabilities(
        self, forecast: Forecast, input_sessions: Sessions, outcome_pages_as_certain: bool = False
    ) -> dict[str, float]:
        """The non-outcome pages with their P (page weight) and the outcome pages that pass their theta."""
        outcome_probabilities = self.outcome_probabilities(forecast, input_sessions)
        page_probabilities = distribution(forecast, input_sessions, self.page_history_weight).page_probabilities
        probabilities = {page: p for page, p in page_probabilities.items() if page not in OUTCOME_PAGES.values()}
        for page in self._decided_outcome_pages(outcome_probabilities):
            column = list(OUTCOME_PAGES.values()).index(page)
            probabilities[page] = 1.0 if outcome_pages_as_certain else outcome_probabilities[column]
        return probabilities

    def predicted_sets(
        self, forecasts: Sequence[Forecast], input_sessions: Sequence[Sessions] | None = None
    ) -> list[list[str]]:
        """Each user's predicted set G: the threshold rule's most probable page first, the expected-IoU rule's
        pages by P then the decided outcome pages."""
        input_sessions = input_sessions if input_sessions is not None else [[] for _ in forecasts]
        sets = []
        for forecast, sessions in zip(forecasts, input_sessions):
            if self.page_rule == "threshold":
                probabilities = self._page_probabilities(forecast, sessions)
                outcome_pages = [page for page in OUTCOME_PAGES.values() if page in probabilities]
                other_pages = {page: p for page, p in probabilities.items() if page not in outcome_pages}
                pages = pages_above_threshold([other_pages], self.page_threshold.threshold)[0]
                sets.append(sorted(pages + outcome_pages, key=lambda page: (-probabilities[page], page)))
                continue
            pages = distribution(forecast, sessions, self.page_history_weight).sessions
            if pages is None:
                raise ValueError("the expected-IoU page rule needs the forecast's sampled sessions, and it has none")
            outcome_pages = self._decided_outcome_pages(self.outcome_probabilities(forecast, sessions))
            sets.append(expected_iou_set(pages, fixed=outcome_pages, excluded=OUTCOME_PAGES.values()))
        return sets

    def outcome_probability_matrix(
        self, forecasts: Sequence[Forecast], input_sessions: Sequence[Sessions] | None = None
    ) -> np.ndarray:
        """``[N, 3]`` P(cart), P(purchase), P(cart or purchase) of the forecasts at the outcome weight."""
        input_sessions = input_sessions if input_sessions is not None else [[] for _ in forecasts]
        rows = [self.outcome_probabilities(forecast, users) for forecast, users in zip(forecasts, input_sessions)]
        return np.array(rows, dtype=np.float64).reshape(-1, 3)

    def to_dict(self) -> dict[str, Any]:
        """The rule, its weights and thresholds with their validation objectives, JSON-ready."""
        pages = (
            "the prefix of pages by P maximising each user's expected IoU"
            if self.page_rule == "expected-iou"
            else "{non-outcome pages with P >= tau}"
        )
        return {
            "page_rule": self.page_rule,
            "tau": asdict(self.page_threshold) if self.page_threshold is not None else None,
            "theta": {outcome: asdict(choice) for outcome, choice in self.outcome_thresholds.items()},
            "history_weight": {"pages": self.page_history_weight, "outcomes": self.outcome_history_weight},
            "validation_scores": {
                kind: {str(weight): score for weight, score in scores.items()}
                for kind, scores in self.validation_scores.items()
            },
            "rule": f"G = {pages} + (if P(cart or purchase) >= theta_CoP) {{outcome page with P >= its theta, "
            "else the likelier one}}; P from the model's samples mixed with the user's input sessions at weight "
            "lambda (0: the pure model); lambda_outcome minimises the validation Brier score, theta the F1 per "
            "outcome, then lambda_page (and tau) the mean IoU of G, on the validation split",
        }


def outcome_probability_matrix(forecasts: Sequence[Forecast]) -> np.ndarray:
    """``[N, 3]`` P(cart), P(purchase), P(cart or purchase) of the forecasts.

    Example:
        >>> outcome_probability_matrix([Forecast([], {}, (0.5, 0.25, 0.75), [])]).tolist()
        [[0.5, 0.25, 0.75]]
    """
    return np.array([forecast.outcome_probabilities for forecast in forecasts], dtype=np.float64).reshape(-1, 3)
