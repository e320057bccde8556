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
from typing import Any

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
        # The running epoch: rows drawn, batches planned, the labels they were grouped by, the shuffles' generator.
        self._drawn: list[int] = []
        self._planned: list[torch.Tensor] = []
        self._grouping: torch.Tensor | None = None
        self._generator = torch.Generator()
        self._resume: dict[str, Any] | None = None

    def __len__(self) -> int:
        return len(self.row_clusters())

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def state_dict(self) -> dict[str, Any]:
        """Where the running epoch stands (JSON-ready): restored by :meth:`load_state_dict`, the next iteration of
        that epoch draws the same rows in the same order, so a resumed training sees the batches an uninterrupted
        one does (its data loader skips the batches drawn before the checkpoint).

        Example:
            >>> sampler = ClusterGroupedSampler(lambda: torch.tensor([0, 0, 1, 1]), batch_size=2)
            >>> first = next(iter(sampler))
            >>> again = ClusterGroupedSampler(lambda: torch.tensor([0, 0, 1, 1]), batch_size=2)
            >>> again.load_state_dict(sampler.state_dict())
            >>> list(again) == list(ClusterGroupedSampler(lambda: torch.tensor([0, 0, 1, 1]), batch_size=2))
            True
        """
        return {
            "epoch": self.epoch,
            "drawn": list(self._drawn),
            "planned": [batch.tolist() for batch in self._planned],
            "grouping": None if self._grouping is None else self._grouping.tolist(),
            "generator": self._generator.get_state().tolist(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Resume the epoch saved by :meth:`state_dict` at the next iteration (of that epoch)."""
        self._resume = state

    def _start_epoch(self) -> None:
        resume, self._resume = self._resume, None
        if resume is not None and resume["epoch"] == self.epoch and resume["grouping"] is not None:
            self._generator = torch.Generator()
            self._generator.set_state(torch.tensor(resume["generator"], dtype=torch.uint8))
            self._grouping = torch.tensor(resume["grouping"], dtype=torch.long)
            self._drawn = list(resume["drawn"])
            self._planned = [torch.tensor(batch, dtype=torch.long) for batch in resume["planned"]]
            return
        self._generator = torch.Generator().manual_seed(self.seed + self.epoch)
        self._grouping = self.row_clusters().clone()
        remaining = torch.randperm(len(self._grouping), generator=self._generator)
        self._drawn = []
        self._planned = cluster_batches(remaining, self._grouping[remaining], self.batch_size, self._generator)

    def __iter__(self) -> Iterator[int]:
        self._start_epoch()
        yield from list(self._drawn)  # a resumed epoch: the rows drawn before the checkpoint, in their order
        while self._planned:
            current = self.row_clusters()
            if not torch.equal(current, self._grouping):
                self._grouping = current.clone()
                self.regroupings += 1
                rest = torch.cat(self._planned)
                rest = rest[torch.randperm(len(rest), generator=self._generator)]
                self._planned = cluster_batches(rest, self._grouping[rest], self.batch_size, self._generator)
            batch = self._planned.pop(0).tolist()
            self._drawn.extend(batch)
            yield from batch
