"""Uncertainty of the comparison: 95% bootstrap intervals of each model's Combined headline metrics and a
paired test of each model against the reference (the composites' baseline, the single large LM).

The metrics are :data:`INTERVAL_METRICS`: HR, IoU and NDCG@10 are means of per-user values
(:func:`evaluation.uncertainty.bootstrap_mean_interval`, :func:`evaluation.uncertainty.paired_mean_test`);
Cart-or-Purchase F1 is a statistic of the per-user predicted and actual flags, recomputed on each
resample (:func:`evaluation.uncertainty.bootstrap_statistic_interval`,
:func:`evaluation.uncertainty.paired_statistic_test`). Users with an empty actual session are left out,
as in the metrics. Seeded: the same reports give the same intervals.

Example:
    >>> from datasets import Dataset
    >>> from evaluation.baselines import RepeatLastSessionBaseline
    >>> from evaluation.report import evaluate_generator
    >>> test = Dataset.from_dict({"input_sessions": [[["a", "cart"]], [["b"]], [["c"]]] * 4,
    ...                           "target_session": [["a", "cart"], ["b"], ["d"]] * 4})
    >>> report = evaluate_generator(RepeatLastSessionBaseline(), test, progress=False)
    >>> summary = uncertainty_summary([report], report, n_resamples=200)
    >>> hr = summary["intervals"]["model"]["HR"]
    >>> round(hr["estimate"], 4), hr["low"] <= hr["estimate"] <= hr["high"]
    (0.6667, True)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

import numpy as np

from .outcome_metrics import binary_scores
from .report_tables import markdown_table
from .uncertainty import (
    DEFAULT_RESAMPLES,
    bootstrap_mean_interval,
    bootstrap_statistic_interval,
    paired_mean_test,
    paired_statistic_test,
)

if TYPE_CHECKING:
    from .report import EvaluationReport, UserScores

INTERVAL_METRICS: tuple[str, ...] = ("HR", "IoU", "CoP F1", "NDCG@10")
CONFIDENCE = 0.95


def _f1(predicted: np.ndarray, actual: np.ndarray) -> float:
    return binary_scores(predicted, actual)["F1"]


def _cop_flags(scores: "UserScores") -> tuple[np.ndarray, np.ndarray]:
    """Predicted and actual Cart-or-Purchase flags of the evaluated users (NaN-free float arrays)."""
    outcomes = scores.outcomes
    evaluated = outcomes["evaluated"]
    predicted = (outcomes["predicted_cart"] | outcomes["predicted_purchase"])[evaluated]
    actual = (outcomes["actual_cart"] | outcomes["actual_purchase"])[evaluated]
    return predicted.astype(np.float64), actual.astype(np.float64)


def combined_intervals(scores: "UserScores", n_resamples: int = DEFAULT_RESAMPLES, seed: int = 0) -> dict[str, Any]:
    """The bootstrap interval of each metric of :data:`INTERVAL_METRICS` over all users."""
    intervals = {}
    for metric in INTERVAL_METRICS:
        if metric == "CoP F1":
            interval = bootstrap_statistic_interval(
                _f1, *_cop_flags(scores), confidence=CONFIDENCE, n_resamples=n_resamples, seed=seed
            )
        else:
            interval = bootstrap_mean_interval(scores.per_user(metric), CONFIDENCE, n_resamples, seed)
        intervals[metric] = asdict(interval)
    return intervals


def paired_tests(
    scores: "UserScores", reference: "UserScores", n_resamples: int = DEFAULT_RESAMPLES, seed: int = 0
) -> dict[str, Any]:
    """Model minus reference on the same users for each metric of :data:`INTERVAL_METRICS`."""
    tests = {}
    for metric in INTERVAL_METRICS:
        if metric == "CoP F1":
            (model_predicted, actual), (reference_predicted, _) = _cop_flags(scores), _cop_flags(reference)
            test = paired_statistic_test(
                _f1, (model_predicted, actual), (reference_predicted, actual), CONFIDENCE, n_resamples, seed
            )
        else:
            test = paired_mean_test(scores.per_user(metric), reference.per_user(metric), CONFIDENCE, n_resamples, seed)
        tests[metric] = asdict(test)
    return tests


def uncertainty_summary(
    reports: Sequence["EvaluationReport"],
    reference: "EvaluationReport | None",
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
) -> dict[str, Any]:
    """Intervals of every report and, with a reference, each other report's paired tests against it.

    Raises ``ValueError`` when a report was scored on other users than the reference.
    """
    summary: dict[str, Any] = {
        "confidence": CONFIDENCE,
        "n_resamples": n_resamples,
        "metrics": list(INTERVAL_METRICS),
        "intervals": {},
        "paired": None,
    }
    for report in reports:
        summary["intervals"][report.name] = combined_intervals(report.scores, n_resamples, seed)
    if reference is not None:
        tests = {}
        for report in reports:
            if report is reference:
                continue
            if report.user_ids != reference.user_ids:
                raise ValueError(f"{report.name} and {reference.name} were scored on different users: no paired test")
            tests[report.name] = paired_tests(report.scores, reference.scores, n_resamples, seed)
        summary["paired"] = {
            "reference": reference.name,
            "tests": tests,
            "method": "paired bootstrap interval of the difference; two-sided paired permutation test",
        }
    return summary


def _cell(value: float, low: float, high: float) -> str:
    return f"{value:.3f} [{low:.3f}, {high:.3f}]"


def _p_value(p_value: float) -> str:
    """``p=0.012``, or ``p<0.001`` (the smallest p-value of a permutation test is 1 / (1 + resamples)).

    Example:
        >>> _p_value(0.0123), _p_value(1 / 2001)
        ('p=0.012', 'p<0.001')
    """
    return "p<0.001" if p_value < 0.001 else f"p={p_value:.3f}"


def uncertainty_markdown(summary: dict[str, Any]) -> str:
    """The intervals table and, when present, the paired-tests table, as Markdown."""
    metrics = summary["metrics"]
    percent = f"{summary['confidence']:.0%}"
    rows = [
        {
            "Model": name,
            **{metric: _cell(i[metric]["estimate"], i[metric]["low"], i[metric]["high"]) for metric in metrics},
        }
        for name, i in summary["intervals"].items()
    ]
    text = (
        f"## {percent} bootstrap intervals (Combined, {summary['n_resamples']} resamples of the users)\n\n"
        + markdown_table(rows, ["Model", *metrics])
    )
    if summary["paired"]:
        paired = summary["paired"]
        rows = [
            {
                "Model": name,
                **{
                    metric: f"{_cell(t[metric]['difference'], t[metric]['low'], t[metric]['high'])} "
                    f"{_p_value(t[metric]['p_value'])}"
                    for metric in metrics
                },
            }
            for name, t in paired["tests"].items()
        ]
        text += (
            f"\n\n## Paired tests against {paired['reference']}: difference [{percent} interval], p-value\n\n"
            + markdown_table(rows, ["Model", *metrics])
        )
    return text
