"""Next-page ranking metrics: Recall@K, NDCG@K and MRR@K of the first page of the next session.

The implementation and its definitions (ties count against the target) live in
``evaluation/metrics/page_ranking/ranking.py``, beside the ``evaluate`` module that wraps them, so that the
module loads where this package is not installed.

Example:
    >>> import numpy as np
    >>> from evaluation.ranking import ranking_scores
    >>> ranking_scores(np.array([[0.1, 0.7, 0.2]]), np.array([1]), ks=(1,))["MRR@1"]
    1.0
"""

from evaluation.metrics.page_ranking.ranking import (
    per_user_rank_metrics,
    ranking_scores,
    ranks_in_lists,
    scores_from_ranks,
    target_ranks,
)

__all__ = ["per_user_rank_metrics", "ranking_scores", "ranks_in_lists", "scores_from_ranks", "target_ranks"]
