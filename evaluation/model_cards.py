"""Write an evaluation's Combined metrics back into the model cards of the HeTLM folders it scored.

Example:
    >>> write_metrics_to_model_cards({"most-popular": None})  # a baseline has no card: nothing written
    []
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

from modeling_hetlm.hub_hetlm import CARD_FACTS_FILE, update_model_card

from .outcome_metrics import OUTCOME_METRICS
from .page_metrics import PAGE_MEAN_METRICS
from .report import EvaluationReport

logger = logging.getLogger(__name__)

CARD_METRICS: tuple[str, ...] = (*PAGE_MEAN_METRICS, *OUTCOME_METRICS)


def write_metrics_to_model_cards(reports: Mapping[str, EvaluationReport | None]) -> list[Path]:
    """For each scored spec that is a saved HeTLM folder (it has `hetlm_card.json`), put the report's Combined
    headline metrics (page means and outcome metrics) into the folder's card; returns the cards written."""
    written = []
    for spec, report in reports.items():
        if report is None or not (Path(spec) / CARD_FACTS_FILE).is_file():
            continue
        combined = report.combined
        metrics = {name: combined[name] for name in CARD_METRICS if name in combined}
        split = report.metadata.get("split", "test")
        named = {f"{name} ({split})": value for name, value in metrics.items()}
        written.append(update_model_card(spec, metrics=named))
        logger.info("%s: %d metrics written to its model card", spec, len(metrics))
    return written


__all__ = ["CARD_METRICS", "write_metrics_to_model_cards"]
