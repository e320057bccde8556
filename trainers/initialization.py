"""The start and the end shared by HeTLM and the K-means baseline.

Start (steps 1-3 of Algorithm 1 and the selector's pretraining):

1. build a ``HeTLMForBrowsing`` whose K predictors are copies of the pretrained single LM;
2. embed every user once with the frozen encoder (``user_embeddings`` column);
3. K-means on the training users' embeddings (K fixed or by silhouette), its centres as centroids;
4. the selector pretrained to reproduce the K-means labels.

End: the model folder, ``training_history.json`` and the clusters' profiles (``cluster_profiles.json``, see
:mod:`evaluation.cluster_profiles`) (:func:`save_clusterwise_model`).

Clusters hold USERS. A train user may have many rows (one per session, see
:mod:`tokenization.examples`); :func:`user_rows` maps rows to users (``user_index`` column). A user
is embedded once, from its LATEST row's prompt (its most recent history: what a validation or test
user's single row holds), and that embedding is every one of its rows' ``user_embeddings``. K-means
clusters one embedding per user (:attr:`ClusterwiseStart.train_user_embeddings`), cluster sizes
count users, and all of a user's rows follow its cluster (:attr:`ClusterwiseStart.train_row_clusters`).

Example:
    >>> args = ClusterwiseTrainingArguments(num_clusters=6)  # doctest: +SKIP
    >>> start = initialize_clusterwise_model(splits, tokenizer, lm, args)  # doctest: +SKIP
    >>> start.model.config.num_clusters, start.clusters.k  # doctest: +SKIP
    (6, 6)
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from accelerate import PartialState
from datasets import Dataset, DatasetDict
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from evaluation.cluster_profiles import compute_cluster_profiles, save_cluster_profiles
from modeling_hetlm import HeTLMForBrowsing, build_hetlm
from tokenization.page_rules import record_page_rules

from .clustering import KMeansClusters, SelectorPretraining, compute_user_embeddings, fit_kmeans, pretrain_selector
from .data import tokenize_users
from .training_arguments import ClusterwiseTrainingArguments

logger = logging.getLogger(__name__)

HISTORY_FILE = "training_history.json"


@dataclass
class ClusterwiseStart:
    """What :func:`initialize_clusterwise_model` returns.

    Attributes:
        model: The clusterwise model, centroids set.
        users: Tokenised splits with ``user_index`` and ``user_embeddings`` columns.
        clusters: K-means over the train USERS (``labels[u]``: the cluster of train user ``u``).
        train_user_embeddings: ``[train users, D]``, the embedding of each train user (row ``u``: user index ``u``).
        selector: The selector pretraining's outcome (set by :func:`start_clusterwise_training`).
    """

    model: HeTLMForBrowsing
    users: DatasetDict
    clusters: KMeansClusters
    train_user_embeddings: np.ndarray
    selector: SelectorPretraining | None = None

    @property
    def train_users_latest(self) -> Dataset:
        """One row per training user, in user-index order: its latest example (its most recent sessions)."""
        return self.users["train"].select(user_rows(self.users["train"])[1])

    @property
    def train_row_clusters(self) -> np.ndarray:
        """The K-means cluster of every train row: its user's."""
        return self.clusters.labels[np.asarray(self.users["train"]["user_index"])]


def user_rows(dataset: Dataset) -> tuple[np.ndarray, np.ndarray]:
    """Each row's user index (users numbered in order of their first row) and each user's latest (last) row.

    Rows without a ``user_id`` column are users of their own.

    Example:
        >>> from datasets import Dataset
        >>> index, latest = user_rows(Dataset.from_dict({"user_id": ["b", "b", "a", "b"]}))
        >>> index.tolist(), latest.tolist()
        ([0, 0, 1, 0], [3, 2])
    """
    if "user_id" not in dataset.column_names:
        rows = np.arange(len(dataset))
        return rows, rows
    numbers: dict[str, int] = {}
    index = np.array([numbers.setdefault(user_id, len(numbers)) for user_id in dataset["user_id"]], dtype=np.int64)
    latest = np.zeros(len(numbers), dtype=np.int64)
    np.maximum.at(latest, index, np.arange(len(dataset)))
    return index, latest


def user_sessions(dataset: Dataset) -> list[list[list[str]]]:
    """Every user's sessions in the split, users in user-index order (:func:`user_rows`): the input sessions of
    its first row, then each of its rows' target session (rows hold one target each, in time order).

    Example:
        >>> from datasets import Dataset
        >>> rows = Dataset.from_dict({"user_id": ["b", "a", "b"], "input_sessions": [[["x"]], [["y"]], [["x"], ["z"]]],
        ...                          "target_session": [["z"], ["w"], ["v"]]})
        >>> user_sessions(rows)
        [[['x'], ['z'], ['v']], [['y'], ['w']]]
    """
    index, _ = user_rows(dataset)
    sessions: list[list[list[str]] | None] = [None] * (int(index.max()) + 1 if len(index) else 0)
    for user, inputs, target in zip(index, dataset["input_sessions"], dataset["target_session"]):
        if sessions[user] is None:
            sessions[user] = list(inputs)
        sessions[user].append(target)
    return sessions


def training_cluster_profiles(model: HeTLMForBrowsing, start: ClusterwiseStart, train: Dataset) -> list[dict]:
    """The profile of each of the model's clusters (:mod:`evaluation.cluster_profiles`) over the training users
    as the model's selector now routes them (``train``: the raw train split, ``input_sessions`` and
    ``target_session``). Under ``routing="likelihood"`` a user is served by the predictor its history fits best,
    which may differ from its selector cluster: the profiles then describe the selector's clusters.

    Example:
        >>> profiles = training_cluster_profiles(model, start, splits["train"])  # doctest: +SKIP
        >>> profiles[0]["label"]  # doctest: +SKIP
        'category/electronics/phones + category/electronics browsers, cart 42%, purchase 12%'
    """
    embeddings = torch.tensor(start.train_users_latest["user_embeddings"], dtype=torch.float32)
    clusters = model.assign_clusters(embeddings).tolist()
    return compute_cluster_profiles(user_sessions(train), clusters)


def add_user_index_and_embeddings(
    users: Dataset, model: HeTLMForBrowsing, batch_size: int = 64, cache_dir: str | os.PathLike | None = None
) -> tuple[Dataset, np.ndarray]:
    """Add ``user_index`` and ``user_embeddings`` (each user embedded once, from its latest row's prompt,
    shared by all its rows); also return the ``[users, D]`` embeddings.

    Example:
        >>> train, per_user = add_user_index_and_embeddings(tokenized_train, model)  # doctest: +SKIP
    """
    index, latest = user_rows(users)
    embedded = add_user_embeddings(users.select(latest), model, batch_size, cache_dir)
    per_user = np.asarray(embedded["user_embeddings"], dtype=np.float32)
    users = users.add_column("user_index", index.tolist())
    return users.add_column("user_embeddings", per_user[index].tolist()), per_user


def encoder_fingerprint(model: HeTLMForBrowsing) -> str:
    """A hash of everything that decides a user's embedding: the encoder's weights and config and
    the page -> word-piece table (so a cache never serves embeddings of another encoder or vocabulary).

    Example:
        >>> encoder_fingerprint(model)  # doctest: +SKIP
        '3f0c9e...'
    """
    digest = hashlib.sha256()
    digest.update(json.dumps(model.config.encoder_config.to_dict(), sort_keys=True, default=str).encode())
    tensors = {
        **dict(model.encoder.state_dict()),
        "page_pieces": model.page_pieces,
        "page_piece_counts": model.page_piece_counts,
    }
    for name in sorted(tensors):
        digest.update(name.encode())
        digest.update(tensors[name].detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def add_user_embeddings(
    users: Dataset, model: HeTLMForBrowsing, batch_size: int = 64, cache_dir: str | os.PathLike | None = None
) -> Dataset:
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
    args: ClusterwiseTrainingArguments,
    *,
    routing: str = "selector",
    encoder_tokenizer: PreTrainedTokenizerBase | None = None,
    encoder_config: dict[str, Any] | None = None,
) -> ClusterwiseStart:
    """Build the clusterwise model from ``lm``, embed and tokenise all users, and fit K-means on the training users
    (one embedding per user, see the module docstring).

    The encoder is all-MiniLM-L6-v2 unless ``encoder_tokenizer`` and ``encoder_config`` give another
    (tiny, random) one, as the tests do. With ``kmeans_k="auto"`` the model is built with the largest
    K of the range and cut down to the K chosen (all predictors are the same copy at this point).
    """
    torch.manual_seed(args.seed)
    config_kwargs: dict[str, Any] = {**args.hetlm_config_values(), "routing": routing}
    if encoder_config is not None:
        config_kwargs["encoder_config"] = encoder_config
        config_kwargs["encoder_max_length"] = min(256, encoder_config.get("max_position_embeddings", 256))
    model = build_hetlm(tokenizer, lm, encoder_tokenizer=encoder_tokenizer, **config_kwargs)
    users = tokenize_users(splits, tokenizer, args.max_length, args.score)
    embedded = {
        name: add_user_index_and_embeddings(split, model, args.embedding_batch_size, args.embedding_cache_dir)
        for name, split in users.items()
    }
    users = DatasetDict({name: split for name, (split, _) in embedded.items()})
    embeddings = embedded["train"][1]
    clusters = fit_kmeans(embeddings, args.kmeans_k or args.num_clusters, tuple(args.kmeans_k_range), args.seed)
    if clusters.k < model.config.num_clusters:
        model.prune_clusters(range(clusters.k))
    model.set_centroids(torch.from_numpy(clusters.centers))
    logger.info(
        "K-means: K=%d, cluster sizes (users) %s",
        clusters.k,
        np.bincount(clusters.labels, minlength=clusters.k).tolist(),
    )
    return ClusterwiseStart(model=model, users=users, clusters=clusters, train_user_embeddings=embeddings)


def start_clusterwise_training(
    splits: DatasetDict,
    tokenizer: PreTrainedTokenizerBase,
    lm: PreTrainedModel,
    args: ClusterwiseTrainingArguments,
    *,
    routing: str = "selector",
    encoder_tokenizer: PreTrainedTokenizerBase | None = None,
    encoder_config: dict[str, Any] | None = None,
) -> ClusterwiseStart:
    """The common start of HeTLM and the K-means baseline: :func:`initialize_clusterwise_model`, then the
    selector pretrained to reproduce the K-means labels (its result in ``start.selector``).

    Example:
        >>> start = start_clusterwise_training(splits, tokenizer, lm, ClusterwiseTrainingArguments())  # doctest: +SKIP
        >>> start.selector.accuracy  # doctest: +SKIP
        0.97
    """
    start = initialize_clusterwise_model(
        splits,
        tokenizer,
        lm,
        args,
        routing=routing,
        encoder_tokenizer=encoder_tokenizer,
        encoder_config=encoder_config,
    )
    start.selector = pretrain_selector(
        start.model,
        start.train_user_embeddings,
        start.clusters.labels,
        epochs=args.selector_pretrain_epochs,
        learning_rate=args.selector_pretrain_learning_rate,
        seed=args.seed,
        label_smoothing=args.selector_label_smoothing,
    )
    return start


def save_clusterwise_model(
    model: HeTLMForBrowsing,
    output_dir: str | os.PathLike,
    tokenizer: PreTrainedTokenizerBase,
    history: dict[str, Any],
    card_summary: dict[str, Any],
    profiles: list[dict[str, Any]],
) -> None:
    """The common end of HeTLM and the K-means baseline: the model folder (weights, config with the data's
    page rules (``outcome_pages``, ``url_normalization``), page tokenizer, model card with ``card_summary``),
    ``training_history.json`` and ``cluster_profiles.json`` (:func:`training_cluster_profiles`), written by
    the main process only.

    Example:
        >>> card = {"method": "HeTLM"}
        >>> save_clusterwise_model(model, "runs/hetlm", tokenizer, history, card, profiles)  # doctest: +SKIP
    """
    if not PartialState().is_main_process:
        return
    output_dir = Path(output_dir)
    record_page_rules(model.config, tokenizer)
    model.save_pretrained(output_dir, page_tokenizer=tokenizer, training_summary=card_summary)
    (output_dir / HISTORY_FILE).write_text(json.dumps(history, indent=2, default=str) + "\n", encoding="utf-8")
    save_cluster_profiles(profiles, output_dir)
