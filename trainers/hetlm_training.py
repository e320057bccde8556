"""HeTLM end to end (Algorithm 1): from a pretrained single LM and a prepared dataset to a saved HeTLM folder.

1. embeddings of all users (frozen encoder, once); 2. centroids by K-means and the selector
pretrained to mimic its labels; 3. every predictor a copy of the pretrained LM; 4. actor-critic
fine-tuning with :class:`~trainers.hetlm_trainer.HeTLMTrainer` (endogenous K); then the retired
clusters are removed and the model saved with ``save_pretrained`` (page tokenizer and model card
included) next to ``training_history.json``.

Example:
    >>> args = ClusterwiseTrainingArguments(num_clusters=6)
    >>> result = train_hetlm(splits, tokenizer, lm, "runs/hetlm", args)  # doctest: +SKIP
    >>> result.final_eval_nll < result.initial_eval_nll  # doctest: +SKIP
    True
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
from sklearn.metrics import adjusted_rand_score
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from modeling_hetlm import HeTLMForBrowsing

from .hetlm_trainer import HeTLMTrainer
from .initialization import ClusterwiseStart, save_clusterwise_model, start_clusterwise_training
from .training_arguments import ClusterwiseTrainingArguments, resolve_training_arguments

logger = logging.getLogger(__name__)


@dataclass
class HeTLMResult:
    """What :func:`train_hetlm` returns; NLLs are per-token means per user, averaged over validation users."""

    model: HeTLMForBrowsing
    trainer: HeTLMTrainer
    initial_eval_nll: float
    final_eval_nll: float
    history: dict[str, Any]


def segment_recovery(model: HeTLMForBrowsing, users, split: str = "train") -> float | None:
    """Adjusted Rand index between the model's routing and the users' true ``segment`` (None without one).

    Example:
        >>> segment_recovery(model, users)  # doctest: +SKIP
        0.83
    """
    if "segment" not in users.column_names:
        return None
    embeddings = torch.tensor(users["user_embeddings"], dtype=torch.float32)
    assignments = model.assign_clusters(embeddings).numpy()
    return float(adjusted_rand_score(np.asarray(users["segment"]), assignments))


def build_hetlm_trainer(
    start: ClusterwiseStart, output_dir: str | os.PathLike, args: ClusterwiseTrainingArguments
) -> HeTLMTrainer:
    """The :class:`HeTLMTrainer` over ``start``'s users with ``args`` (``learning_rate``, ``weight_decay``: the predictors')."""
    has_validation = "validation" in start.users
    num_parameters = start.model.predictors[0].num_parameters()
    arguments = resolve_training_arguments(args, output_dir, num_parameters, has_validation)
    columns = ["input_ids", "labels", "user_embeddings"]
    return HeTLMTrainer(
        model=start.model,
        args=arguments,
        train_dataset=start.users["train"].select_columns(columns),
        eval_dataset=start.users["validation"].select_columns(columns) if has_validation else None,
        selector_learning_rate=args.selector_learning_rate,
        selector_weight_decay=args.selector_weight_decay,
        min_cluster_size=args.resolved_min_cluster_size(len(start.clusters.labels)),
        prune_every_steps=args.prune_every_steps,
    )


def train_hetlm(
    splits: DatasetDict,
    tokenizer: PreTrainedTokenizerBase,
    lm: PreTrainedModel,
    output_dir: str | os.PathLike,
    args: ClusterwiseTrainingArguments | None = None,
    *,
    resume_from_checkpoint: str | bool | None = None,
    encoder_tokenizer: PreTrainedTokenizerBase | None = None,
    encoder_config: dict[str, Any] | None = None,
) -> HeTLMResult:
    """Train HeTLM from the pretrained single LM ``lm`` on ``splits`` and save it to ``output_dir``.

    ``encoder_tokenizer`` / ``encoder_config`` replace all-MiniLM-L6-v2 by another BERT (tests use a
    tiny random one). Under ``torchrun`` every rank runs the same (seeded) initialisation and only
    the main process writes the model.
    """
    args = args or ClusterwiseTrainingArguments()
    output_dir = Path(output_dir)
    start = start_clusterwise_training(
        splits, tokenizer, lm, args, encoder_tokenizer=encoder_tokenizer, encoder_config=encoder_config
    )
    trainer = build_hetlm_trainer(start, output_dir / "trainer", args)
    has_validation = trainer.eval_dataset is not None
    initial_eval_nll = trainer.evaluate()["eval_loss"] if has_validation else float("nan")
    ari_before = segment_recovery(start.model, start.users["train"])
    trainer.train(resume_from_checkpoint=resume_from_checkpoint)
    kept = trainer.finalize_clusters()
    model = trainer.model
    final_eval_nll = trainer.evaluate()["eval_loss"] if has_validation else float("nan")
    ari_after = segment_recovery(model, start.users["train"])
    history = {
        "settings": args.to_dict(),
        "bf16": bool(trainer.args.bf16),  # the value used (args.bf16 None resolved), to reproduce the run
        "kmeans": {
            "k": start.clusters.k,
            "silhouette_by_k": start.clusters.silhouette_by_k,
            "sizes": np.bincount(start.clusters.labels, minlength=start.clusters.k).tolist(),
        },
        "selector_pretraining": start.selector.history,
        "initial_eval_nll": initial_eval_nll,
        "final_eval_nll": final_eval_nll,
        "segment_ari_kmeans_init": ari_before,
        "segment_ari": ari_after,
        "kept_clusters": kept,
        "cluster_sizes": trainer.cluster_sizes,
        "cluster_history": trainer.cluster_history,
        "log_history": trainer.state.log_history,
    }
    logger.info(
        "HeTLM: K %d -> %d, validation NLL %.4f -> %.4f, segment ARI %s -> %s",
        start.clusters.k, len(kept), initial_eval_nll, final_eval_nll, ari_before, ari_after,
    )
    save_clusterwise_model(model, output_dir, tokenizer, history, _card_summary(history, splits))
    return HeTLMResult(model, trainer, initial_eval_nll, final_eval_nll, history)


def _card_summary(history: dict[str, Any], splits: DatasetDict) -> dict[str, Any]:
    return {
        "method": "HeTLM (actor-critic, endogenous K)",
        "training users": len(splits["train"]),
        "initial K (K-means)": history["kmeans"]["k"],
        "final K": len(history["kept_clusters"]),
        "validation NLL before / after": f"{history['initial_eval_nll']:.4f} / {history['final_eval_nll']:.4f}",
        "cluster_sizes": history["cluster_sizes"],
    }
