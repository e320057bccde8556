"""User embeddings, K-means on them, and the selector pretrained to mimic K-means (steps 1-2 of Algorithm 1).

Shared by the exogenous K-means baseline and HeTLM:

1. :func:`compute_user_embeddings` runs the frozen encoder of a ``HeTLMForBrowsing`` once over every
   user's input sessions (batched, no gradient);
2. :func:`fit_kmeans` clusters them with scikit-learn, K fixed or chosen by silhouette;
3. :func:`pretrain_selector` trains the selector (cross-entropy) to reproduce the K-means labels.

Example:
    >>> embeddings = compute_user_embeddings(model, users["prompt_ids"], pad_token_id=0)  # doctest: +SKIP
    >>> clusters = fit_kmeans(embeddings, "auto", k_range=(2, 6))  # doctest: +SKIP
    >>> pretrain_selector(model, embeddings, clusters.labels).accuracy  # doctest: +SKIP
    0.98
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from sklearn.cluster import KMeans
from sklearn.metrics import silhouette_score
from torch import nn
from tqdm.auto import tqdm

from inference.prompts import pad_sequences

logger = logging.getLogger(__name__)


@torch.no_grad()
def compute_user_embeddings(
    model: nn.Module,
    prompt_ids: Sequence[Sequence[int]],
    pad_token_id: int,
    batch_size: int = 64,
    rows_per_call: int = 4096,
    progress: bool = True,
) -> np.ndarray:
    """``model.embed_users`` over every user's prompt ids (input sessions then ``[BOS]``), in batches: float32 array
    ``[N, D]``.

    A progress bar counts the users embedded (shown on a terminal; ``progress=False`` hides it).

    Example:
        >>> compute_user_embeddings(model, [[2, 4, 3, 2], [2, 5, 3, 2]], pad_token_id=0).shape  # doctest: +SKIP
        (2, 384)
    """
    was_training = model.training
    model.eval()
    chunks = []
    # embed_users sorts each call's rows by length before cutting them into chunks: large
    # calls waste less encoder work on padding.
    with tqdm(total=len(prompt_ids), desc="Embedding users", unit="user", disable=None if progress else True) as bar:
        for start in range(0, len(prompt_ids), rows_per_call):
            batch = [list(ids) for ids in prompt_ids[start : start + rows_per_call]]
            input_ids, attention_mask = pad_sequences(batch, pad_token_id)
            embeddings = model.embed_users(input_ids, attention_mask=attention_mask, batch_size=batch_size)
            chunks.append(embeddings.float().cpu())
            bar.update(len(batch))
    model.train(was_training)
    return torch.cat(chunks).numpy()


@dataclass
class KMeansClusters:
    """K-means result: ``labels [N]``, ``centers [K, D]``, and the silhouette per K tried (when K was chosen)."""

    labels: np.ndarray
    centers: np.ndarray
    silhouette_by_k: dict[int, float] = field(default_factory=dict)

    @property
    def k(self) -> int:
        return len(self.centers)


def fit_kmeans(
    embeddings: np.ndarray,
    k: int | str,
    k_range: tuple[int, int] = (2, 8),
    seed: int = 0,
    silhouette_sample_size: int = 5000,
) -> KMeansClusters:
    """K-means on the user embeddings, with ``k`` fixed or ``"auto"`` (best silhouette over ``k_range``, inclusive).

    Example:
        >>> noise = np.random.default_rng(0).normal(size=(40, 2)) * 0.1
        >>> points = np.concatenate([np.zeros((20, 2)), np.ones((20, 2)) * 5]) + noise
        >>> fit_kmeans(points, "auto", k_range=(2, 4)).k
        2
    """
    if k == "auto":
        low, high = k_range
        high = min(high, len(embeddings) - 1)
        if high < low:
            raise ValueError(f"K by silhouette needs more users than {low}; got {len(embeddings)}")
        silhouettes: dict[int, float] = {}
        fits: dict[int, KMeans] = {}
        sample = min(silhouette_sample_size, len(embeddings))
        for candidate in range(low, high + 1):
            fits[candidate] = KMeans(n_clusters=candidate, n_init=10, random_state=seed).fit(embeddings)
            silhouettes[candidate] = float(
                silhouette_score(embeddings, fits[candidate].labels_, sample_size=sample, random_state=seed)
            )
        best = max(silhouettes, key=silhouettes.get)
        logger.info("K-means: silhouette by K %s -> K=%d", {c: round(s, 4) for c, s in silhouettes.items()}, best)
        fit = fits[best]
        return KMeansClusters(fit.labels_.astype(np.int64), fit.cluster_centers_.astype(np.float32), silhouettes)
    k = int(k)
    if not 1 <= k <= len(embeddings):
        raise ValueError(f"K-means needs 1 <= K <= number of users ({len(embeddings)}); got K={k}")
    fit = KMeans(n_clusters=k, n_init=10, random_state=seed).fit(embeddings)
    return KMeansClusters(fit.labels_.astype(np.int64), fit.cluster_centers_.astype(np.float32))


@dataclass
class SelectorPretraining:
    """Outcome of :func:`pretrain_selector`: final cross-entropy, agreement with the target labels, and the
    mean over users of the largest cluster probability (near 1: a saturated selector that L1 cannot move)."""

    loss: float
    accuracy: float
    mean_max_probability: float
    history: list[dict[str, float]]


def pretrain_selector(
    model: nn.Module,
    embeddings: np.ndarray,
    labels: np.ndarray,
    epochs: int = 20,
    learning_rate: float = 1e-2,
    batch_size: int = 64,
    seed: int = 0,
    label_smoothing: float = 0.0,
    active_clusters: torch.Tensor | None = None,
) -> SelectorPretraining:
    """Train ``model.selector`` (only) so that ``model.cluster_probabilities(z)`` reproduces ``labels``
    (the K-means labels at the start of HeTLM, the hard-EM labels when users are reassigned).

    Cross-entropy against targets smoothed towards the uniform over the active clusters:
    ``label_smoothing`` = e puts ``1 - e + e/K`` on the label, so the selector's probabilities stop
    near that confidence instead of saturating at 1, where L1's gradient ``pi_k (NLL_k - L1)`` vanishes.
    With ``active_clusters`` (``[K]`` bool) the retired clusters get probability 0 and no target mass.
    The agreement (accuracy) and the mean max-probability are logged per epoch.

    Example:
        >>> from torch import nn
        >>> class Selector(nn.Module):
        ...     def __init__(self):
        ...         super().__init__()
        ...         self.selector = nn.Linear(2, 2)
        ...     def cluster_probabilities(self, z, active_clusters=None):  # all clusters active here
        ...         return self.selector(z).softmax(-1)
        >>> _ = torch.manual_seed(0)
        >>> points = np.array([[1.0, 0.0], [0.0, 1.0]] * 8, dtype=np.float32)
        >>> result = pretrain_selector(Selector(), points, np.array([0, 1] * 8), epochs=200, label_smoothing=0.4)
        >>> result.accuracy, round(result.mean_max_probability, 1)
        (1.0, 0.8)
    """
    if epochs < 1:
        raise ValueError(f"the selector needs at least one epoch of training, got epochs={epochs!r}")
    if not 0.0 <= label_smoothing < 1.0:
        raise ValueError(f"label_smoothing must be in [0, 1), got {label_smoothing!r}")
    generator = torch.Generator().manual_seed(seed)
    inputs = torch.as_tensor(embeddings, dtype=torch.float32)
    targets = torch.as_tensor(labels, dtype=torch.long)
    optimizer = torch.optim.AdamW(model.selector.parameters(), lr=learning_rate)
    was_training = model.training

    def loss_of(probabilities: torch.Tensor, rows_targets: torch.Tensor) -> torch.Tensor:
        log_probabilities = torch.log(probabilities.clamp_min(1e-12))
        loss = nn.functional.nll_loss(log_probabilities, rows_targets)
        if label_smoothing == 0.0:
            return loss
        active = torch.ones(probabilities.shape[1], dtype=torch.bool) if active_clusters is None else active_clusters
        uniform = -(log_probabilities[:, active.to(probabilities.device)]).mean(dim=1).mean()
        return (1 - label_smoothing) * loss + label_smoothing * uniform

    model.train()
    history: list[dict[str, float]] = []
    for epoch in range(epochs):
        order = torch.randperm(len(inputs), generator=generator)
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            loss = loss_of(model.cluster_probabilities(inputs[rows], active_clusters=active_clusters), targets[rows])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        with torch.no_grad():
            probabilities = model.cluster_probabilities(inputs, active_clusters=active_clusters)
            epoch_loss = float(loss_of(probabilities, targets))
            accuracy = float((probabilities.argmax(-1) == targets).float().mean())
            max_probability = float(probabilities.max(dim=-1).values.mean())
        history.append(
            {"epoch": epoch + 1, "loss": epoch_loss, "accuracy": accuracy, "mean_max_probability": max_probability}
        )
        logger.info(
            "selector training epoch %d: cross-entropy %.4f, agreement %.3f, mean max-probability %.3f",
            epoch + 1,
            epoch_loss,
            accuracy,
            max_probability,
        )
    model.train(was_training)
    last = history[-1]
    return SelectorPretraining(
        loss=last["loss"],
        accuracy=last["accuracy"],
        mean_max_probability=last["mean_max_probability"],
        history=history,
    )
