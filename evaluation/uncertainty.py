"""Uncertainty of metrics over users: bootstrap intervals and paired tests of two models.

- :func:`bootstrap_mean_interval`: the percentile bootstrap interval of a per-user metric's mean
  (HR, IoU, NDCG@10, ...): resample the users with replacement, take the mean, report the
  ``(1 - confidence) / 2`` and ``(1 + confidence) / 2`` percentiles. Vectorised over resamples.
- :func:`bootstrap_statistic_interval`: the same for a statistic of the whole sample (e.g. the
  Cart-or-Purchase F1 of per-user predicted / actual flags), recomputed on each resample.
- :func:`paired_mean_test` and :func:`paired_statistic_test`: a model against a reference (e.g. the
  single large LM) on the same users. The difference is model minus reference; its interval is a
  paired bootstrap (the same resampled users for both); the two-sided p-value is a paired
  permutation test (approximate randomisation): under "no difference" the two models' values of a
  user are exchangeable, so each user's pair is swapped with probability 1/2 and the p-value is
  ``(1 + #{|resampled difference| >= |observed difference|}) / (1 + n_resamples)``. For a mean, the
  swap is a sign flip of the user's difference.

Every function is seeded (``seed``), so the same inputs give the same interval. Users with a NaN
value (e.g. excluded for an empty actual session) are left out, counted in ``n_skipped_nan`` and
logged.

Example:
    >>> interval = bootstrap_mean_interval([1, 0, 1, 1, 0, 1, 1, 0], seed=0)
    >>> interval.estimate, interval.low <= interval.estimate <= interval.high
    (0.625, True)
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

logger = logging.getLogger(__name__)

DEFAULT_RESAMPLES = 2000
# Resampled index matrices are built in chunks of about this many entries (32 MiB of int64).
_CHUNK_ENTRIES = 1 << 22


@dataclass(frozen=True)
class Interval:
    """A metric's value on all users and its bootstrap interval."""

    estimate: float
    low: float
    high: float
    confidence: float
    n_users: int
    n_resamples: int
    n_skipped_nan: int = 0


@dataclass(frozen=True)
class PairedComparison:
    """Model minus reference on the same users: the difference, its paired bootstrap interval and the
    two-sided p-value of the paired permutation test."""

    difference: float
    low: float
    high: float
    p_value: float
    confidence: float
    n_users: int
    n_resamples: int
    method: str
    n_skipped_nan: int = 0


def bootstrap_mean_interval(
    values: ArrayLike, confidence: float = 0.95, n_resamples: int = DEFAULT_RESAMPLES, seed: int = 0
) -> Interval:
    """Percentile bootstrap interval of the mean of per-user ``values`` (NaN users skipped and counted).

    Example:
        >>> a = bootstrap_mean_interval([0.2, 0.4, 0.9, 0.5], seed=3)
        >>> a == bootstrap_mean_interval([0.2, 0.4, 0.9, 0.5], seed=3), round(a.estimate, 2), a.n_users
        (True, 0.5, 4)
    """
    (values,), n_skipped = _without_nan([_as_values(values, "values")])
    _check_settings(values.size, confidence, n_resamples)
    resamples = _resampled_indices(values.size, n_resamples, seed)
    means = np.concatenate([values[indices].mean(axis=1) for indices in resamples])
    return _interval(float(values.mean()), means, confidence, values.size, n_skipped)


def bootstrap_statistic_interval(
    statistic: Callable[..., float],
    *per_user: ArrayLike,
    confidence: float = 0.95,
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
) -> Interval:
    """Percentile bootstrap interval of ``statistic(*per_user)``, recomputed on resampled users.

    ``per_user`` are arrays with one entry per user (e.g. predicted and actual flags); each resample
    draws the same users from all of them.

    Example:
        >>> from evaluation.outcome_metrics import binary_scores
        >>> def cop_f1(predicted, actual):
        ...     return binary_scores(predicted, actual)["F1"]
        >>> predicted = [True, True, False, True, False, False]
        >>> actual = [True, False, False, True, True, False]
        >>> interval = bootstrap_statistic_interval(cop_f1, predicted, actual, n_resamples=500, seed=0)
        >>> round(interval.estimate, 4), interval.low <= interval.estimate <= interval.high
        (0.6667, True)
    """
    arrays, n_skipped = _without_nan([_as_values(array, f"per_user[{i}]") for i, array in enumerate(per_user)])
    n_users = _common_length(arrays)
    _check_settings(n_users, confidence, n_resamples)
    resampled = [
        statistic(*(array[row] for array in arrays))
        for indices in _resampled_indices(n_users, n_resamples, seed)
        for row in indices
    ]
    return _interval(float(statistic(*arrays)), np.asarray(resampled, dtype=float), confidence, n_users, n_skipped)


def paired_mean_test(
    model_values: ArrayLike,
    reference_values: ArrayLike,
    confidence: float = 0.95,
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
) -> PairedComparison:
    """Mean of model minus reference per-user values: paired bootstrap interval and sign-flip p-value.

    Users with a NaN in either model are skipped and counted.

    Example:
        >>> import numpy as np
        >>> reference = np.random.default_rng(0).random(200)
        >>> better = paired_mean_test(reference + 0.1, reference, seed=0)
        >>> round(better.difference, 4), better.low > 0, better.p_value < 0.01
        (0.1, True, True)
        >>> paired_mean_test(reference, reference, seed=0).p_value
        1.0
    """
    (model, reference), n_skipped = _without_nan(
        [_as_values(model_values, "model_values"), _as_values(reference_values, "reference_values")]
    )
    differences = model - reference
    interval = bootstrap_mean_interval(differences, confidence, n_resamples, seed)
    observed = float(differences.mean())
    rng = np.random.default_rng(seed)
    exceed = 0
    for rows in _chunk_sizes(differences.size, n_resamples):
        signs = rng.choice((-1.0, 1.0), size=(rows, differences.size))
        exceed += _count_at_least(np.abs((signs * differences).mean(axis=1)), abs(observed))
    return PairedComparison(
        difference=observed,
        low=interval.low,
        high=interval.high,
        p_value=(1 + exceed) / (1 + n_resamples),
        confidence=confidence,
        n_users=differences.size,
        n_resamples=n_resamples,
        method="paired bootstrap interval (percentile); two-sided sign-flip permutation test",
        n_skipped_nan=n_skipped,
    )


def paired_statistic_test(
    statistic: Callable[..., float],
    model_per_user: Sequence[ArrayLike],
    reference_per_user: Sequence[ArrayLike],
    confidence: float = 0.95,
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
) -> PairedComparison:
    """``statistic(*model_per_user) - statistic(*reference_per_user)``: paired bootstrap interval and the
    p-value of a paired permutation test that swaps each user's model and reference entries.

    Both sequences hold the statistic's arguments in the same order and one entry per user; an
    argument shared by both (e.g. the actual flags) is passed in both.

    Example:
        >>> from evaluation.outcome_metrics import binary_scores
        >>> def f1(predicted, actual):
        ...     return binary_scores(predicted, actual)["F1"]
        >>> actual = [True, False, True, False] * 25
        >>> same = paired_statistic_test(f1, (actual, actual), (actual, actual), n_resamples=200)
        >>> same.difference, same.p_value
        (0.0, 1.0)
        >>> worse = paired_statistic_test(f1, ([True] * 100, actual), (actual, actual), n_resamples=200)
        >>> round(worse.difference, 4), worse.high < 0, worse.p_value < 0.01
        (-0.3333, True, True)
    """
    if len(model_per_user) != len(reference_per_user):
        raise ValueError(
            f"the model and the reference need the same statistic arguments, got {len(model_per_user)} and "
            f"{len(reference_per_user)}"
        )
    arrays = [_as_values(array, f"model_per_user[{i}]") for i, array in enumerate(model_per_user)]
    arrays += [_as_values(array, f"reference_per_user[{i}]") for i, array in enumerate(reference_per_user)]
    arrays, n_skipped = _without_nan(arrays)
    n_users = _common_length(arrays)
    _check_settings(n_users, confidence, n_resamples)
    model, reference = arrays[: len(model_per_user)], arrays[len(model_per_user) :]

    def difference(model_arrays: Sequence[np.ndarray], reference_arrays: Sequence[np.ndarray]) -> float:
        return float(statistic(*model_arrays) - statistic(*reference_arrays))

    observed = difference(model, reference)
    bootstrap = [
        difference([array[row] for array in model], [array[row] for array in reference])
        for indices in _resampled_indices(n_users, n_resamples, seed)
        for row in indices
    ]
    interval = _interval(observed, np.asarray(bootstrap), confidence, n_users, n_skipped)
    rng = np.random.default_rng(seed)
    permuted = []
    for _ in range(n_resamples):
        swap = rng.random(n_users) < 0.5
        permuted.append(
            difference(
                [np.where(swap, ref, mod) for mod, ref in zip(model, reference)],
                [np.where(swap, mod, ref) for mod, ref in zip(model, reference)],
            )
        )
    exceed = _count_at_least(np.abs(np.asarray(permuted)), abs(observed))
    return PairedComparison(
        difference=observed,
        low=interval.low,
        high=interval.high,
        p_value=(1 + exceed) / (1 + n_resamples),
        confidence=confidence,
        n_users=n_users,
        n_resamples=n_resamples,
        method="paired bootstrap interval (percentile); two-sided paired permutation test (swap per user)",
        n_skipped_nan=n_skipped,
    )


def _as_values(values: ArrayLike, name: str) -> np.ndarray:
    array = np.asarray(values)
    if array.ndim != 1:
        raise ValueError(f"{name}: expected one value per user, got an array of shape {array.shape}")
    if array.dtype != bool and not np.issubdtype(array.dtype, np.number):
        raise ValueError(f"{name}: expected numbers or booleans, got dtype {array.dtype}")
    return array


def _without_nan(arrays: list[np.ndarray]) -> tuple[list[np.ndarray], int]:
    """Drop the users with a NaN in any array (arrays of different lengths are an error)."""
    n_users = _common_length(arrays)
    keep = np.ones(n_users, dtype=bool)
    for array in arrays:
        if np.issubdtype(array.dtype, np.floating):
            keep &= ~np.isnan(array)
    n_skipped = int(n_users - keep.sum())
    if n_skipped:
        logger.info("uncertainty: %d of %d users skipped for a NaN value", n_skipped, n_users)
    return [array[keep] for array in arrays], n_skipped


def _common_length(arrays: Sequence[np.ndarray]) -> int:
    lengths = {len(array) for array in arrays}
    if len(lengths) != 1:
        raise ValueError(f"every per-user array needs one entry per user, got lengths {sorted(lengths)}")
    return lengths.pop()


def _check_settings(n_users: int, confidence: float, n_resamples: int) -> None:
    if n_users == 0:
        raise ValueError("no user to bootstrap (every value missing or NaN)")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence}")
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be at least 1, got {n_resamples}")


def _chunk_sizes(n_users: int, n_resamples: int) -> list[int]:
    rows = max(1, _CHUNK_ENTRIES // n_users)
    return [min(rows, n_resamples - start) for start in range(0, n_resamples, rows)]


def _resampled_indices(n_users: int, n_resamples: int, seed: int):
    """Yield (rows, n_users) matrices of users drawn with replacement, ``n_resamples`` rows in all."""
    rng = np.random.default_rng(seed)
    for rows in _chunk_sizes(n_users, n_resamples):
        yield rng.integers(0, n_users, size=(rows, n_users))


def _count_at_least(values: np.ndarray, observed: float) -> int:
    # A resample that reproduces the observed value up to rounding (e.g. no swap) must count.
    return int(np.sum(values >= observed - 1e-12 * max(1.0, observed)))


def _interval(estimate: float, resampled: np.ndarray, confidence: float, n_users: int, n_skipped: int) -> Interval:
    tail = 100 * (1 - confidence) / 2
    low, high = np.percentile(resampled, [tail, 100 - tail])
    return Interval(estimate, float(low), float(high), confidence, n_users, resampled.size, n_skipped)
