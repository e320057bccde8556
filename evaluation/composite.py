"""Composite metrics (paper §5.3, Table 5): how often a model beats a baseline over the 20 metrics.

Per group -- "Outcome Prediction" (the 10 outcome figures), "Page Gen Mean" (the 6 page means),
"Page Gen Var" (the 4 variances, where lower is better) -- and "Overall Composite" (all 20), the
score is wins / number of metrics. Wins, ties and losses are reported for every group
(``"<group> wins"``, ``"<group> ties"``, ``"<group> losses"``) so a reader sees the ties.

By default a tie is not a win: the score is the fraction of metrics where the model is strictly
better, as §5.3 states. The paper's Table 5 numbers are reproduced only when ties count as wins
(``ties_count_as_wins=True``) on its 3-decimal table values: OPT-350M HeTLM (α=2, β=1) ties
OPT-2.7B on Cart Acc (0.74 = 0.74) and the table says 0.3, i.e. 3 of 10 with the tie, not 2.
``decimals`` rounds both rows before comparing, so differences below the shown precision tie.

Both rows must hold every one of the 20 metrics as a finite number; a missing or NaN metric is an
error, never a silent skip. Other keys (N, BLEU, names) are ignored.

Example:
    >>> from evaluation.composite import COMPOSITE_GROUPS, composite_scores
    >>> baseline = {metric: 0.5 for group in COMPOSITE_GROUPS.values() for metric in group}
    >>> model = dict(baseline, HR=0.6, **{"HR-var": 0.4, "CoP F1": 0.4})
    >>> scores = composite_scores(model, baseline)
    >>> scores["Page Gen Mean"], scores["Page Gen Var"], scores["Outcome Prediction losses"]
    (0.16666666666666666, 0.25, 1)
    >>> scores["Overall Composite"], scores["Overall Composite ties"]
    (0.1, 17)
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping

from evaluation.outcome_metrics import OUTCOME_METRICS
from evaluation.page_metrics import PAGE_MEAN_METRICS, PAGE_VARIANCE_METRICS

# Column order of the paper's Table 5.
COMPOSITE_GROUPS: dict[str, tuple[str, ...]] = {
    "Outcome Prediction": OUTCOME_METRICS,
    "Page Gen Mean": PAGE_MEAN_METRICS,
    "Page Gen Var": PAGE_VARIANCE_METRICS,
}
OVERALL = "Overall Composite"
LOWER_IS_BETTER: frozenset[str] = frozenset(PAGE_VARIANCE_METRICS)


def compare_metric(metric: str, model_value: float, baseline_value: float, decimals: int | None = None) -> int:
    """+1 if the model is better on ``metric``, 0 on a tie, -1 if worse (lower is better for variances).

    Example:
        >>> compare_metric("HR", 0.8, 0.7), compare_metric("HR-var", 0.8, 0.7), compare_metric("IoA", 0.7004, 0.7, 3)
        (1, -1, 0)
    """
    if decimals is not None:
        model_value, baseline_value = round(model_value, decimals), round(baseline_value, decimals)
    if model_value == baseline_value:
        return 0
    better = model_value < baseline_value if metric in LOWER_IS_BETTER else model_value > baseline_value
    return 1 if better else -1


def composite_scores(
    model_row: Mapping[str, float],
    baseline_row: Mapping[str, float],
    ties_count_as_wins: bool = False,
    decimals: int | None = None,
) -> dict[str, float | int]:
    """Composite scores of ``model_row`` against ``baseline_row`` with wins, ties and losses per group.

    Args:
        model_row: the model's metrics (e.g. a Combined row: page generation and outcome scores).
        baseline_row: the baseline model's metrics, same names.
        ties_count_as_wins: count a tie as a win in the score (the paper's tables); the counts
            are reported either way.
        decimals: round both values to this many decimals before comparing (the paper shows 3).

    Returns keys "Outcome Prediction", "Page Gen Mean", "Page Gen Var", "Overall Composite" (the
    scores) and, for each of them, "<name> wins", "<name> ties", "<name> losses".

    Example:
        >>> row = {metric: 0.5 for group in COMPOSITE_GROUPS.values() for metric in group}
        >>> composite_scores(row, row, ties_count_as_wins=True)["Overall Composite"]
        1.0
    """
    outcomes = {metric: _compare(metric, model_row, baseline_row, decimals) for metric in _all_metrics()}
    counts = {group: [outcomes[metric] for metric in metrics] for group, metrics in COMPOSITE_GROUPS.items()}
    counts[OVERALL] = list(outcomes.values())
    scores: dict[str, float | int] = {}
    for group, results in counts.items():
        wins, ties = results.count(1), results.count(0)
        scores[group] = (wins + ties if ties_count_as_wins else wins) / len(results)
    for group, results in counts.items():
        scores[f"{group} wins"] = results.count(1)
        scores[f"{group} ties"] = results.count(0)
        scores[f"{group} losses"] = results.count(-1)
    return scores


def _all_metrics() -> tuple[str, ...]:
    return tuple(metric for metrics in COMPOSITE_GROUPS.values() for metric in metrics)


def _compare(
    metric: str, model_row: Mapping[str, float], baseline_row: Mapping[str, float], decimals: int | None
) -> int:
    values = []
    for row_name, row in (("model_row", model_row), ("baseline_row", baseline_row)):
        if metric not in row:
            raise KeyError(f"{row_name} has no {metric!r}; composite scores need all 20 metrics: {_all_metrics()}")
        value = row[metric]
        if not isinstance(value, numbers.Real) or not math.isfinite(value):
            raise ValueError(f"{row_name}[{metric!r}] must be a finite number, got {value!r}")
        values.append(float(value))
    return compare_metric(metric, values[0], values[1], decimals)
