"""Next-page ranking metrics: Recall@K, NDCG@K and MRR@K of the first page of the next session.

Beyond the paper, so that results compare with Transformers4Rec / RecBole conventions. Each row
of ``scores`` holds the model's score of every vocabulary id (e.g. the logits at the position
after the prompt's ``[BOS]``); ``targets`` holds the id of the page that actually came first.
With one relevant item per row:

- rank = 1 + the number of candidate ids scored above the target, where ties count against the
  target (an id with the same score as the target is ranked before it). This pessimistic rule is
  deterministic and gives a constant scorer no credit: breaking ties by id would reward the
  page tokenizer's frequency order instead of the model.
- Recall@K = mean(rank <= K) (the hit rate at K),
  NDCG@K = mean(1 / log2(rank + 1) if rank <= K else 0),
  MRR@K = mean(1 / rank if rank <= K else 0).

Ids in ``exclude_ids`` (typically the special tokens) are not candidates; a target among them is
an error, as is a NaN score. ``-inf`` scores are allowed (masked ids).

Example:
    >>> import numpy as np
    >>> from evaluation.ranking import ranking_scores
    >>> scores = np.array([[0.1, 0.7, 0.2], [0.5, 0.1, 0.4]])
    >>> results = ranking_scores(scores, np.array([1, 2]), ks=(1, 2))
    >>> results["Recall@1"], results["MRR@1"], results["Recall@2"], round(results["NDCG@2"], 4), results["MRR@2"]
    (0.5, 0.5, 1.0, 0.8155, 0.75)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

# Rows compared at once: bounds the temporary [rows, V] boolean array to a few MB.
_CHUNK_ROWS = 4096


def target_ranks(scores: np.ndarray, targets: np.ndarray, exclude_ids: Sequence[int] | None = None) -> np.ndarray:
    """The 1-based rank of each row's target among the candidate ids (ties count against it).

    Example:
        >>> import numpy as np
        >>> target_ranks(np.array([[0.3, 0.3, 0.1]]), np.array([0])).tolist()
        [2]
        >>> target_ranks(np.array([[0.9, 0.3, 0.1]]), np.array([1]), exclude_ids=[0]).tolist()
        [1]
    """
    scores = np.asarray(scores)
    targets = np.asarray(targets)
    if scores.ndim != 2:
        raise ValueError(f"scores must have shape [N, V], got shape {scores.shape}")
    if targets.shape != (scores.shape[0],):
        raise ValueError(f"targets must have shape [N] = [{scores.shape[0]}], got shape {targets.shape}")
    if not np.issubdtype(targets.dtype, np.integer):
        raise TypeError(f"targets must be integer ids, got dtype {targets.dtype}")
    vocab_size = scores.shape[1]
    out_of_range = (targets < 0) | (targets >= vocab_size)
    if out_of_range.any():
        row = int(np.argmax(out_of_range))
        raise ValueError(f"targets[{row}] = {int(targets[row])} is not an id of a vocabulary of size {vocab_size}")
    candidates = np.ones(vocab_size, dtype=bool)
    if exclude_ids is not None:
        candidates[np.asarray(exclude_ids, dtype=np.int64)] = False
        excluded_target = ~candidates[targets]
        if excluded_target.any():
            row = int(np.argmax(excluded_target))
            raise ValueError(f"targets[{row}] = {int(targets[row])} is one of exclude_ids")
    ranks = np.empty(scores.shape[0], dtype=np.int64)
    for start in range(0, scores.shape[0], _CHUNK_ROWS):
        chunk = scores[start : start + _CHUNK_ROWS, candidates]
        nan_rows = np.isnan(chunk).any(axis=1)
        if nan_rows.any():
            row = start + int(np.argmax(nan_rows))
            raise ValueError(f"scores[{row}] contains NaN")
        target_scores = scores[np.arange(start, start + chunk.shape[0]), targets[start : start + _CHUNK_ROWS]]
        ranks[start : start + chunk.shape[0]] = (chunk >= target_scores[:, None]).sum(axis=1)
    return ranks


def ranking_scores(
    scores: np.ndarray,
    targets: np.ndarray,
    ks: Sequence[int] = (5, 10, 20),
    exclude_ids: Sequence[int] | None = None,
) -> dict[str, float | int]:
    """Recall@K, NDCG@K and MRR@K for every K in ``ks`` (keys like ``"NDCG@10"``) and ``n_users``.

    Args:
        scores: float array [N, V], higher = more likely (logits, log-probabilities or probabilities).
        targets: int array [N], the id of the first page of each user's next session.
        ks: cut-offs, positive integers.
        exclude_ids: ids that are never candidates (e.g. the special tokens' ids).

    With N = 0 every figure is NaN.

    Example:
        >>> import numpy as np
        >>> ranking_scores(np.array([[0.0, 2.0, 1.0]]), np.array([2]), ks=(1,), exclude_ids=[0])
        {'Recall@1': 0.0, 'NDCG@1': 0.0, 'MRR@1': 0.0, 'n_users': 1}
    """
    return scores_from_ranks(target_ranks(scores, targets, exclude_ids), ks)


def per_user_rank_metrics(ranks: np.ndarray, k: int) -> dict[str, np.ndarray]:
    """Each user's Recall@k (0/1), NDCG@k and MRR@k from the 1-based rank of the target (``inf``: not ranked).

    Example:
        >>> values = per_user_rank_metrics(np.array([1, 3, np.inf]), k=2)
        >>> values["Recall@2"].tolist(), values["MRR@2"].tolist()
        ([1.0, 0.0, 0.0], [1.0, 0.0, 0.0])
    """
    ranks = np.asarray(ranks, dtype=np.float64)
    hit = ranks <= k
    with np.errstate(divide="ignore"):
        return {
            f"Recall@{k}": hit.astype(np.float64),
            f"NDCG@{k}": np.where(hit, 1.0 / np.log2(ranks + 1.0), 0.0),
            f"MRR@{k}": np.where(hit, 1.0 / ranks, 0.0),
        }


def scores_from_ranks(ranks: np.ndarray, ks: Sequence[int] = (5, 10, 20)) -> dict[str, float | int]:
    """Recall@K, NDCG@K and MRR@K (means over users) and ``n_users`` from each user's target rank.

    ``ranks`` are 1-based (``inf`` for a target the model did not rank); with no user every figure is NaN.

    Example:
        >>> scores_from_ranks(np.array([1, 2, np.inf]), ks=(1,))
        {'Recall@1': 0.3333333333333333, 'NDCG@1': 0.3333333333333333, 'MRR@1': 0.3333333333333333, 'n_users': 3}
    """
    if not ks or any(not isinstance(k, (int, np.integer)) or k < 1 for k in ks):
        raise ValueError(f"ks must be positive integers, got {tuple(ks)}")
    ranks = np.asarray(ranks)
    results: dict[str, float | int] = {}
    for k in ks:
        if ranks.size == 0:
            results.update({f"Recall@{k}": float("nan"), f"NDCG@{k}": float("nan"), f"MRR@{k}": float("nan")})
            continue
        results.update({name: float(values.mean()) for name, values in per_user_rank_metrics(ranks, k).items()})
    results["n_users"] = int(ranks.size)
    return results


def ranks_in_lists(ranked: Sequence[Sequence[str]], targets: Sequence[str]) -> np.ndarray:
    """The 1-based position of each target in its user's ranked list (``inf`` when absent).

    Example:
        >>> ranks_in_lists([["a", "b"], ["a"]], ["b", "c"]).tolist()
        [2.0, inf]
    """
    if len(ranked) != len(targets):
        raise ValueError(f"{len(ranked)} ranked lists for {len(targets)} targets")
    ranks = np.full(len(targets), np.inf)
    for user, (pages, target) in enumerate(zip(ranked, targets)):
        for position, page in enumerate(pages):
            if page == target:
                ranks[user] = position + 1
                break
    return ranks
