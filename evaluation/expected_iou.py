"""The predicted page set that maximises each user's expected IoU under a distribution of next sessions.

A forecast's distribution over the next session is a list of *weighted sessions* ``(pages, weight)``
whose weights sum to 1: the S sampled sessions of a model (weight 1/S each), possibly mixed with the
user's own input sessions (:mod:`evaluation.history_blend`). Under it the expected IoU of a set G is

    E[IoU(G, A)] = sum_s w_s |G ∩ A_s| / |G ∪ A_s|

computed exactly over the sessions (no independence assumption: the pages' correlations within a
sampled session count). :func:`expected_iou_set` searches the prefixes of the pages ranked by their
marginal P(page) = sum of the weights of the sessions holding it (the standard restriction of the
search: for independent pages the optimal set is such a prefix) and returns the best one, so each
user gets the set size its own uncertainty calls for instead of one global threshold tau. Pages decided
elsewhere (the outcome pages of :mod:`evaluation.decisions`) are ``fixed``: always in G and counted in
the IoU. The set holds at least one non-fixed page when any has P > 0 (an empty G scores IoU 0).

Example:
    >>> sessions = [({"home", "shoes"}, 0.6), ({"home", "bags"}, 0.4)]
    >>> expected_iou_set(sessions)
    ['home', 'shoes']
    >>> [round(expected_iou(pages, sessions), 3) for pages in (["home"], ["home", "shoes"], ["home", "shoes", "bags"])]
    [0.5, 0.733, 0.667]
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

import numpy as np

WeightedSessions = Sequence[tuple[Collection[str], float]]
# Longest prefix searched: far above any session length of the data the package targets (sessions are cut
# at a percentile, 21 pages on the default data), so the search never binds in practice.
MAX_SET_PAGES = 64


def check_weighted_sessions(sessions: WeightedSessions) -> None:
    """Raise ``ValueError`` unless the weights are non-negative and sum to 1 (a distribution).

    Example:
        >>> check_weighted_sessions([({"a"}, 0.5), ({"b"}, 0.25)])
        Traceback (most recent call last):
        ...
        ValueError: the session weights must be non-negative and sum to 1, got a sum of 0.75
    """
    weights = np.array([weight for _, weight in sessions], dtype=np.float64)
    if not sessions or np.any(weights < 0) or not np.isclose(weights.sum(), 1.0):
        raise ValueError(
            f"the session weights must be non-negative and sum to 1, got a sum of {weights.sum() if sessions else 0}"
        )


def page_marginals(sessions: WeightedSessions) -> dict[str, float]:
    """P(page in the next session): the summed weight of the sessions holding each page, most probable first.

    Example:
        >>> page_marginals([({"home", "cart"}, 0.75), ({"home"}, 0.25)])
        {'home': 1.0, 'cart': 0.75}
    """
    marginals: dict[str, float] = {}
    for pages, weight in sessions:
        for page in set(pages):
            marginals[page] = marginals.get(page, 0.0) + weight
    return dict(sorted(marginals.items(), key=lambda item: (-item[1], item[0])))


def expected_iou(predicted: Collection[str], sessions: WeightedSessions) -> float:
    """E[IoU(G, A)] of the set ``predicted`` over the weighted sessions (an empty session scores 0).

    Example:
        >>> expected_iou(["a", "b"], [({"a"}, 0.5), ({"c"}, 0.5)])
        0.25
    """
    check_weighted_sessions(sessions)
    predicted = set(predicted)
    total = 0.0
    for pages, weight in sessions:
        union = len(predicted | set(pages))
        total += weight * (len(predicted & set(pages)) / union if union else 0.0)
    return total


def expected_iou_set(
    sessions: WeightedSessions,
    fixed: Sequence[str] = (),
    excluded: Collection[str] = (),
    max_pages: int = MAX_SET_PAGES,
) -> list[str]:
    """The prefix of the pages ranked by P(page) (ties by name) with the highest expected IoU, then ``fixed``.

    Args:
        sessions: The distribution of the next session, ``(pages, weight)`` with weights summing to 1.
        fixed: Pages always in the set (and in its IoU), e.g. the outcome pages already decided.
        excluded: Pages never searched (e.g. the outcome pages, which ``fixed`` decides).
        max_pages: Longest prefix searched.

    Returns the set most probable page first (ties to the shorter prefix), the fixed pages last.

    Example:
        >>> sessions = [({"home", "shoes", "cart"}, 0.5), ({"home", "shoes"}, 0.25), ({"bags"}, 0.25)]
        >>> expected_iou_set(sessions, fixed=["cart"], excluded=["cart", "purchase"])
        ['home', 'shoes', 'cart']
    """
    check_weighted_sessions(sessions)
    if max_pages < 1:
        raise ValueError(f"max_pages must be at least 1, got {max_pages}")
    fixed_set = set(fixed)
    marginals = page_marginals(sessions)
    candidates = [page for page in marginals if page not in fixed_set and page not in excluded][:max_pages]
    if not candidates:
        return list(fixed)
    column = {page: index for index, page in enumerate(candidates)}
    holds = np.zeros((len(sessions), len(candidates)))
    weights, sizes, fixed_hits = np.zeros(len(sessions)), np.zeros(len(sessions)), np.zeros(len(sessions))
    for row, (pages, weight) in enumerate(sessions):
        pages = set(pages)
        weights[row], sizes[row], fixed_hits[row] = weight, len(pages), len(pages & fixed_set)
        for page in pages:
            if page in column:
                holds[row, column[page]] = 1.0
    intersections = np.cumsum(holds, axis=1) + fixed_hits[:, None]
    set_sizes = np.arange(1, len(candidates) + 1) + len(fixed_set)
    unions = set_sizes[None, :] + sizes[:, None] - intersections
    expected = weights @ (intersections / unions)
    best = int(np.argmax(expected)) + 1  # the first maximum: the shortest prefix on ties
    return candidates[:best] + list(fixed)
