"""The exogenous clusterwise baseline (paper section 4.2): K-means on the encoder embeddings, one LM per cluster.

Users are clustered once by scikit-learn K-means on their (frozen) encoder embeddings, one per
user (:mod:`trainers.initialization`), K fixed (paper: 6) or chosen by silhouette
(``kmeans_k="auto"``; the paper got 2). Each cluster's predictor starts as a copy of the pretrained
single LM and is fine-tuned, with the standard ``transformers.Trainer``, on every example of its
cluster's training users only (validated on the validation users
routed to the same cluster). The result is a ``HeTLMForBrowsing`` with ``routing="centroids"``:
new users go to the nearest K-means centre, so it saves, loads and generates exactly like HeTLM.
The selector is also trained to mimic the K-means labels (reported as its agreement), which lets
the model route by ``routing="selector"`` too.

Example:
    >>> args = ClusterwiseTrainingArguments(kmeans_k="auto")
    >>> result = train_kmeans_baseline(splits, tokenizer, lm, "runs/kmeans", args)  # doctest: +SKIP
    >>> result.model.config.routing, result.model.config.num_clusters  # doctest: +SKIP
    ('centroids', 2)
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from datasets import DatasetDict
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from modeling_hetlm import HeTLMForBrowsing

from .hetlm_training import routed_nll, routing_figures, segment_recovery
from .initialization import save_clusterwise_model, start_clusterwise_training, training_cluster_profiles
from .pretrain import train_language_model
from .training_arguments import ClusterwiseTrainingArguments

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
    args: ClusterwiseTrainingArguments | None = None,
    *,
    encoder_tokenizer: PreTrainedTokenizerBase | None = None,
    encoder_config: dict[str, Any] | None = None,
) -> KMeansBaselineResult:
    """Fit K-means, fine-tune one predictor per cluster from ``lm``, and save the clusterwise model to
    ``output_dir``."""
    args = args or ClusterwiseTrainingArguments()
    output_dir = Path(output_dir)
    start = start_clusterwise_training(
        splits,
        tokenizer,
        lm,
        args,
        routing="centroids",
        encoder_tokenizer=encoder_tokenizer,
        encoder_config=encoder_config,
    )
    model, users, clusters = start.model, start.users, start.clusters
    validation = users.get("validation")
    validation_clusters = (
        model.assign_clusters(torch.tensor(validation["user_embeddings"], dtype=torch.float32)).numpy()
        if validation is not None
        else None
    )
    per_cluster = []
    row_clusters = start.train_row_clusters
    for cluster in range(clusters.k):
        train_rows = np.flatnonzero(row_clusters == cluster)
        cluster_validation = None
        if validation_clusters is not None and (validation_clusters == cluster).any():
            cluster_validation = validation.select(np.flatnonzero(validation_clusters == cluster))
        cluster_users = int((clusters.labels == cluster).sum())
        logger.info(
            "K-means cluster %d: fine-tuning on %d users (%d examples)", cluster, cluster_users, len(train_rows)
        )
        result = train_language_model(
            model.predictors[cluster],
            users["train"].select(train_rows),
            cluster_validation,
            tokenizer,
            output_dir / "trainer" / f"cluster-{cluster}",
            args,
            save_strategy="no",
            prediction_loss_only=False,
            ddp_find_unused_parameters=False,
        )
        per_cluster.append(
            {
                "cluster": cluster,
                "train_users": cluster_users,
                "train_examples": int(len(train_rows)),
                "validation_users": 0 if cluster_validation is None else len(cluster_validation),
                "initial_eval_loss": result.initial_eval_loss,
                "final_eval_loss": result.final_eval_loss,
                "bf16": result.bf16,
            }
        )
    cluster_sizes = np.bincount(clusters.labels, minlength=clusters.k).tolist()
    history = {
        "settings": args.to_dict(),
        "kmeans": {"k": clusters.k, "silhouette_by_k": clusters.silhouette_by_k, "sizes": cluster_sizes},
        "cluster_sizes": cluster_sizes,
        "selector_agreement_with_kmeans": start.selector.accuracy,
        "segment_ari": segment_recovery(model, start.train_users_latest),
        "routed_validation_nll": routed_nll(model, validation) if validation is not None else None,
        "routed_validation_target_nll": (
            routed_nll(model, validation, target_only=True) if validation is not None else None
        ),
        "likelihood_routing": routing_figures(model, validation, start.train_users_latest, "likelihood"),
        "clusters": per_cluster,
        "bf16": any(item["bf16"] for item in per_cluster),
    }
    card_summary = {
        "method": "K-means clusterwise (exogenous)",
        "training users": len(clusters.labels),
        "training examples": len(users["train"]),
        "K": clusters.k,
        "cluster_sizes": cluster_sizes,
    }
    profiles = training_cluster_profiles(model, start, splits["train"])
    save_clusterwise_model(model, output_dir, tokenizer, history, card_summary, profiles)
    return KMeansBaselineResult(model=model, history=history)
