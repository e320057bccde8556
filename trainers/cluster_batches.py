"""Cluster-grouped training batches: each batch of HeTLM's critic holds the rows of one cluster, as the K-means
baseline's are.

The K-means baseline fine-tunes each predictor on whole batches of its own cluster. In a shuffled HeTLM batch
each predictor gets about ``batch_size / K`` rows and the critic's loss (the mean over the batch) scales its
gradient by its share of the batch, so each of its Adam steps rests on a few rows: noisier steps, K times as
many. :class:`ClusterGroupedSampler` orders the training rows so that every batch of ``batch_size``
consecutive rows comes from one cluster (each cluster's rows cut into full batches, their order shuffled; the
rows left over fill the last few batches, which may mix clusters), and regroups the rows not yet drawn whenever
the clusters change (e.g. after an online-EM reassignment), at a batch boundary. Every row is drawn once per
epoch, so the epoch length and the schedule do not change.

Example:
    >>> clusters = torch.tensor([0, 1, 0, 1, 0, 1, 0, 1])
    >>> sampler = ClusterGroupedSampler(lambda: clusters, batch_size=2, seed=0)
    >>> order = list(sampler)
    >>> sorted(order) == list(range(8)), [len(set(clusters[order[i : i + 2]].tolist())) for i in range(0, 8, 2)]
    (True, [1, 1, 1, 1])
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import torch
from torch.utils.data import Sampler


def cluster_batches(rows: torch.Tensor, clusters: torch.Tensor, batch_size: int, generator: torch.Generator):
    """``rows`` cut into batches of ``batch_size``: each cluster's rows (``clusters``: the cluster of each of
    ``rows``) in full batches, in shuffled order, then the rows left over, cluster by cluster (only the last batch
    may be short).

    Example:
        >>> batches = cluster_batches(torch.arange(5), torch.tensor([0, 0, 1, 1, 1]), 2, torch.Generator())
        >>> sorted(sorted(batch.tolist()) for batch in batches[:2]), batches[2].tolist()
        ([[0, 1], [2, 3]], [4])
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    full, left_over = [], []
    for cluster in clusters.unique().tolist():
        members = rows[clusters == cluster]
        cut = len(members) - len(members) % batch_size
        full.extend(members[:cut].split(batch_size))
        left_over.append(members[cut:])
    order = torch.randperm(len(full), generator=generator).tolist()
    tail = list(torch.cat(left_over).split(batch_size)) if left_over else []
    return [full[index] for index in order] + [batch for batch in tail if len(batch)]


class ClusterGroupedSampler(Sampler[int]):
    """Row indices whose consecutive batches of ``batch_size`` each come from one cluster.

    Args:
        row_clusters: Called at every batch boundary; the current cluster of every training row ``[rows]``. When
            it differs from the grouping's, the rows not yet drawn are regrouped.
        batch_size: Rows per batch (the data loader's batch size).
        seed: Seed of the shuffles; epoch ``e`` (:meth:`set_epoch`) shuffles with ``seed + e``.
    """

    def __init__(self, row_clusters: Callable[[], torch.Tensor], batch_size: int, seed: int = 0):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.row_clusters = row_clusters
        self.batch_size = batch_size
        self.seed = seed
        self.epoch = 0
        self.regroupings = 0

    def __len__(self) -> int:
        return len(self.row_clusters())

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[int]:
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        clusters = self.row_clusters().clone()
        remaining = torch.randperm(len(clusters), generator=generator)
        while len(remaining):
            batches = cluster_batches(remaining, clusters[remaining], self.batch_size, generator)
            for position, batch in enumerate(batches):
                if position and not torch.equal(self.row_clusters(), clusters):
                    clusters = self.row_clusters().clone()
                    self.regroupings += 1
                    rest = torch.cat(batches[position:])
                    remaining = rest[torch.randperm(len(rest), generator=generator)]
                    break
                yield from batch.tolist()
            else:
                return
