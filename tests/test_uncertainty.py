"""Bootstrap intervals and paired tests: hand-computable cases, seeding, planted differences."""

import itertools

import numpy as np
import pytest

from evaluation import uncertainty
from evaluation.outcome_metrics import binary_scores
from evaluation.uncertainty import (
    bootstrap_mean_interval,
    bootstrap_statistic_interval,
    paired_mean_test,
    paired_statistic_test,
)


def f1(predicted, actual):
    return binary_scores(predicted, actual)["F1"]


def test_mean_interval_contains_the_mean_and_is_seeded():
    values = np.random.default_rng(0).random(300)
    interval = bootstrap_mean_interval(values, seed=7)
    assert interval.estimate == pytest.approx(values.mean())
    assert interval.low < interval.estimate < interval.high
    # The standard error of a mean of 300 uniforms is 0.0167: the 95% interval is about +-1.96 of it.
    assert interval.high - interval.low == pytest.approx(2 * 1.96 * values.std() / np.sqrt(300), rel=0.15)
    assert bootstrap_mean_interval(values, seed=7) == interval
    assert bootstrap_mean_interval(values, seed=8) != interval
    assert (interval.confidence, interval.n_users, interval.n_resamples) == (0.95, 300, 2000)


def test_mean_interval_of_two_users_by_hand():
    # Resampled means of [0, 1]: 0 (p 1/4), 0.5 (p 1/2), 1 (p 1/4). The 30th and 70th percentiles
    # (a 40% interval) both fall on 0.5; the 95% interval spans 0 to 1.
    narrow = bootstrap_mean_interval([0.0, 1.0], confidence=0.4, n_resamples=20000, seed=0)
    assert (narrow.low, narrow.high) == (0.5, 0.5)
    interval = bootstrap_mean_interval([0.0, 1.0], n_resamples=20000, seed=0)
    assert (interval.low, interval.high) == (0.0, 1.0)
    constant = bootstrap_mean_interval([0.25] * 5)
    assert (constant.estimate, constant.low, constant.high) == (0.25, 0.25, 0.25)


def test_vectorised_mean_equals_the_per_resample_statistic(monkeypatch):
    values = np.random.default_rng(1).random(57)
    vectorised = bootstrap_mean_interval(values, n_resamples=300, seed=4)
    looped = bootstrap_statistic_interval(np.mean, values, n_resamples=300, seed=4)
    assert (looped.low, looped.high) == pytest.approx((vectorised.low, vectorised.high))
    # Chunks of the resample matrix draw the same users as one matrix.
    monkeypatch.setattr(uncertainty, "_CHUNK_ENTRIES", 200)
    assert bootstrap_mean_interval(values, n_resamples=300, seed=4) == vectorised


def test_nan_users_are_skipped_and_counted(caplog):
    caplog.set_level("INFO")
    interval = bootstrap_mean_interval([1.0, np.nan, 0.0, 1.0], seed=0)
    assert interval.n_users == 3 and interval.n_skipped_nan == 1
    assert interval.estimate == pytest.approx(2 / 3)
    assert "1 of 4 users skipped" in caplog.text


def test_f1_interval_of_the_whole_sample():
    predicted = np.array([True, True, False, True, False, False] * 20)
    actual = np.array([True, False, False, True, True, False] * 20)
    interval = bootstrap_statistic_interval(f1, predicted, actual, n_resamples=500, seed=0)
    # TP 2, FP 1, FN 1 per block of six -> F1 4/6.
    assert interval.estimate == pytest.approx(2 / 3)
    assert interval.low < 2 / 3 < interval.high
    perfect = bootstrap_statistic_interval(f1, actual, actual, n_resamples=100)
    assert (perfect.low, perfect.high) == (1.0, 1.0)


def test_paired_mean_test_planted_difference_and_none():
    rng = np.random.default_rng(2)
    reference = rng.random(300)
    better = paired_mean_test(reference + 0.05 + rng.normal(0, 0.05, 300), reference, seed=0)
    assert better.difference == pytest.approx(0.05, abs=0.01)
    assert 0 < better.low < better.difference < better.high
    assert better.p_value == pytest.approx(1 / 2001)
    same = paired_mean_test(reference, reference, seed=0)
    assert (same.difference, same.low, same.high, same.p_value) == (0.0, 0.0, 0.0, 1.0)
    noise = paired_mean_test(reference + rng.normal(0, 0.05, 300), reference, seed=0)
    assert noise.p_value > 0.05 and noise.low < 0 < noise.high


def test_sign_flip_p_value_matches_exact_enumeration():
    differences = np.array([0.4, 0.1, 0.3, -0.2, 0.5])
    observed = abs(differences.mean())
    flips = [abs((np.array(signs) * differences).mean()) for signs in itertools.product((-1, 1), repeat=5)]
    exact = np.mean(np.array(flips) >= observed - 1e-12)
    result = paired_mean_test(differences, np.zeros(5), n_resamples=20000, seed=0)
    # |sum| >= 1.1 when no sign, -0.2's, or 0.1's and -0.2's flip, or the mirror images: 6 of 32 patterns.
    assert exact == 6 / 32
    assert result.p_value == pytest.approx(exact, abs=0.01)


def test_paired_statistic_test_planted_difference_and_none():
    rng = np.random.default_rng(3)
    actual = rng.random(200) < 0.4
    good = np.where(rng.random(200) < 0.9, actual, ~actual)  # 90% right
    poor = np.where(rng.random(200) < 0.6, actual, ~actual)  # 60% right
    better = paired_statistic_test(f1, (good, actual), (poor, actual), n_resamples=300, seed=0)
    assert better.difference == pytest.approx(f1(good, actual) - f1(poor, actual))
    assert better.low > 0 and better.p_value == pytest.approx(1 / 301)
    same = paired_statistic_test(f1, (good, actual), (good, actual), n_resamples=300, seed=0)
    assert (same.difference, same.p_value) == (0.0, 1.0)
    # For a mean, swapping a user's pair is a sign flip of the user's difference.
    reference = rng.random(200)
    model = reference + rng.normal(0.02, 0.1, 200)
    swapped = paired_statistic_test(np.mean, (model,), (reference,), n_resamples=3000, seed=1)
    flipped = paired_mean_test(model, reference, n_resamples=3000, seed=1)
    assert swapped.p_value == pytest.approx(flipped.p_value, abs=0.03)


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="no user to bootstrap"):
        bootstrap_mean_interval([np.nan])
    with pytest.raises(ValueError, match="confidence must lie in"):
        bootstrap_mean_interval([1.0], confidence=95)
    with pytest.raises(ValueError, match="lengths \\[2, 3\\]"):
        paired_mean_test([1.0, 2.0], [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="values: expected one value per user"):
        bootstrap_mean_interval([[1.0, 2.0]])
    with pytest.raises(ValueError, match="the same statistic arguments"):
        paired_statistic_test(f1, ([True],), ([True], [True]))
