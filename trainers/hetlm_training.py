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

from .checkpoints import newest_complete_checkpoint
from .data import BrowsingCollator
from .hetlm_trainer import HeTLMTrainer
from .initial_partition import apply_partition, choose_initial_partition
from .initialization import (
    ClusterwiseStart,
    save_clusterwise_model,
    start_clusterwise_training,
    training_cluster_profiles,
    user_rows,
)
from .reassignment import LABEL_FOLLOWING
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


def segment_recovery(model: HeTLMForBrowsing, users, routing: str | None = None) -> float | None:
    """Adjusted Rand index between the model's routing (``config.routing`` unless ``routing`` is given) and the
    users' true ``segment`` (None without one).

    Example:
        >>> segment_recovery(model, users)  # doctest: +SKIP
        0.83
    """
    if "segment" not in users.column_names:
        return None
    routing = routing or model.config.routing
    if routing == "likelihood":
        assignments = route_and_score(model, users)[0]
    else:
        embeddings = torch.tensor(users["user_embeddings"], dtype=torch.float32)
        assignments = model.assign_clusters(embeddings, routing=routing).numpy()
    return float(adjusted_rand_score(np.asarray(users["segment"]), assignments))


@torch.no_grad()
def route_and_score(
    model: HeTLMForBrowsing, users, batch_size: int = 64, target_only: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Each user's cluster under ``config.routing`` and its per-token NLL under that cluster's predictor (the
    routing sees the user's input history only; the NLL scores the user's ``labels``, or with ``target_only``
    just the tokens after its last ``[BOS]``: the next session, which no routing has seen).

    Example:
        >>> clusters, nll = route_and_score(model, users["validation"])  # doctest: +SKIP
    """
    was_training = model.training
    model.eval()
    collator = BrowsingCollator(pad_token_id=model.config.pad_token_id)
    columns = users.select_columns(["input_ids", "labels", "user_embeddings"])
    clusters, nll = [], []
    for start in range(0, len(columns), batch_size):
        batch = collator(columns.select(range(start, min(start + batch_size, len(columns)))).to_list())
        if target_only:
            batch["labels"] = _target_labels(batch["input_ids"], batch["labels"], model.config.bos_token_id)
        outputs = model(**batch, compute_selector_loss=False)
        clusters.append(outputs.assignments.cpu())
        nll.append(outputs.per_cluster_nll.gather(1, outputs.assignments.unsqueeze(1)).squeeze(1).float().cpu())
    model.train(was_training)
    return torch.cat(clusters).numpy(), torch.cat(nll).numpy()


def _target_labels(input_ids: torch.Tensor, labels: torch.Tensor, bos_token_id: int) -> torch.Tensor:
    """``labels`` with every position up to each row's last ``[BOS]`` set to -100 (the target session kept)."""
    positions = torch.arange(input_ids.shape[1])
    last_bos = torch.where(input_ids == bos_token_id, positions, -1).amax(dim=1, keepdim=True)
    return labels.masked_fill(positions <= last_bos, -100)


def routed_nll(model: HeTLMForBrowsing, users, batch_size: int = 64, target_only: bool = False) -> float:
    """Mean over ``users`` of each user's per-token NLL under the predictor it is routed to (``config.routing``):
    the figure HeTLM and the K-means baseline are compared on (``target_only``: the next session's tokens only).

    Example:
        >>> routed_nll(model, users["validation"])  # doctest: +SKIP
        2.84
    """
    return float(route_and_score(model, users, batch_size, target_only)[1].mean())


def routing_figures(model: HeTLMForBrowsing, validation, train_users, routing: str) -> dict[str, Any] | None:
    """Routed validation NLL (stream and next session) and segment ARI of ``model`` under another ``routing`` rule
    (its own restored after): e.g. the K-means predictors routed by likelihood separate what a routing rule gains
    from what learnt clusters gain. None without validation users.

    Example:
        >>> routing_figures(kmeans_model, users["validation"], train_users, "likelihood")  # doctest: +SKIP
        {'routed_validation_nll': 2.71, 'routed_validation_target_nll': 2.95, 'segment_ari': 0.70}
    """
    if validation is None:
        return None
    own = model.config.routing
    model.config.routing = routing
    try:
        return {
            "routed_validation_nll": routed_nll(model, validation),
            "routed_validation_target_nll": routed_nll(model, validation, target_only=True),
            "segment_ari": segment_recovery(model, train_users),
        }
    finally:
        model.config.routing = own


def last_sessions_only(users, model: HeTLMForBrowsing):
    """``users`` with ``labels`` on each stream's last session only (the tokens after its last ``[BOS]``).

    Example:
        >>> last_sessions_only(train_users, model)[0]["labels"]  # doctest: +SKIP
        [-100, -100, -100, -100, 17, 3]
    """
    bos = model.config.bos_token_id

    def mask(row):
        ids = torch.tensor([row["input_ids"]])
        return {"labels": _target_labels(ids, torch.tensor([row["labels"]]), bos)[0].tolist()}

    return users.map(mask, desc="Keeping last sessions")


def build_hetlm_trainer(
    start: ClusterwiseStart, output_dir: str | os.PathLike, args: ClusterwiseTrainingArguments
) -> HeTLMTrainer:
    """The :class:`HeTLMTrainer` over ``start``'s users with ``args`` (``learning_rate``, ``weight_decay``: the
    predictors'); moves are counted against ``start``'s K-means labels (one per training user)."""
    has_validation = "validation" in start.users
    num_parameters = start.model.predictors[0].num_parameters()
    arguments = resolve_training_arguments(args, output_dir, num_parameters, has_validation)
    columns = ["input_ids", "labels", "user_embeddings"]
    needs_users = args.reassignment in LABEL_FOLLOWING or args.cluster_batches
    train_columns = columns + ["user_index"] if needs_users else columns
    train_rows = start.users["train"]
    heldout_users = None
    if args.reassignment == "heldout_em":
        latest = user_rows(train_rows)[1]
        train_rows = train_rows.select(np.setdiff1d(np.arange(len(train_rows)), latest))
        heldout_users = last_sessions_only(start.train_users_latest.select_columns(columns), start.model)
        logger.info(
            "held-out EM: each training user's last session is scored, not trained on (%d of %d rows kept)",
            len(train_rows),
            len(start.users["train"]),
        )
    if args.merge_max_cost is not None and not has_validation:
        logger.warning(
            "merge_max_cost=%s is not used: merges are judged on validation users, and there are none",
            args.merge_max_cost,
        )
    return HeTLMTrainer(
        model=start.model,
        args=arguments,
        train_dataset=train_rows.select_columns(train_columns),
        eval_dataset=start.users["validation"].select_columns(columns) if has_validation else None,
        selector_learning_rate=args.selector_learning_rate,
        selector_weight_decay=args.selector_weight_decay,
        min_cluster_size=args.resolved_min_cluster_size(len(start.clusters.labels)),
        prune_every_steps=args.prune_every_steps,
        train_users=start.train_users_latest.select_columns(columns),
        reference_labels=start.clusters.labels,
        reassignment=args.reassignment,
        reassign_every_epochs=args.reassign_every_epochs,
        reassign_every_steps=args.reassign_every_steps,
        reassign_warmup_steps=args.reassign_warmup_steps,
        reassign_selector_epochs=args.reassign_selector_epochs,
        reassign_learning_rate=args.reassign_learning_rate,
        reassign_size_prior=args.reassign_size_prior,
        heldout_users=heldout_users,
        retire_min_gain=args.retire_min_gain,
        label_smoothing=args.selector_label_smoothing,
        grad_clipping=args.grad_clipping,
        cluster_batches=args.cluster_batches,
        merge_max_cost=args.merge_max_cost if has_validation else None,
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
    if resume_from_checkpoint is True:  # found before the minutes of embedding and K-means, not after
        resume_from_checkpoint = newest_complete_checkpoint(output_dir / "trainer")
        if resume_from_checkpoint is None:
            raise ValueError(f"No complete checkpoint found in {output_dir / 'trainer'} to resume from")
    if args.initial_partition == "likelihood" and "validation" not in splits:
        raise ValueError("initial_partition='likelihood' chooses the start on validation users, and there are none")
    start = start_clusterwise_training(
        splits,
        tokenizer,
        lm,
        args,
        routing=args.routing,
        encoder_tokenizer=encoder_tokenizer,
        encoder_config=encoder_config,
    )
    choice = choose_initial_partition(
        start,
        tokenizer,
        args,
        output_dir / "initial-partition",
        lambda model: routed_nll(model, start.users["validation"]),
    )
    if choice.name != "encoder":
        apply_partition(start, choice.labels, args)
    logger.info("HeTLM starts from the %r partition (%s)", choice.name, choice.to_dict())
    trainer = build_hetlm_trainer(start, output_dir / "trainer", args)
    has_validation = trainer.eval_dataset is not None
    initial_eval_nll = trainer.evaluate()["eval_loss"] if has_validation else float("nan")
    # At the start every predictor is the same LM: likelihood routing would tie, so the selector (= K-means) counts.
    ari_before = segment_recovery(start.model, start.train_users_latest, routing="selector")
    trainer.train(resume_from_checkpoint=resume_from_checkpoint)
    kept = trainer.finalize_clusters()
    model = trainer.model
    final_eval_nll = trainer.evaluate()["eval_loss"] if has_validation else float("nan")
    ari_after = segment_recovery(model, start.train_users_latest)
    history = {
        "settings": args.to_dict(),
        "bf16": bool(trainer.args.bf16),  # the value used (args.bf16 None resolved), to reproduce the run
        "kmeans": {
            "k": start.clusters.k,
            "silhouette_by_k": start.clusters.silhouette_by_k,
            "sizes": np.bincount(start.clusters.labels, minlength=start.clusters.k).tolist(),
        },
        "initial_partition": choice.to_dict(),
        "selector_pretraining": start.selector.history,
        "selector_pretraining_agreement": start.selector.accuracy,
        "selector_pretraining_mean_max_probability": start.selector.mean_max_probability,
        "initial_eval_nll": initial_eval_nll,
        "final_eval_nll": final_eval_nll,
        "segment_ari_kmeans_init": ari_before,
        "segment_ari": ari_after,
        "routed_validation_nll": routed_nll(model, start.users["validation"]) if has_validation else None,
        "routed_validation_target_nll": (
            routed_nll(model, start.users["validation"], target_only=True) if has_validation else None
        ),
        "other_routing": routing_figures(
            model,
            start.users["validation"] if has_validation else None,
            start.train_users_latest,
            "selector" if args.routing == "likelihood" else "likelihood",
        ),
        "kept_clusters": kept,
        "cluster_sizes": trainer.cluster_sizes,
        "cluster_history": trainer.cluster_history,
        "reassignments": trainer.reassignment_history,
        "merges": trainer.merge_history,
        "dynamics": cluster_dynamics(trainer.cluster_history, trainer.state.log_history, len(start.clusters.labels)),
        "log_history": trainer.state.log_history,
    }
    moved = history["dynamics"][-1].get("users_moved_since_kmeans") if history["dynamics"] else None
    logger.info(
        "HeTLM: K %d -> %d, %s of %d training users moved from their start's cluster, validation NLL %.4f -> %.4f, "
        "segment ARI %s -> %s",
        start.clusters.k,
        len(kept),
        moved,
        len(start.clusters.labels),
        initial_eval_nll,
        final_eval_nll,
        ari_before,
        ari_after,
    )
    profiles = training_cluster_profiles(model, start, splits["train"])
    save_clusterwise_model(model, output_dir, tokenizer, history, _card_summary(history, splits), profiles)
    return HeTLMResult(model, trainer, initial_eval_nll, final_eval_nll, history)


def cluster_dynamics(
    cluster_history: list[dict[str, Any]], log_history: list[dict[str, Any]], num_users: int
) -> list[dict[str, Any]]:
    """One row per routing of the training users (each epoch's end, or every ``prune_every_steps``): K, the
    cluster sizes, the users moved since K-means and since the previous routing (counts and shares), and the
    routed validation NLL of the evaluation logged at that epoch (None without one).

    Example:
        >>> history = [{"step": 5, "epoch": 1.0, "num_clusters": 2, "cluster_sizes": [6, 4], "active_clusters": [0, 1],
        ...             "users_moved_since_last": 1, "users_moved_since_kmeans": 2}]
        >>> cluster_dynamics(history, [{"epoch": 1.0, "eval_loss": 2.5}], 10)[0]["share_moved_since_kmeans"]
        0.2
    """
    eval_by_epoch = {record["epoch"]: record["eval_loss"] for record in log_history if "eval_loss" in record}
    rows = []
    for entry in cluster_history:
        row = {
            "step": entry["step"],
            "epoch": entry["epoch"],
            "num_clusters": entry["num_clusters"],
            "cluster_sizes": [entry["cluster_sizes"][cluster] for cluster in entry["active_clusters"]],
            "validation_nll": eval_by_epoch.get(entry["epoch"]),
        }
        for key in ("users_moved_since_kmeans", "users_moved_since_last"):
            if key in entry:
                row[key] = entry[key]
                row[key.replace("users_", "share_")] = entry[key] / num_users
        rows.append(row)
    return rows


def _card_summary(history: dict[str, Any], splits: DatasetDict) -> dict[str, Any]:
    return {
        "method": "HeTLM (actor-critic, endogenous K)",
        "training users": len(splits["train"]),
        "initial K (K-means)": history["kmeans"]["k"],
        "final K": len(history["kept_clusters"]),
        "validation NLL before / after": f"{history['initial_eval_nll']:.4f} / {history['final_eval_nll']:.4f}",
        "cluster_sizes": history["cluster_sizes"],
    }
