"""Thresholds chosen on validation: F1-optimal outcome threshold, IoU-optimal page threshold and the Cart-or-Purchase
gate of the decision rule, by hand."""

import numpy as np
import pytest
from sklearn.metrics import f1_score

from evaluation.decisions import DecisionRule
from evaluation.forecasts import Forecast
from evaluation.thresholds import (
    ThresholdChoice,
    f1_optimal_outcome_thresholds,
    f1_optimal_threshold,
    iou_optimal_page_threshold,
    pages_above_threshold,
)


def test_f1_optimal_threshold_by_hand():
    probabilities = [0.9, 0.7, 0.6, 0.4, 0.2, 0.1]
    labels = [1, 0, 1, 1, 0, 0]
    # theta: .9 -> TP1 FP0 FN2: F1 2/5; .7 -> TP1 FP1 FN2: 2/6; .6 -> TP2 FP1 FN1: 4/6;
    # .4 -> TP3 FP1 FN0: 6/7 (best); .2 -> TP3 FP2: 6/8; .1 -> TP3 FP3: 6/9.
    choice = f1_optimal_threshold(probabilities, labels)
    assert choice.threshold == 0.4 and choice.score == pytest.approx(6 / 7)
    assert choice.objective == "F1" and choice.n_users == 6 and choice.note is None
    predicted = np.asarray(probabilities) >= choice.threshold
    assert f1_score(labels, predicted) == pytest.approx(choice.score)


def test_f1_ties_go_to_the_largest_threshold():
    # theta .8 -> TP1 FP0 FN1: F1 2/3; theta .3 -> TP2 FP2 FN0: F1 4/6 = 2/3 as well.
    choice = f1_optimal_threshold([0.8, 0.5, 0.4, 0.3], [1, 0, 0, 1])
    assert choice.threshold == 0.8 and choice.score == pytest.approx(2 / 3)


def test_f1_threshold_without_positive_predicts_nothing(caplog):
    choice = f1_optimal_threshold([0.2, 1.0, 0.5], [0, 0, 0])
    assert choice.threshold > 1.0 and choice.score == 0.0
    assert not (np.array([0.2, 1.0, 0.5]) >= choice.threshold).any()
    assert "no positive validation user" in choice.note and "no positive validation user" in caplog.text


@pytest.mark.parametrize(
    ("probabilities", "labels", "message"),
    [
        ([], [], "no validation user"),
        ([0.5, 0.2], [1], "one probability and one label per validation user"),
        ([0.5, float("nan")], [1, 0], r"must lie in \[0, 1\]"),
    ],
)
def test_f1_threshold_bad_input(probabilities, labels, message):
    with pytest.raises(ValueError, match=message):
        f1_optimal_threshold(probabilities, labels)


def test_outcome_thresholds_per_outcome_by_hand():
    probabilities = [[0.7, 0.1, 0.7], [0.5, 0.6, 0.8], [0.4, 0.2, 0.3], [0.2, 0.2, 0.5]]
    labels = [[1, 0], [0, 1], [1, 0], [0, 0]]
    choices = f1_optimal_outcome_thresholds(probabilities, labels)
    # Cart (y 1 0 1 0): theta .4 -> TP2 FP1: F1 4/5 beats .7 (2/3), .5 (1/2) and .2 (4/6).
    assert (choices["Cart"].threshold, choices["Cart"].score) == (0.4, pytest.approx(0.8))
    # Purchase (y 0 1 0 0): theta .6 catches the only buyer alone.
    assert (choices["Purchase"].threshold, choices["Purchase"].score) == (0.6, 1.0)
    # CoP (P .7 .8 .3 .5, y 1 1 1 0): theta .3 -> TP3 FP1: F1 6/7 beats .8 (1/2), .7 (4/5) and .5 (4/6).
    assert (choices["CoP"].threshold, choices["CoP"].score) == (0.3, pytest.approx(6 / 7))
    with pytest.raises(ValueError, match="expected 3 values for each of the 4 labelled users"):
        f1_optimal_outcome_thresholds([row[:2] for row in probabilities], labels)


def test_pages_above_threshold_orders_by_probability():
    sets = pages_above_threshold([{"b": 0.5, "a": 0.5, "c": 0.9, "d": 0.1}, {}], 0.5)
    assert sets == [["c", "a", "b"], []]


def test_iou_optimal_page_threshold_by_hand():
    page_probabilities = [
        {"home": 1.0, "shoes": 0.6, "bags": 0.4, "hats": 0.2},  # actual {home, shoes, bags}
        {"home": 0.8, "cart": 0.4},  # actual {cart}
        {"home": 0.6},  # actual session without a page: excluded
    ]
    actual = [["home", "shoes", "bags"], ["cart"], ["[EOS]"]]
    # tau 1.0: {home} 1/3, {} 0 -> 1/6; .8: 1/3, {home} 0 -> 1/6; .6: {home, shoes} 2/3, 0 -> 1/3;
    # .4: {home, shoes, bags} 1, {home, cart} 1/2 -> 3/4 (best); .2: + hats 3/4, 1/2 -> 5/8.
    choice = iou_optimal_page_threshold(page_probabilities, actual)
    assert choice.threshold == 0.4 and choice.score == pytest.approx(3 / 4)
    assert choice.objective == "mean IoU" and choice.n_users == 2


@pytest.mark.parametrize(
    ("page_probabilities", "actual", "message"),
    [
        ([{"a": 0.5}], [["a"], ["b"]], "one page-probability mapping and one actual session"),
        ([{"a": 0.0}], [["a"]], r"must lie in \(0, 1\]"),
        ([{}], [["a"]], "no validation user has a page probability"),
        ([{"a": 0.5}], [[]], "no validation user has an actual session with a page"),
    ],
)
def test_iou_threshold_bad_input(page_probabilities, actual, message):
    with pytest.raises(ValueError, match=message):
        iou_optimal_page_threshold(page_probabilities, actual)


def test_cart_or_purchase_gates_both_outcome_pages():
    def choice(threshold: float) -> ThresholdChoice:
        return ThresholdChoice(threshold, 0.5, "F1", 4)

    tau = ThresholdChoice(0.5, 0.5, "IoU", 4)
    gated = DecisionRule(tau, {"Cart": choice(0.3), "Purchase": choice(0.2), "CoP": choice(0.5)}, "threshold")
    ungated = DecisionRule(tau, {"Cart": choice(0.3), "Purchase": choice(0.2)}, "threshold")
    forecasts = [
        Forecast([], {"home": 0.9}, (0.4, 0.3, 0.45), []),  # both pass their own theta, P(either) does not
        Forecast([], {"home": 0.9}, (0.2, 0.1, 0.6), []),  # P(either) passes, neither page does: the likelier
        Forecast([], {"home": 0.9}, (0.6, 0.3, 0.7), []),  # all pass
    ]
    both = {"home", "cart", "purchase"}
    assert [set(pages) for pages in gated.predicted_sets(forecasts)] == [{"home"}, {"home", "cart"}, both]
    assert [set(pages) for pages in ungated.predicted_sets(forecasts)] == [both, {"home"}, both]


def test_tuned_rule_predicts_cart_or_purchase_by_its_own_theta():
    outcomes = [(0.3, 0.3, 0.6), (0.35, 0.25, 0.5), (0.4, 0.0, 0.4), (0.1, 0.3, 0.3)]
    validation = [Forecast([], {"home": 0.9}, probabilities, []) for probabilities in outcomes]
    actual = [["home", "cart"], ["home", "purchase"], ["home"], ["home"]]
    rule = DecisionRule.tune(validation, actual, page_rule="threshold")
    # CoP labels 1, 1, 0, 0 against P(either) 0.6, 0.5, 0.4, 0.3: F1 1.0 at theta 0.5.
    assert rule.outcome_thresholds["CoP"].threshold == 0.5 and rule.outcome_thresholds["CoP"].score == 1.0
    predicted = rule.predicted_sets(validation)
    assert [("cart" in pages or "purchase" in pages) for pages in predicted] == [True, True, False, False]
