"""Outcome-probability scores against hand-computed cases, scikit-learn and the edge cases; the
reliability plot."""

import math

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, brier_score_loss, log_loss, roc_auc_score

from evaluation.outcome_probabilities import (
    OUTCOMES,
    PROBABILITY_METRICS,
    binary_probability_scores,
    outcome_probability_scores,
)
from evaluation.reliability_plot import plot_reliability

# Four users, columns P(cart), P(purchase), P(cart or purchase); labels [cart, purchase].
PROBABILITIES = [[0.8, 0.1, 0.8], [0.3, 0.5, 0.6], [0.6, 0.2, 0.7], [0.1, 0.0, 0.1]]
LABELS = [[1, 0], [1, 1], [0, 0], [0, 0]]


def test_hand_computed_cart_scores():
    scores = outcome_probability_scores(PROBABILITIES, LABELS)
    # Cart: P = .8 .3 .6 .1, y = 1 1 0 0. Positive-negative pairs ranked right: (.8>.6) (.8>.1) (.3>.1);
    # wrong: (.3<.6) -> ROC-AUC 3/4.
    assert scores["Cart ROC-AUC"] == pytest.approx(3 / 4)
    # By P: .8 (+), .6 (-), .3 (+), .1 (-): precision at the positives 1/1 and 2/3 -> AP (1 + 2/3) / 2.
    assert scores["Cart PR-AUC"] == pytest.approx(5 / 6)
    # Brier: (.2² + .7² + .6² + .1²) / 4 = (.04 + .49 + .36 + .01) / 4.
    assert scores["Cart Brier"] == pytest.approx(0.9 / 4)
    # LogLoss: -(ln .8 + ln .3 + ln .4 + ln .9) / 4 (no probability reaches the clip).
    expected_log_loss = -(math.log(0.8) + math.log(0.3) + math.log(0.4) + math.log(0.9)) / 4
    assert scores["Cart LogLoss"] == pytest.approx(expected_log_loss)
    assert scores["Cart BaseRate"] == 0.5


def test_hand_computed_purchase_and_cart_or_purchase():
    scores = outcome_probability_scores(PROBABILITIES, LABELS)
    # Purchase: one positive (user 1, P .5) above every negative -> both AUCs 1.
    assert scores["Purchase ROC-AUC"] == 1.0 and scores["Purchase PR-AUC"] == 1.0
    assert scores["Purchase BaseRate"] == 0.25
    # LogLoss of user 3 (P 0, y 0) uses the clip 1e-3: -ln(1 - 1e-3).
    expected = -(math.log(0.9) + math.log(0.5) + math.log(0.8) + math.log(1 - 1e-3)) / 4
    assert scores["Purchase LogLoss"] == pytest.approx(expected)
    # CoP labels are the union: 1 1 0 0; P .8 .6 .7 .1 -> pairs right: (.8>.7) (.8>.1) (.6>.1), wrong (.6<.7).
    assert scores["CoP ROC-AUC"] == pytest.approx(3 / 4)
    assert scores["CoP Brier"] == pytest.approx((0.04 + 0.16 + 0.49 + 0.01) / 4)
    assert scores["CoP BaseRate"] == 0.5
    assert scores["n_users"] == 4 and scores["n_undefined_auc"] == 0 and scores["undefined_auc"] == []
    assert list(scores)[:15] == [f"{outcome} {metric}" for outcome in OUTCOMES for metric in PROBABILITY_METRICS]


def test_log_loss_clip_bounds_a_confident_miss():
    # P(cart) = 0 for a cart user: -ln(epsilon) instead of infinity.
    scores = binary_probability_scores([0.0, 1.0], [1, 1], epsilon=1e-3)
    assert scores["LogLoss"] == pytest.approx((-math.log(1e-3) - math.log(1 - 1e-3)) / 2)
    assert binary_probability_scores([0.0], [1], epsilon=0.1)["LogLoss"] == pytest.approx(-math.log(0.1))
    with pytest.raises(ValueError, match="epsilon must lie in"):
        binary_probability_scores([0.5], [1], epsilon=0.0)


def test_agrees_with_scikit_learn_on_random_users():
    rng = np.random.default_rng(0)
    probabilities = rng.random((200, 3))
    labels = rng.random((200, 2)) < probabilities[:, :2]
    scores = outcome_probability_scores(probabilities, labels)
    cop = labels[:, 0] | labels[:, 1]
    assert scores["CoP ROC-AUC"] == pytest.approx(roc_auc_score(cop, probabilities[:, 2]))
    assert scores["CoP PR-AUC"] == pytest.approx(average_precision_score(cop, probabilities[:, 2]))
    assert scores["Purchase Brier"] == pytest.approx(brier_score_loss(labels[:, 1], probabilities[:, 1]))
    clipped = np.clip(probabilities[:, 0], 1e-3, 1 - 1e-3)
    assert scores["Cart LogLoss"] == pytest.approx(log_loss(labels[:, 0], clipped))


def test_one_class_gives_undefined_auc_counted(caplog):
    # Nobody purchases; everybody carts -> Purchase and Cart have one class, CoP too (all positive).
    scores = outcome_probability_scores([[0.7, 0.1, 0.8], [0.4, 0.3, 0.5]], [[1, 0], [1, 0]])
    for outcome in OUTCOMES:
        assert scores[f"{outcome} ROC-AUC"] is None and scores[f"{outcome} PR-AUC"] is None
    assert scores["Purchase Brier"] == pytest.approx((0.01 + 0.09) / 2)
    assert scores["n_undefined_auc"] == 3
    assert scores["undefined_auc"][1] == "Purchase: 0 of 2 users positive (one class), ROC-AUC and PR-AUC undefined"
    assert "Cart: 2 of 2 users positive" in caplog.text


def test_no_user_gives_none():
    scores = outcome_probability_scores([], [])
    assert scores["n_users"] == 0
    assert all(scores[f"{outcome} {metric}"] is None for outcome in OUTCOMES for metric in PROBABILITY_METRICS)


@pytest.mark.parametrize(
    ("probabilities", "labels", "message"),
    [
        ([[0.5, 1.2, 0.5]], [[1, 0]], r"probabilities\[0\]: probabilities must lie in \[0, 1\]"),
        ([[0.5, 0.2, 0.5], [0.5, float("nan"), 0.5]], [[1, 0], [0, 0]], r"probabilities\[1\]"),
        ([[0.5, 0.2, 0.5]], [[2, 0]], r"labels\[0\]: labels must be 0/1 or bool"),
        ([[0.5, 0.2]], [[1, 0]], "probabilities: expected 3 values per user"),
        ([[0.5, 0.2, 0.5]], [[1, 0], [0, 0]], "one row of probabilities and one row of labels per user"),
    ],
)
def test_bad_input_is_named(probabilities, labels, message):
    with pytest.raises(ValueError, match=message):
        outcome_probability_scores(probabilities, labels)


def test_reliability_plot_writes_a_png(tmp_path):
    rng = np.random.default_rng(1)
    probabilities = rng.random((100, 3))
    labels = np.c_[rng.random(100) < probabilities[:, 0], np.zeros(100, dtype=bool)]  # nobody purchases
    path = plot_reliability(probabilities, labels, tmp_path / "plots" / "reliability.png", n_bins=5)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="no user to plot"):
        plot_reliability([], [], tmp_path / "empty.png")
