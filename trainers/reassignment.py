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

**Online EM** (``reassignment="online_em"``) removes the self-training bias of scoring users on what the
predictors trained on, and costs no extra forward pass: L1 already computes every predictor's NLL of
every row of a batch, before the optimizer step that trains on it. :class:`RowScores` keeps the latest
such score of each training row (in the first epoch a row is scored before any predictor has trained
on it: a held-out, prequential score), summed per user; :func:`classification_em_labels` gives each
scored user ``argmin_k NLL_k - w log(share_k)`` with the shares of the current labels (classification
EM; ``w = 1`` is the mixture's own weight), and the critic then trains every user's rows on its label's
predictor (the labels, not the selector, decide the critic's rows; the selector is retrained to follow).
A row's input sessions were often trained on already (they are earlier rows' targets), so the bias is
reduced, not gone. **Held-out EM** (``"heldout_em"``) removes it: each user's last session is kept out of
the critic's rows and only scored (:func:`score_users` over it, every reassignment), at the price of
those sessions' training signal. :func:`cluster_gains` says what each cluster adds on those scores (a
cluster that splits one segment adds about nothing), which the trainer can retire clusters by.

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

REASSIGNMENTS = ("none", "hard_em", "online_em", "heldout_em")
# Reassignments whose labels decide the critic's rows (the selector is retrained to follow them).
LABEL_FOLLOWING = ("online_em", "heldout_em")


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


class RowScores:
    """The latest summed NLL of every training row under every predictor, as L1 computed it, summed per user.

    Example:
        >>> scores = RowScores(row_users=[0, 0, 1], num_users=2, num_clusters=2)
        >>> scores.record(torch.tensor([0, 2]), torch.tensor([[3.0, 4.0], [6.0, 5.0]]))
        >>> scores.record(torch.tensor([1]), torch.tensor([[2.0, 1.0]]))
        >>> totals, seen = scores.user_scores()
        >>> totals.tolist(), seen.tolist()
        ([[5.0, 5.0], [6.0, 5.0]], [True, True])
    """

    def __init__(self, row_users: np.ndarray | list[int], num_users: int, num_clusters: int):
        self.row_users = torch.as_tensor(np.asarray(row_users), dtype=torch.long)
        if len(self.row_users) and not 0 <= int(self.row_users.min()) <= int(self.row_users.max()) < num_users:
            raise ValueError(f"row_users must hold user indices in [0, {num_users})")
        self.num_users = num_users
        self.table = torch.full((len(self.row_users), num_clusters), float("nan"))

    def record(self, rows: torch.Tensor, summed_nll: torch.Tensor) -> None:
        """Store ``summed_nll [B, K]`` (NaN for clusters not computed) as the score of training rows ``rows [B]``."""
        self.table[rows.cpu()] = summed_nll.detach().float().cpu()

    def user_scores(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``[users, K]`` each user's summed scores over its scored rows (NaN counted as 0), and ``[users]`` whether
        any of its rows was scored."""
        scored = ~torch.isnan(self.table).all(dim=1)
        totals = torch.zeros(self.num_users, self.table.shape[1])
        totals.index_add_(0, self.row_users[scored], self.table[scored].nan_to_num(nan=0.0))
        seen = torch.zeros(self.num_users, dtype=torch.bool)
        seen[self.row_users[scored]] = True
        return totals, seen


def classification_em_labels(
    nll: torch.Tensor,
    seen: torch.Tensor,
    labels: torch.Tensor,
    active_clusters: torch.Tensor,
    size_prior: float = 1.0,
) -> torch.Tensor:
    """New labels: each ``seen`` user ``argmin_k`` over the active clusters of ``nll - size_prior * log share_k``,
    ``share_k`` the share of the current ``labels`` in cluster k (an empty cluster is never chosen again);
    the others keep their label.

    Example:
        >>> nll = torch.tensor([[2.0, 2.5], [4.0, 3.0], [1.0, 0.9], [7.0, 1.0]])
        >>> active = torch.tensor([True, True])
        >>> labels = torch.tensor([0, 0, 0, 1])
        >>> classification_em_labels(nll, torch.tensor([True, True, True, False]), labels, active, 0.0).tolist()
        [0, 1, 1, 1]
        >>> classification_em_labels(nll, torch.ones(4, dtype=torch.bool), labels, active, 1.0).tolist()
        [0, 0, 0, 1]
    """
    if size_prior < 0:
        raise ValueError(f"size_prior must be >= 0, got {size_prior!r}")
    shares = torch.bincount(labels, minlength=nll.shape[1]).float() / len(labels)
    penalty = -size_prior * torch.log(shares) if size_prior else torch.zeros_like(shares)
    scores = (nll + penalty.masked_fill(shares == 0, float("inf"))).masked_fill(~active_clusters, float("inf"))
    return torch.where(seen, scores.argmin(dim=1), labels)


def cluster_gains(
    nll: torch.Tensor, seen: torch.Tensor, labels: torch.Tensor, active_clusters: torch.Tensor
) -> torch.Tensor:
    """``[K]`` each active cluster's gain: the mean over its ``seen`` users of (the lowest NLL among the other active
    clusters - its own NLL), NaN for a cluster without such users or inactive.

    Example:
        >>> nll = torch.tensor([[1.0, 3.0, 1.5], [2.0, 5.0, 1.0], [4.0, 4.0, 4.5]])
        >>> everyone = torch.ones(3, dtype=torch.bool)
        >>> cluster_gains(nll, everyone, torch.tensor([0, 2, 1]), everyone)
        tensor([0.5000, 0.0000, 1.0000])
    """
    scores = nll.masked_fill(~active_clusters, float("inf"))
    gains = torch.full((nll.shape[1],), float("nan"))
    for cluster in active_clusters.nonzero().flatten().tolist():
        members = seen & (labels == cluster)
        if not members.any():
            continue
        others = scores[members].clone()
        others[:, cluster] = float("inf")
        gains[cluster] = (others.min(dim=1).values - scores[members, cluster]).mean()
    return gains


def merge_costs(nll: torch.Tensor, routed: torch.Tensor, active_clusters: torch.Tensor) -> torch.Tensor:
    """``[K]`` what retiring each active cluster costs: the rise of the mean routed NLL over all users of ``nll``
    ``[V, K]`` (e.g. per-token NLLs of held-out users, routed to ``routed [V]``) if the users routed to it went to
    their best other active cluster; NaN for inactive clusters. A cluster whose predictor the others can stand in
    for costs about nothing (a negative cost: its users are better off elsewhere).

    Example:
        >>> nll = torch.tensor([[1.0, 1.1, 3.0], [2.0, 1.9, 3.0], [3.0, 3.0, 1.0], [3.0, 3.0, 2.0]])
        >>> merge_costs(nll, torch.tensor([0, 1, 2, 2]), torch.tensor([True, True, True]))
        tensor([0.0250, 0.0250, 0.7500])
    """
    scores = nll.masked_fill(~active_clusters, float("inf"))
    costs = torch.full((nll.shape[1],), float("nan"))
    for cluster in active_clusters.nonzero().flatten().tolist():
        members = routed == cluster
        others = scores[members].clone()
        others[:, cluster] = float("inf")
        costs[cluster] = (others.min(dim=1).values - scores[members, cluster]).sum() / len(routed)
    return costs
