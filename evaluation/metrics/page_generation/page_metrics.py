"""Page-generation metrics (paper §5.1.1, §5.2.1, §5.2.2): HR, IoA, IoP, IoU, Val-P, New-P.

Per user, G is the set of pages in the generated next session, A the set of pages in the actual
next session and I the set of pages in the input sessions; specials (``[PAD] [UNK] [BOS] [EOS]``)
are not pages. Per user:

- HR  = 1 if |G ∩ A| > 0 else 0
- IoA = |G ∩ A| / |A|
- IoP = |G ∩ A| / |G|  (the paper's IoG; 0 when G is empty)
- IoU = |G ∩ A| / |G ∪ A|
- Val-P = valid generated tokens / all generated tokens, counted over the generated list with
  repeats (0 when nothing was generated). A token is valid when it is a page of ``vocabulary``
  (specials never are, so a generated ``[UNK]`` counts as a hallucination); with
  ``vocabulary=None`` every non-special string is valid.
- New-P = |V \\ I| / |V| where V is the *set* of valid generated pages (0 when V is empty).

A user whose A is empty (no page besides specials) has nothing to be scored against: the user is
excluded from every mean and variance and counted in ``n_excluded_empty_actual``.

Reported figures are means across users and, for HR, IoA, IoP and IoU, the population variance
(``ddof=0``) across users. The paper does not name the estimator, but its Table 3 agrees with the
population variance: HR is 0/1, so HR-var = p(1 - p); cluster 3 of OPT-350M HeTLM (N=151,
HR=0.57) reports 0.245 = 0.57 * 0.43, where the sample variance would give 0.247. With no
evaluated user every figure is NaN.

Example:
    >>> from evaluation.page_metrics import page_generation_scores
    >>> scores = page_generation_scores(
    ...     generated=[["home", "shoes"], []],
    ...     actual=[["shoes", "cart"], ["home"]],
    ...     inputs=[["home"], ["home"]],
    ... )
    >>> scores["HR"], scores["IoA"], scores["n_users"]
    (0.5, 0.25, 2)
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence

import numpy as np

from .page_sets import SPECIALS, check_users, page_set

# Column order of the paper's Tables 2 and 3.
PAGE_MEAN_METRICS: tuple[str, ...] = ("HR", "IoA", "IoP", "IoU", "New-P", "Val-P")
PAGE_VARIANCE_METRICS: tuple[str, ...] = ("HR-var", "IoA-var", "IoP-var", "IoU-var")

# Reported metric name -> per-user array name.
_PER_USER_KEYS: dict[str, str] = {
    "HR": "hr",
    "IoA": "ioa",
    "IoP": "iop",
    "IoU": "iou",
    "Val-P": "valp",
    "New-P": "newp",
}


def per_user_page_scores(
    generated: Sequence[Sequence[str]],
    actual: Sequence[Sequence[str]],
    inputs: Sequence[Sequence[str]],
    vocabulary: Collection[str] | None = None,
) -> dict[str, np.ndarray]:
    """Each user's HR, IoA, IoP, IoU, Val-P and New-P, aligned with the input lists.

    Returns float arrays ``hr, ioa, iop, iou, valp, newp`` of length N (NaN for a user whose actual
    session has no page) and the boolean array ``evaluated`` (False for those users), so callers
    can slice users (e.g. by cluster) and aggregate with :func:`aggregate_page_scores`.

    Args:
        generated: the generated next session of each user (page names; specials allowed).
        actual: the actual next session of each user.
        inputs: the pages of each user's input sessions, flattened into one list.
        vocabulary: the valid pages (for Val-P and New-P); specials in it are ignored. ``None``
            treats every non-special string as valid.

    Example:
        >>> scores = per_user_page_scores([["a", "[UNK]"]], [["a", "b"]], [["a"]], vocabulary={"a", "b"})
        >>> [float(scores[name][0]) for name in ("hr", "ioa", "iop", "iou", "valp", "newp")]
        [1.0, 0.5, 1.0, 0.5, 0.5, 0.0]
    """
    num_users = check_users(generated=generated, actual=actual, inputs=inputs)
    valid_pages = None if vocabulary is None else frozenset(vocabulary) - SPECIALS
    columns = {key: np.full(num_users, np.nan) for key in _PER_USER_KEYS.values()}
    evaluated = np.zeros(num_users, dtype=bool)
    for user, (generated_pages, actual_pages, input_pages) in enumerate(zip(generated, actual, inputs)):
        actual_set = page_set(actual_pages)
        if not actual_set:
            continue
        evaluated[user] = True
        generated_set = page_set(generated_pages)
        hits = len(generated_set & actual_set)
        columns["hr"][user] = float(hits > 0)
        columns["ioa"][user] = hits / len(actual_set)
        columns["iop"][user] = hits / len(generated_set) if generated_set else 0.0
        columns["iou"][user] = hits / (len(generated_set) + len(actual_set) - hits)
        if valid_pages is None:
            valid_set = generated_set
            num_valid_tokens = len(generated_pages) - sum(map(SPECIALS.__contains__, generated_pages))
        else:
            valid_set = generated_set & valid_pages
            num_valid_tokens = sum(map(valid_pages.__contains__, generated_pages))
        columns["valp"][user] = num_valid_tokens / len(generated_pages) if len(generated_pages) else 0.0
        columns["newp"][user] = len(valid_set - set(input_pages)) / len(valid_set) if valid_set else 0.0
    columns["evaluated"] = evaluated
    return columns


def aggregate_page_scores(per_user: Mapping[str, np.ndarray]) -> dict[str, float | int]:
    """Means, population variances and counts from :func:`per_user_page_scores` (or a slice of it).

    Example:
        >>> per_user = per_user_page_scores([["a"], ["c"], []], [["a"], ["b"], []], [[], [], []])
        >>> scores = aggregate_page_scores({name: values[:2] for name, values in per_user.items()})
        >>> scores["HR"], scores["HR-var"], scores["n_users"], scores["n_excluded_empty_actual"]
        (0.5, 0.25, 2, 0)
    """
    evaluated = np.asarray(per_user["evaluated"], dtype=bool)
    num_users = int(evaluated.sum())
    values = {metric: np.asarray(per_user[key], dtype=np.float64)[evaluated] for metric, key in _PER_USER_KEYS.items()}
    scores: dict[str, float | int] = {}
    for metric in PAGE_MEAN_METRICS:
        scores[metric] = float(values[metric].mean()) if num_users else float("nan")
    for metric in PAGE_VARIANCE_METRICS:
        per_user_values = values[metric.removesuffix("-var")]
        scores[metric] = float(per_user_values.var(ddof=0)) if num_users else float("nan")
    scores["n_users"] = num_users
    scores["n_excluded_empty_actual"] = int(evaluated.size - num_users)
    return scores


def page_generation_scores(
    generated: Sequence[Sequence[str]],
    actual: Sequence[Sequence[str]],
    inputs: Sequence[Sequence[str]],
    vocabulary: Collection[str] | None = None,
) -> dict[str, float | int]:
    """HR, IoA, IoP, IoU, Val-P, New-P (means), HR-var, IoA-var, IoP-var, IoU-var, n_users, n_excluded_empty_actual.

    Arguments as in :func:`per_user_page_scores`.

    Example:
        >>> scores = page_generation_scores([["a", "b"]], [["b", "c"]], [["a"]])
        >>> scores["IoU"], scores["New-P"], scores["IoU-var"]
        (0.3333333333333333, 0.5, 0.0)
    """
    return aggregate_page_scores(per_user_page_scores(generated, actual, inputs, vocabulary))
