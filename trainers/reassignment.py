"""Hard-EM reassignment: the way out of the K-means fixed point (appendix A.1 of the paper).

HeTLM minimises ``sum_k sum_{x in C(k)} KL(Y|X=x || Y|S=k)``: up to a constant, each user belongs
in the cluster whose predictor gives its stream the lowest NLL. Started from K-means, each predictor
is fine-tuned on its own K-means cluster and soon fits it best, so the soft L1 gradient alone leaves
the K-means partition in place. A hard-EM step breaks that: score every training user under every
active predictor (:func:`score_users`: batched, no gradient, the same training stream and scored
tokens as L1), take ``argmin_k NLL_k`` as the user's new label (:func:`hard_em_labels`), and
retrain the selector on those labels (a few epochs of smoothed cross-entropy, so it stays soft).
The predictors then fine-tune on their new members, and the next step sees them.

``size_prior`` > 0 makes it classification EM with mixing weights: ``argmin_k NLL_k - w log(n_k / N)``.
A user whom two predictors fit about equally joins the larger cluster, so clusters that split one
segment merge and the small one empties (and is retired) instead of lingering.

Example:
    >>> nll = torch.tensor([[10.0, 12.0, 9.0], [5.0, 4.0, 4.5], [3.0, 3.2, 1.0]])
    >>> hard_em_labels(nll, torch.tensor([True, True, False])).tolist()
    [0, 1, 0]
    >>> hard_em_labels(nll, torch.tensor([True, True, True]), size_prior=0.0).tolist()
    [2, 1, 2]
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import numpy as np
import torch
from datasets import Dataset
from torch import nn

REASSIGNMENTS = ("none", "hard_em")


@torch.no_grad()
def score_users(
    model: nn.Module,
    users: Dataset,
    collator: Callable[[list[dict]], dict[str, torch.Tensor]],
    active_clusters: torch.Tensor,
    batch_size: int = 64,
    context: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext,
) -> torch.Tensor:
    """``[N, K]`` summed token NLL of every user's stream under every active predictor (``inf`` for retired ones).

    Users are batched by length (less padding); the model runs in eval mode, one forward per batch
    (each active predictor once over all rows), under ``context`` (e.g. the trainer's autocast).

    Example:
        >>> nll = score_users(model, train_users, BrowsingCollator(0), trainer.cluster_mask.active)  # doctest: +SKIP
        >>> nll.shape  # doctest: +SKIP
        torch.Size([2400, 6])
    """
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    lengths = np.asarray([len(ids) for ids in users["input_ids"]])
    order = np.argsort(lengths, kind="stable")
    scores = torch.full((len(users), len(active_clusters)), float("inf"))
    active = active_clusters.to(device)
    for start in range(0, len(order), batch_size):
        rows = order[start : start + batch_size]
        batch = {name: tensor.to(device) for name, tensor in collator(users.select(rows).to_list()).items()}
        with context():
            outputs = model(**batch, active_clusters=active)
        tokens = (batch["labels"][:, 1:] != -100).sum(dim=1, keepdim=True)
        per_user = (outputs.per_cluster_nll.float() * tokens).cpu()
        scores[torch.as_tensor(rows)] = per_user.masked_fill(~active.cpu(), float("inf"))
    model.train(was_training)
    return scores


def hard_em_labels(nll: torch.Tensor, active_clusters: torch.Tensor, size_prior: float = 0.0) -> torch.Tensor:
    """``argmin_k`` over the active clusters of ``nll [N, K]`` minus ``size_prior * log(n_k / N)``,
    ``n_k`` the users whose plain ``argmin_k NLL_k`` is k (a cluster nobody prefers gets no prior boost).

    Example:
        >>> nll = torch.tensor([[2.0, 2.1], [2.0, 2.1], [5.0, 4.0], [3.0, 3.05]])
        >>> hard_em_labels(nll, torch.tensor([True, True])).tolist()
        [0, 0, 1, 0]
        >>> close = torch.tensor([[3.0, 2.9], [1.0, 2.0], [1.0, 2.0]])
        >>> hard_em_labels(close, torch.tensor([True, True]), size_prior=1.0).tolist()
        [0, 0, 0]
    """
    if size_prior < 0:
        raise ValueError(f"size_prior must be >= 0, got {size_prior!r}")
    scores = nll.masked_fill(~active_clusters, float("inf"))
    labels = scores.argmin(dim=1)
    if size_prior == 0.0:
        return labels
    shares = torch.bincount(labels, minlength=scores.shape[1]).float() / len(labels)
    return (scores - size_prior * torch.log(shares.clamp_min(1e-12))).argmin(dim=1)
