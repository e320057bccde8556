"""Steps 1-3 of Algorithm 1, shared by HeTLM and the K-means baseline.

1. build a ``HeTLMForBrowsing`` whose K predictors are copies of the pretrained single LM;
2. embed every user once with the frozen encoder (``user_embeddings`` column);
3. K-means on the training users' embeddings (K fixed or by silhouette), its centres as centroids.

Example:
    >>> start = initialize_clusterwise_model(splits, tokenizer, lm, ClusterwiseSettings(num_clusters=6))  # doctest: +SKIP
    >>> start.model.config.num_clusters, start.clusters.k  # doctest: +SKIP
    (6, 6)
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from datasets import Dataset, DatasetDict
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from modeling_hetlm import HeTLMForBrowsing, build_hetlm

from .clustering import KMeansClusters, compute_user_embeddings, fit_kmeans
from .data import tokenize_users

logger = logging.getLogger(__name__)


DEFAULT_PREDICTOR_LEARNING_RATES = {"kmeans": 5e-4, "hetlm": 1e-4}


@dataclass
class ClusterwiseSettings:
    """Settings of clusterwise training (HeTLM and the K-means baseline), with CPU defaults.

    The paper's values are in :data:`trainers.model_sizes.PAPER_HETLM_SETTINGS`. ``kmeans_k``: ``None``
    uses ``num_clusters``; ``"auto"`` picks K by silhouette over ``kmeans_k_range`` (inclusive).
    ``embedding_cache_dir``: a folder where user embeddings are kept and reused (None: no cache).
    ``min_cluster_size``: clusters routed fewer training users are removed; ``None`` means 1% of
    the training users (at least 1).
    ``predictor_learning_rate``: ``None`` means 5e-4 for a K-means predictor (fine-tuned on its cluster
    alone) and 1e-4 for HeTLM's: in HeTLM's mixed batches every predictor takes an (Adam-normalised)
    step on every batch, about K times as many steps as a K-means predictor over the same epochs
    (measured on the default run: validation NLL 2.835 at 5e-4, 2.819 at 1e-4; K-means 2.821).

    How users move (issue 10; DESIGN.md section 4):

    - ``l1_reduction``: ``"sum"`` (each user's summed token NLL in L1, the paper's scale) or ``"mean"``
      (per-token mean); see :class:`~modeling_hetlm.HeTLMConfig`.
    - ``selector_label_smoothing``: the selector is pretrained on the K-means labels (and retrained on
      the hard-EM labels) with targets smoothed by this much, so it stays soft (max-probability about
      ``1 - e + e/K``) and L1 keeps a gradient; 0 trains it to a saturated softmax.
    - ``reassignment``: ``"hard_em"`` (default) retrains the selector towards ``argmin_k NLL_k`` of every
      training user at the end of every ``reassign_every_epochs``-th epoch, for ``reassign_selector_epochs``
      epochs at ``reassign_learning_rate`` (:mod:`trainers.reassignment`); ``"none"`` keeps the paper's
      loop only (soft L1 gradient). The first step comes after one epoch of the critic on the K-means
      clusters (predictors identical at the start cannot tell users apart).
    - ``reassign_size_prior``: weight w of ``-w log(n_k / N)`` in the hard-EM choice (classification EM with
      mixing weights): near-ties go to the larger cluster, so clusters splitting one segment merge.
    """

    num_clusters: int = 6
    kmeans_k: int | str | None = None
    kmeans_k_range: tuple[int, int] = (2, 8)
    alpha: float = 5.0
    beta: float = 9.0
    l1_reduction: str = "sum"
    centroid_distance: str = "paper"
    centroid_temperature: float = 0.05
    selector_hidden_sizes: tuple[int, ...] = (256,)
    min_cluster_size: int | None = None
    prune_every_steps: int | None = None
    epochs: float = 3.0
    batch_size: int = 16
    max_length: int = 512
    score: str = "stream"
    predictor_learning_rate: float | None = None
    predictor_weight_decay: float = 0.01
    selector_learning_rate: float = 1e-3
    selector_weight_decay: float = 1e-4
    warmup_ratio: float = 0.0
    selector_pretrain_epochs: int = 20
    selector_pretrain_learning_rate: float = 1e-2
    selector_label_smoothing: float = 0.3
    reassignment: str = "hard_em"
    reassign_every_epochs: int = 1
    reassign_selector_epochs: int = 5
    reassign_learning_rate: float = 1e-2
    reassign_size_prior: float = 0.0
    embedding_batch_size: int = 64
    embedding_cache_dir: str | None = None
    bf16: bool | None = None
    seed: int = 0
    logging_steps: int = 10
    save_strategy: str = "no"
    save_steps: int = 500
    extra_training_arguments: dict[str, Any] = field(default_factory=dict)

    def resolved_predictor_learning_rate(self, method: str) -> float:
        """The predictors' learning rate for ``method`` (``"hetlm"`` or ``"kmeans"``).

        Example:
            >>> ClusterwiseSettings().resolved_predictor_learning_rate("hetlm")
            0.0001
        """
        if self.predictor_learning_rate is not None:
            return self.predictor_learning_rate
        if method not in DEFAULT_PREDICTOR_LEARNING_RATES:
            raise ValueError(f"method must be one of {sorted(DEFAULT_PREDICTOR_LEARNING_RATES)}, got {method!r}")
        return DEFAULT_PREDICTOR_LEARNING_RATES[method]

    def resolved_min_cluster_size(self, num_train_users: int) -> int:
        """The absolute minimum cluster size for ``num_train_users`` training users.

        Example:
            >>> ClusterwiseSettings().resolved_min_cluster_size(5000)
            50
        """
        if self.min_cluster_size is not None:
            return self.min_cluster_size
        return max(1, num_train_users // 100)


@dataclass
class ClusterwiseStart:
    """What :func:`initialize_clusterwise_model` returns."""

    model: HeTLMForBrowsing
    users: DatasetDict
    clusters: KMeansClusters


def encoder_fingerprint(model: HeTLMForBrowsing) -> str:
    """A hash of everything that decides a user's embedding: the encoder's weights and config and
    the page -> word-piece table (so a cache never serves embeddings of another encoder or vocabulary).

    Example:
        >>> encoder_fingerprint(model)  # doctest: +SKIP
        '3f0c9e...'
    """
    digest = hashlib.sha256()
    digest.update(json.dumps(model.config.encoder_config.to_dict(), sort_keys=True, default=str).encode())
    tensors = {**dict(model.encoder.state_dict()), "page_pieces": model.page_pieces,
               "page_piece_counts": model.page_piece_counts}
    for name in sorted(tensors):
        digest.update(name.encode())
        digest.update(tensors[name].detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def add_user_embeddings(users: Dataset, model: HeTLMForBrowsing, batch_size: int = 64,
                        cache_dir: str | os.PathLike | None = None) -> Dataset:
    """Add the ``user_embeddings`` column (the frozen encoder over each user's ``prompt_ids``).

    With ``cache_dir``, embeddings are stored there as ``.npy`` files keyed by the encoder's
    fingerprint and the prompts, and reused by later runs over the same users (the encoder is
    frozen, so they cannot change); the K-means baselines and HeTLM of one experiment embed once.

    Example:
        >>> users = add_user_embeddings(tokenize_users(raw_users, tokenizer), model)  # doctest: +SKIP
    """
    cache_file = None
    if cache_dir is not None:
        key = hashlib.sha256(encoder_fingerprint(model).encode())
        for ids in users["prompt_ids"]:
            key.update(np.asarray(ids, dtype=np.int64).tobytes() + b"|")
        cache_file = Path(cache_dir) / f"user-embeddings-{key.hexdigest()[:32]}.npy"
        if cache_file.is_file():
            logger.info("user embeddings: reusing %s", cache_file)
            return users.add_column("user_embeddings", np.load(cache_file, allow_pickle=False).tolist())
    embeddings = compute_user_embeddings(model, users["prompt_ids"], model.config.pad_token_id, batch_size)
    if cache_file is not None:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        partial = cache_file.with_suffix(".partial.npy")
        np.save(partial, embeddings, allow_pickle=False)
        partial.replace(cache_file)
    return users.add_column("user_embeddings", embeddings.tolist())


def initialize_clusterwise_model(
    splits: DatasetDict,
    tokenizer: PreTrainedTokenizerBase,
    lm: PreTrainedModel,
    settings: ClusterwiseSettings,
    *,
    routing: str = "selector",
    encoder_tokenizer: PreTrainedTokenizerBase | None = None,
    encoder_config: dict[str, Any] | None = None,
) -> ClusterwiseStart:
    """Build the clusterwise model from ``lm``, embed and tokenise all users, and fit K-means on the training users.

    The encoder is all-MiniLM-L6-v2 unless ``encoder_tokenizer`` and ``encoder_config`` give another
    (tiny, random) one, as the tests do. With ``kmeans_k="auto"`` the model is built with the largest
    K of the range and cut down to the K chosen (all predictors are the same copy at this point).
    """
    torch.manual_seed(settings.seed)
    if settings.kmeans_k == "auto":
        num_clusters = settings.kmeans_k_range[1]
    else:
        num_clusters = int(settings.kmeans_k or settings.num_clusters)
    config_kwargs: dict[str, Any] = {
        "num_clusters": num_clusters,
        "alpha": settings.alpha,
        "beta": settings.beta,
        "l1_reduction": settings.l1_reduction,
        "centroid_distance": settings.centroid_distance,
        "centroid_temperature": settings.centroid_temperature,
        "selector_hidden_sizes": list(settings.selector_hidden_sizes),
        "min_cluster_size": settings.resolved_min_cluster_size(len(splits["train"])),
        "routing": routing,
    }
    if encoder_config is not None:
        config_kwargs["encoder_config"] = encoder_config
        config_kwargs["encoder_max_length"] = min(256, encoder_config.get("max_position_embeddings", 256))
    model = build_hetlm(tokenizer, lm, encoder_tokenizer=encoder_tokenizer, **config_kwargs)
    users = tokenize_users(splits, tokenizer, settings.max_length, settings.score)
    users = DatasetDict(
        {name: add_user_embeddings(split, model, settings.embedding_batch_size, settings.embedding_cache_dir)
         for name, split in users.items()}
    )
    embeddings = np.asarray(users["train"]["user_embeddings"], dtype=np.float32)
    clusters = fit_kmeans(embeddings, settings.kmeans_k or settings.num_clusters, settings.kmeans_k_range, settings.seed)
    if clusters.k < model.config.num_clusters:
        model.prune_clusters(range(clusters.k))
    model.set_centroids(torch.from_numpy(clusters.centers))
    logger.info("K-means: K=%d, cluster sizes %s", clusters.k, np.bincount(clusters.labels, minlength=clusters.k).tolist())
    return ClusterwiseStart(model=model, users=users, clusters=clusters)
