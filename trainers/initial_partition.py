"""HeTLM's starting partition: K-means on the encoder's embeddings, on the users' browsing statistics, or the one of
the two that the held-out likelihood prefers (``ClusterwiseTrainingArguments.initial_partition``).

EM from a start keeps that start: each predictor fine-tuned on its members fits them by 20-100 nats per user more
than the others, while the likelihood's own preference between partitions is about a nat per user
(``benchmarks/partition_likelihood.py``). The start therefore decides which optimum of appendix A.1's objective
HeTLM reaches. The encoder embeds page names, so its K-means separates what users browse, not how they browse;
:func:`browsing_statistics` describes how (pages per session, revisits, the share of each page group), without page
names. ``"likelihood"`` chooses between the two starts by the objective itself: for each start, one copy of the
single LM per cluster is fine-tuned on its clusters (as the K-means baseline does, for
``initial_partition_epochs``), the validation users are routed by likelihood, and the start with the lower routed
validation NLL is kept (:func:`choose_initial_partition`). Then every predictor is the single LM again, and HeTLM
starts from the chosen labels: the selector is pretrained on them and the centroids are their members' mean
embeddings (:func:`apply_partition`).

Example:
    >>> from tokenization.page_tokenizer import build_page_tokenizer
    >>> groups = page_groups(build_page_tokenizer(["category/shoes", "product/shoes/red", "cart"]))
    >>> browsing_statistics([[2, 4, 5, 3], [2, 5, 5, 3, 2, 6, 3]], groups, bos_token_id=2).shape
    (2, 5)
"""

from __future__ import annotations

import copy
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from datasets import Dataset
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score
from sklearn.preprocessing import StandardScaler
from transformers import PreTrainedTokenizerBase

from modeling_hetlm import HeTLMForBrowsing

from .clustering import KMeansClusters, pretrain_selector
from .initialization import ClusterwiseStart
from .pretrain import train_language_model
from .training_arguments import ClusterwiseTrainingArguments

logger = logging.getLogger(__name__)


def page_groups(tokenizer: PreTrainedTokenizerBase) -> np.ndarray:
    """Each token id's page group as an index: the part of the page's name before its first ``/`` (the whole name
    without one); the special tokens are group 0.

    Example:
        >>> from tokenization.page_tokenizer import build_page_tokenizer
        >>> page_groups(build_page_tokenizer(["category/shoes", "product/shoes/red", "cart"])).tolist()
        [0, 0, 0, 0, 1, 2, 3]
    """
    vocabulary, special = tokenizer.get_vocab(), set(tokenizer.all_special_tokens)
    index: dict[str, int] = {"[special]": 0}
    groups = np.zeros(len(vocabulary), dtype=np.int64)
    for token, token_id in sorted(vocabulary.items(), key=lambda item: item[1]):
        group = "[special]" if token in special else token.split("/")[0]
        groups[token_id] = index.setdefault(group, len(index))
    return groups


def browsing_statistics(streams: list[list[int]], groups: np.ndarray, bos_token_id: int) -> np.ndarray:
    """``[users, 2 + G]`` standardised per user: log(1 + pages per session), the share of its pages seen earlier in
    its stream, and the share of its pages in each of the ``G`` page groups (special tokens are not pages).

    Example:
        >>> groups = np.array([0, 0, 0, 0, 1, 2])
        >>> browsing_statistics([[2, 4, 4, 3], [2, 5, 3, 2, 4, 3]], groups, bos_token_id=2).round(2).tolist()
        [[1.0, 1.0, 1.0, -1.0], [-1.0, -1.0, -1.0, 1.0]]
    """
    rows = []
    for stream in streams:
        ids = np.asarray(stream, dtype=np.int64)
        pages = ids[groups[ids] != 0]
        count = max(len(pages), 1)
        sessions = max(int((ids == bos_token_id).sum()), 1)
        revisits = 1 - len(np.unique(pages)) / count
        shares = np.bincount(groups[pages], minlength=groups.max() + 1)[1:] / count
        rows.append([np.log1p(len(pages) / sessions), revisits, *shares])
    return StandardScaler().fit_transform(np.asarray(rows, dtype=np.float64))


def fine_tune_partition(
    model: HeTLMForBrowsing,
    rows: Dataset,
    labels: np.ndarray,
    single_lm: dict[str, torch.Tensor],
    tokenizer: PreTrainedTokenizerBase,
    args: ClusterwiseTrainingArguments,
    output_dir: str | os.PathLike,
    *,
    epochs: float | None = None,
    users: np.ndarray | None = None,
) -> None:
    """Predictor k <- the single LM (state dict ``single_lm``) fine-tuned for ``epochs`` (default
    ``args.num_train_epochs``) on the training ``rows`` (with ``user_index``) of the users labelled k
    (``labels [users]``), only those in the mask ``users`` if given, as the K-means baseline fine-tunes."""
    row_users = np.asarray(rows["user_index"])
    chosen = labels[row_users] if users is None else np.where(users[row_users], labels[row_users], -1)
    for cluster in range(len(model.predictors)):
        model.predictors[cluster].load_state_dict(single_lm)
        selected = np.flatnonzero(chosen == cluster)
        if len(selected):
            train_language_model(
                model.predictors[cluster],
                rows.select(selected),
                None,
                tokenizer,
                Path(output_dir) / f"cluster-{cluster}",
                args,
                num_train_epochs=args.num_train_epochs if epochs is None else epochs,
                save_strategy="no",
            )


@dataclass
class PartitionChoice:
    """The start kept (``name``, ``labels [users]``), each candidate's routed validation NLL and each candidate's
    ARI against the encoder's K-means labels."""

    name: str
    labels: np.ndarray
    validation_nll: dict[str, float | None]
    agreement_with_kmeans: dict[str, float]

    def to_dict(self) -> dict[str, Any]:
        return {
            "chosen": self.name,
            "sizes": np.bincount(self.labels).tolist(),
            "validation_nll": self.validation_nll,
            "ari_with_encoder_kmeans": self.agreement_with_kmeans,
        }


def choose_initial_partition(
    start: ClusterwiseStart,
    tokenizer: PreTrainedTokenizerBase,
    args: ClusterwiseTrainingArguments,
    output_dir: str | os.PathLike,
    validation_nll: Callable[[HeTLMForBrowsing], float],
) -> PartitionChoice:
    """The start of ``args.initial_partition`` (see the module docstring); ``"likelihood"`` scores each candidate by
    ``validation_nll(model)`` (its routed validation NLL, the model's routing set to likelihood meanwhile) and
    leaves every predictor as it found it.

    Example:
        >>> choice = choose_initial_partition(start, tokenizer, args, "runs/hetlm/start", nll)  # doctest: +SKIP
        >>> choice.name, choice.validation_nll  # doctest: +SKIP
        ('browsing', {'encoder': 2.8574, 'browsing': 2.8404})
    """
    kmeans = start.clusters.labels
    candidates = {"encoder": kmeans}
    if args.initial_partition != "encoder":
        statistics = browsing_statistics(
            start.train_users_latest["input_ids"], page_groups(tokenizer), start.model.config.bos_token_id
        )
        candidates["browsing"] = KMeans(start.clusters.k, n_init=10, random_state=args.seed).fit_predict(statistics)
    agreement = {name: float(adjusted_rand_score(kmeans, labels)) for name, labels in candidates.items()}
    if args.initial_partition != "likelihood":
        labels = candidates[args.initial_partition]
        return PartitionChoice(args.initial_partition, labels, {name: None for name in candidates}, agreement)
    model = start.model
    saved = [copy.deepcopy(predictor.state_dict()) for predictor in model.predictors]
    routing, scores = model.config.routing, {}
    model.config.routing = "likelihood"
    try:
        for name, labels in candidates.items():
            folder = Path(output_dir) / name
            rows, epochs = start.users["train"], args.initial_partition_epochs
            fine_tune_partition(model, rows, labels, saved[0], tokenizer, args, folder, epochs=epochs)
            scores[name] = float(validation_nll(model))
            logger.info("initial partition %r: routed validation NLL %.4f", name, scores[name])
    finally:
        model.config.routing = routing
        for predictor, state in zip(model.predictors, saved):
            predictor.load_state_dict(state)
    chosen = min(scores, key=scores.__getitem__)
    return PartitionChoice(chosen, candidates[chosen], scores, agreement)


def apply_partition(start: ClusterwiseStart, labels: np.ndarray, args: ClusterwiseTrainingArguments) -> None:
    """Make ``labels [users]`` HeTLM's start: ``start.clusters`` (centres: each cluster's mean embedding), the
    model's centroids, and the selector pretrained on them (``start.selector``)."""
    embeddings = start.train_user_embeddings
    centers = np.stack([embeddings[labels == cluster].mean(axis=0) for cluster in range(start.clusters.k)])
    start.clusters = KMeansClusters(labels=labels, centers=centers, silhouette_by_k=start.clusters.silhouette_by_k)
    start.model.set_centroids(torch.from_numpy(centers.astype(np.float32)))
    start.selector = pretrain_selector(
        start.model,
        embeddings,
        labels,
        epochs=args.selector_pretrain_epochs,
        learning_rate=args.selector_pretrain_learning_rate,
        seed=args.seed,
        label_smoothing=args.selector_label_smoothing,
    )
