"""The exogenous clusterwise baseline (paper section 4.2): K-means on the encoder embeddings, one LM per cluster.

Users are clustered once by scikit-learn K-means on their (frozen) encoder embeddings, K fixed
(paper: 6) or chosen by silhouette (``kmeans_k="auto"``; the paper got 2). Each cluster's predictor
starts as a copy of the pretrained single LM and is fine-tuned, with the standard
``transformers.Trainer``, on its cluster's training users only (validated on the validation users
routed to the same cluster). The result is a ``HeTLMForBrowsing`` with ``routing="centroids"``:
new users go to the nearest K-means centre, so it saves, loads and generates exactly like HeTLM.
The selector is also trained to mimic the K-means labels (reported as its agreement), which lets
the model route by ``routing="selector"`` too.

Example:
    >>> result = train_kmeans_baseline(splits, tokenizer, lm, "runs/kmeans", ClusterwiseSettings(kmeans_k="auto"))  # doctest: +SKIP
    >>> result.model.config.routing, result.model.config.num_clusters  # doctest: +SKIP
    ('centroids', 2)
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from accelerate import PartialState
from datasets import DatasetDict
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from modeling_hetlm import HeTLMForBrowsing

from .clustering import pretrain_selector
from .hetlm_training import HISTORY_FILE, routed_nll, segment_recovery
from .initialization import ClusterwiseSettings, initialize_clusterwise_model
from .pretrain import PretrainSettings, train_language_model

logger = logging.getLogger(__name__)


@dataclass
class KMeansBaselineResult:
    """What :func:`train_kmeans_baseline` returns: the model and per-cluster validation losses."""

    model: HeTLMForBrowsing
    history: dict[str, Any]


def train_kmeans_baseline(
    splits: DatasetDict,
    tokenizer: PreTrainedTokenizerBase,
    lm: PreTrainedModel,
    output_dir: str | os.PathLike,
    settings: ClusterwiseSettings | None = None,
    *,
    encoder_tokenizer: PreTrainedTokenizerBase | None = None,
    encoder_config: dict[str, Any] | None = None,
) -> KMeansBaselineResult:
    """Fit K-means, fine-tune one predictor per cluster from ``lm``, and save the clusterwise model to ``output_dir``."""
    settings = settings or ClusterwiseSettings()
    output_dir = Path(output_dir)
    start = initialize_clusterwise_model(
        splits, tokenizer, lm, settings, routing="centroids", encoder_tokenizer=encoder_tokenizer, encoder_config=encoder_config
    )
    model, users, clusters = start.model, start.users, start.clusters
    selector = pretrain_selector(
        model,
        np.asarray(users["train"]["user_embeddings"], dtype=np.float32),
        clusters.labels,
        epochs=settings.selector_pretrain_epochs,
        learning_rate=settings.selector_pretrain_learning_rate,
        seed=settings.seed,
    )
    lm_settings = PretrainSettings(
        max_length=settings.max_length,
        score=settings.score,
        learning_rate=settings.resolved_predictor_learning_rate("kmeans"),
        weight_decay=settings.predictor_weight_decay,
        batch_size=settings.batch_size,
        epochs=settings.epochs,
        warmup_ratio=settings.warmup_ratio,
        bf16=settings.bf16,
        seed=settings.seed,
        logging_steps=settings.logging_steps,
        extra_training_arguments=settings.extra_training_arguments,
    )
    validation = users.get("validation")
    validation_clusters = (
        model.assign_clusters(torch.tensor(validation["user_embeddings"], dtype=torch.float32)).numpy()
        if validation is not None
        else None
    )
    per_cluster = []
    for cluster in range(clusters.k):
        train_rows = np.flatnonzero(clusters.labels == cluster)
        cluster_validation = None
        if validation_clusters is not None and (validation_clusters == cluster).any():
            cluster_validation = validation.select(np.flatnonzero(validation_clusters == cluster))
        logger.info("K-means cluster %d: fine-tuning on %d users", cluster, len(train_rows))
        result = train_language_model(
            model.predictors[cluster],
            users["train"].select(train_rows),
            cluster_validation,
            tokenizer,
            output_dir / "trainer" / f"cluster-{cluster}",
            lm_settings,
        )
        per_cluster.append(
            {
                "cluster": cluster,
                "train_users": int(len(train_rows)),
                "validation_users": 0 if cluster_validation is None else len(cluster_validation),
                "initial_eval_loss": result.initial_eval_loss,
                "final_eval_loss": result.final_eval_loss,
            }
        )
    model.config.cluster_sizes = np.bincount(clusters.labels, minlength=clusters.k).tolist()
    history = {
        "settings": asdict(settings),
        "kmeans": {"k": clusters.k, "silhouette_by_k": clusters.silhouette_by_k, "sizes": model.config.cluster_sizes},
        "selector_agreement_with_kmeans": selector.accuracy,
        "segment_ari": segment_recovery(model, users["train"]),
        "routed_validation_nll": routed_nll(model, validation) if validation is not None else None,
        "clusters": per_cluster,
    }
    if PartialState().is_main_process:
        model.save_pretrained(
            output_dir,
            page_tokenizer=tokenizer,
            training_summary={"method": "K-means clusterwise (exogenous)", "training users": len(splits["train"]), "K": clusters.k},
        )
        (output_dir / HISTORY_FILE).write_text(json.dumps(history, indent=2, default=str) + "\n", encoding="utf-8")
    return KMeansBaselineResult(model=model, history=history)
