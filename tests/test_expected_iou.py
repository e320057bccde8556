"""The expected-IoU set rule against hand-computed cases and a brute-force search, and the history-aware
decoding's weights tuned on planted validation users (history right and model wrong, and the converse)."""

from __future__ import annotations

import random

import pytest
from datasets import Dataset

from evaluation.decisions import DecisionRule, distribution
from evaluation.expected_iou import expected_iou, expected_iou_set, page_marginals
from evaluation.forecasts import sampled_forecast
from evaluation.history_blend import HISTORY_WEIGHTS, history_mixture
from evaluation.report import describe_decoding, evaluate_forecaster


def test_expected_iou_set_by_hand():
    sessions = [({"home", "shoes"}, 0.5), ({"home", "bags"}, 0.25), ({"shoes"}, 0.25)]
    # {home}: .5 * 1/2 + .25 * 1/2 = .375; {home, shoes}: .5 * 1 + .25 * 1/3 + .25 * 1/2 = .7083;
    # {home, shoes, bags}: .5 * 2/3 + .25 * 2/3 + .25 * 1/3 = .5833.
    assert expected_iou(["home"], sessions) == pytest.approx(0.375)
    assert expected_iou(["home", "shoes"], sessions) == pytest.approx(0.5 + 0.25 / 3 + 0.125)
    assert expected_iou(["home", "shoes", "bags"], sessions) == pytest.approx(7 / 12)
    assert expected_iou_set(sessions) == ["home", "shoes"]


def test_fixed_outcome_pages_count_in_the_expected_iou():
    sessions = [({"home", "cart"}, 0.5), ({"bags"}, 0.5)]
    # P(bags) = P(home) = .5 (bags first by name). {bags, cart}: .5 * 1/3 + .5 * 1/2 = .4167;
    # {bags, home, cart}: .5 * 2/3 + .5 * 1/3 = .5.
    assert expected_iou_set(sessions, fixed=["cart"], excluded=["cart"]) == ["bags", "home", "cart"]
    assert expected_iou(["bags", "home", "cart"], sessions) == pytest.approx(0.5)
    assert expected_iou(["bags", "cart"], sessions) == pytest.approx(5 / 12)


def test_expected_iou_set_is_the_best_prefix_by_brute_force():
    generator = random.Random(0)
    pages = ["a", "b", "c", "d", "e", "f"]
    for _ in range(30):
        samples = [generator.sample(pages, generator.randint(1, 4)) for _ in range(8)]
        sessions = [(set(sample), 1 / 8) for sample in samples]
        ranked = list(page_marginals(sessions))
        best = max(expected_iou(ranked[:size], sessions) for size in range(1, len(ranked) + 1))
        chosen = expected_iou_set(sessions)
        assert expected_iou(chosen, sessions) == pytest.approx(best)
        assert chosen == ranked[: len(chosen)]


@pytest.mark.parametrize(
    "sessions, message",
    [([], "sum to 1"), ([({"a"}, 0.5)], "sum to 1"), ([({"a"}, 1.5), ({"b"}, -0.5)], "non-negative")],
)
def test_expected_iou_bad_input(sessions, message):
    with pytest.raises(ValueError, match=message):
        expected_iou_set(sessions)


def test_history_mixture_marginals_are_the_blend():
    samples = [["home", "cart"], ["bags"], ["home"], ["shoes"]]
    inputs = [["home", "cart"], ["shoes"]]
    marginals = page_marginals(history_mixture(samples, inputs, 0.25))
    # (1 - .25) P_LM + .25 * share of input sessions: home .75*.5 + .25*.5, cart .75*.25 + .25*.5.
    assert marginals["home"] == pytest.approx(0.5)
    assert marginals["cart"] == pytest.approx(0.3125)
    assert marginals["shoes"] == pytest.approx(0.75 * 0.25 + 0.25 * 0.5)
    assert marginals["bags"] == pytest.approx(0.75 * 0.25)
    blended = distribution(sampled_forecast(samples, []), inputs, 0.25)
    assert blended.outcome_probabilities == pytest.approx((0.3125, 0.0, 0.3125))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        history_mixture(samples, inputs, 1.5)


def _planted_users(history_is_right: bool, users: int = 8):
    """Users whose next session repeats their history (history right) or is what the model samples."""
    forecasts, inputs, actual = [], [], []
    for user in range(users):
        own = [f"own-{user}", "cart"] if user % 2 else [f"own-{user}"]
        sampled = [f"model-{user}", "x"] if user % 3 else [f"model-{user}", "x", "cart"]
        forecasts.append(sampled_forecast([sampled] * 4, []))
        inputs.append([own, own])
        actual.append(own if history_is_right else sampled)
    return forecasts, inputs, actual


@pytest.mark.parametrize("history_is_right, weight", [(True, 1.0), (False, 0.0)])
def test_history_weights_are_tuned_on_planted_validation_users(history_is_right, weight):
    forecasts, inputs, actual = _planted_users(history_is_right)
    rule = DecisionRule.tune(forecasts, actual, inputs, history_weights=HISTORY_WEIGHTS)
    # Outcomes: only the right source has Brier 0 (P(cart) is 0 or 1 there and right).
    assert rule.outcome_history_weight == weight
    assert rule.validation_scores["outcomes"][weight] == pytest.approx(0.0)
    # Pages: IoU 1 as soon as the right source's pages are the more probable ones; ties go to the smaller weight.
    perfect = [candidate for candidate, score in rule.validation_scores["pages"].items() if score == pytest.approx(1)]
    assert rule.page_history_weight == min(perfect)
    assert (rule.page_history_weight > 0.5) if history_is_right else (rule.page_history_weight == 0.0)
    assert rule.predicted_sets(forecasts, inputs) == [
        sorted(session, key=lambda page: page == "cart") for session in actual
    ]


def test_the_pure_model_never_blends_and_blending_needs_input_sessions():
    forecasts, inputs, actual = _planted_users(True)
    pure = DecisionRule.tune(forecasts, actual, inputs)
    assert pure.page_history_weight == 0.0 and pure.to_dict()["history_weight"] == {"pages": 0.0, "outcomes": 0.0}
    with pytest.raises(ValueError, match="input sessions"):
        DecisionRule.tune(forecasts, actual, history_weights=HISTORY_WEIGHTS)


class SamplingForecaster:
    """Planted sampled forecasts looked up by the user's first input page."""

    probabilistic = True

    def __init__(self, forecasts):
        self.forecasts = forecasts

    def forecast(self, input_sessions):
        return [self.forecasts[sessions[0][0]] for sessions in input_sessions], None


def test_the_history_aware_decoding_is_tuned_on_validation_and_named_in_the_report():
    forecasts, inputs, actual = _planted_users(True)
    by_page = {sessions[0][0]: forecast for forecast, sessions in zip(forecasts, inputs)}
    validation = Dataset.from_dict({"input_sessions": inputs, "target_session": actual})
    test = Dataset.from_dict({"input_sessions": inputs[:4], "target_session": actual[:4]})
    forecaster = SamplingForecaster(by_page)
    blended = evaluate_forecaster(forecaster, test, validation, progress=False, history_weights=HISTORY_WEIGHTS)
    pure = evaluate_forecaster(forecaster, test, validation, progress=False)
    assert blended.combined["IoU"] == pytest.approx(1.0) and blended.combined["HR"] == 1.0
    assert pure.combined["IoU"] < 0.25  # the model's own pages never occur, only a cart can be right
    assert blended.decisions["history_weight"] == {"pages": 0.6, "outcomes": 1.0}
    assert "history-aware" in describe_decoding(blended) and "lambda=0.6" in describe_decoding(blended)
    assert "pure model" in describe_decoding(pure) and "expected-IoU-optimal" in describe_decoding(pure)
