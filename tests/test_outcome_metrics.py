"""Outcome metrics against hand-computed cases, the zero-division rules and scikit-learn."""

import math

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score

from evaluation.outcome_metrics import OUTCOME_METRICS, binary_scores, outcome_labels, outcome_scores


def test_hand_computed_ten_figures():
    generated = [
        ["home", "cart"],  # user 0: predicts cart
        ["home"],  # user 1: predicts nothing
        ["purchase", "[EOS]"],  # user 2: predicts purchase
        ["cart", "purchase"],  # user 3: predicts both
        ["shoes"],  # user 4: predicts nothing
    ]
    actual = [["cart"], ["cart", "purchase"], ["home"], ["purchase"], ["shoes"]]
    scores = outcome_scores(generated, actual)
    # Cart:     predicted T F F T F, actual T T F F F -> TP 1, FP 1, FN 1, TN 2.
    assert scores["Cart Acc"] == pytest.approx(3 / 5)
    assert scores["Cart Prec"] == pytest.approx(1 / 2)
    assert scores["Cart Rec"] == pytest.approx(1 / 2)
    # Purchase: predicted F F T T F, actual F T F T F -> TP 1, FP 1, FN 1, TN 2.
    assert scores["Purchase Acc"] == pytest.approx(3 / 5)
    assert scores["Purchase Prec"] == pytest.approx(1 / 2)
    assert scores["Purchase Rec"] == pytest.approx(1 / 2)
    # CoP:      predicted T F T T F, actual T T F T F -> TP 2, FP 1, FN 1, TN 1.
    assert scores["CoP Acc"] == pytest.approx(3 / 5)
    assert scores["CoP Prec"] == pytest.approx(2 / 3)
    assert scores["CoP Rec"] == pytest.approx(2 / 3)
    # F1 = 2·2 / (2·2 + 1 + 1) = 4/6.
    assert scores["CoP F1"] == pytest.approx(4 / 6)
    assert list(scores) == [*OUTCOME_METRICS, "n_users", "n_excluded_empty_actual"]
    assert scores["n_users"] == 5 and scores["n_excluded_empty_actual"] == 0


def test_zero_division_gives_zero():
    # Nothing predicted and nothing actually positive: precision, recall and F1 are 0 (sklearn
    # zero_division=0) while accuracy is 1.
    scores = outcome_scores([["home"], ["shoes"]], [["home"], ["bags"]])
    assert scores["Cart Acc"] == 1.0 and scores["CoP Acc"] == 1.0
    assert all(scores[name] == 0.0 for name in OUTCOME_METRICS if not name.endswith("Acc"))
    # Predicted positive but never actual: precision 0/1 = 0, recall 0 (no actual positive).
    scores = outcome_scores([["cart"]], [["home"]])
    assert scores["Cart Prec"] == 0.0 and scores["Cart Rec"] == 0.0 and scores["CoP F1"] == 0.0


def test_empty_actual_user_is_excluded_and_counted():
    # User 1 has no actual page: excluded, so the figures come from user 0 alone (a correct cart).
    scores = outcome_scores([["cart"], ["purchase"]], [["cart"], ["[BOS]", "[EOS]"]])
    assert scores["n_users"] == 1 and scores["n_excluded_empty_actual"] == 1
    assert scores["Cart Acc"] == 1.0 and scores["Purchase Acc"] == 1.0 and scores["CoP F1"] == 1.0
    labels = outcome_labels([["cart"], ["purchase"]], [["cart"], []])
    assert labels["evaluated"].tolist() == [True, False]


def test_no_evaluated_user_gives_nan():
    scores = outcome_scores([["cart"]], [[]])
    assert all(math.isnan(scores[name]) for name in OUTCOME_METRICS)


def test_cross_check_with_scikit_learn():
    rng = np.random.default_rng(0)
    pages = ["home", "shoes", "bags", "cart", "purchase"]
    generated = [list(rng.choice(pages, size=rng.integers(0, 4))) for _ in range(300)]
    actual = [list(rng.choice(pages, size=rng.integers(1, 4))) for _ in range(300)]
    scores = outcome_scores(generated, actual)
    for outcome, wanted in (("Cart", {"cart"}), ("Purchase", {"purchase"}), ("CoP", {"cart", "purchase"})):
        predicted = [bool(wanted & set(pages)) for pages in generated]
        truth = [bool(wanted & set(pages)) for pages in actual]
        assert scores[f"{outcome} Acc"] == pytest.approx(accuracy_score(truth, predicted))
        assert scores[f"{outcome} Prec"] == pytest.approx(precision_score(truth, predicted, zero_division=0))
        assert scores[f"{outcome} Rec"] == pytest.approx(recall_score(truth, predicted, zero_division=0))
        assert binary_scores(np.array(predicted), np.array(truth))["F1"] == pytest.approx(
            f1_score(truth, predicted, zero_division=0)
        )


@pytest.mark.parametrize(
    "predicted, truth",
    [
        ([False, False], [False, False]),
        ([True, True], [False, False]),
        ([False, False], [True, False]),
        ([True], [True]),
    ],
)
def test_degenerate_cases_match_scikit_learn(predicted, truth):
    scores = binary_scores(np.array(predicted), np.array(truth))
    assert scores["Acc"] == pytest.approx(accuracy_score(truth, predicted))
    assert scores["Prec"] == pytest.approx(precision_score(truth, predicted, zero_division=0))
    assert scores["Rec"] == pytest.approx(recall_score(truth, predicted, zero_division=0))
    assert scores["F1"] == pytest.approx(f1_score(truth, predicted, zero_division=0))


def test_bad_input_is_an_error():
    with pytest.raises(ValueError, match="generated: 1, actual: 2"):
        outcome_scores([["cart"]], [["cart"], ["home"]])
    with pytest.raises(TypeError, match=r"generated\[0\]"):
        outcome_scores(["cart"], [["cart"]])
