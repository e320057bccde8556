"""Evaluation of browsing-session models: page generation, outcome prediction and outcome probabilities,
BLEU, ranking and composite metrics, thresholds chosen on validation, bootstrap intervals and paired
tests; plain functions and ``evaluate`` modules.

Names are imported lazily, so ``import evaluation`` stays cheap (no torch, no sacrebleu). The metric logic
lives in the ``evaluate`` module folders under ``evaluation/metrics/``, which load without this package.

Example:
    >>> import evaluate
    >>> from evaluation import metric_path, page_generation_scores
    >>> page_generation_scores([["home", "cart"]], [["cart"]], [["home"]])["IoP"]
    0.5
    >>> outcomes = evaluate.load(metric_path("browsing_outcomes"))
    >>> outcomes.compute(predictions=[["cart"]], references=[["cart"]])["CoP F1"]
    1.0
"""

from __future__ import annotations

import importlib
from typing import Any

# Public name -> module that defines it.
_EXPORTS: dict[str, str] = {
    "per_user_page_scores": "evaluation.page_metrics",
    "aggregate_page_scores": "evaluation.page_metrics",
    "page_generation_scores": "evaluation.page_metrics",
    "PAGE_MEAN_METRICS": "evaluation.page_metrics",
    "PAGE_VARIANCE_METRICS": "evaluation.page_metrics",
    "outcome_labels": "evaluation.outcome_metrics",
    "aggregate_outcome_scores": "evaluation.outcome_metrics",
    "outcome_scores": "evaluation.outcome_metrics",
    "OUTCOME_METRICS": "evaluation.outcome_metrics",
    "bleu_score": "evaluation.bleu",
    "sentence_bleu_scores": "evaluation.bleu",
    "ranking_scores": "evaluation.ranking",
    "target_ranks": "evaluation.ranking",
    "scores_from_ranks": "evaluation.ranking",
    "Forecast": "evaluation.forecasts",
    "Forecaster": "evaluation.forecasts",
    "SessionForecaster": "evaluation.forecasts",
    "BaselineForecaster": "evaluation.forecasts",
    "ModelForecaster": "evaluation.model_forecaster",
    "DecisionRule": "evaluation.decisions",
    "evaluate_forecaster": "evaluation.report",
    "forecast_split": "evaluation.report",
    "score_forecasts": "evaluation.report",
    "expected_iou": "evaluation.expected_iou",
    "expected_iou_set": "evaluation.expected_iou",
    "history_mixture": "evaluation.history_blend",
    "uncertainty_summary": "evaluation.comparison_uncertainty",
    "composite_scores": "evaluation.composite",
    "COMPOSITE_GROUPS": "evaluation.composite",
    "outcome_probability_scores": "evaluation.outcome_probabilities",
    "binary_probability_scores": "evaluation.outcome_probabilities",
    "f1_optimal_threshold": "evaluation.thresholds",
    "f1_optimal_outcome_thresholds": "evaluation.thresholds",
    "iou_optimal_page_threshold": "evaluation.thresholds",
    "pages_above_threshold": "evaluation.thresholds",
    "plot_reliability": "evaluation.reliability_plot",
    "bootstrap_mean_interval": "evaluation.uncertainty",
    "bootstrap_statistic_interval": "evaluation.uncertainty",
    "paired_mean_test": "evaluation.uncertainty",
    "paired_statistic_test": "evaluation.uncertainty",
    "metric_path": "evaluation.metric_modules",
    "METRIC_MODULES": "evaluation.metric_modules",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'evaluation' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
