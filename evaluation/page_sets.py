"""Per-user page lists to page sets, specials removed, and the input checks of every metric.

The implementation lives in the ``page_generation`` module folder, so that the ``evaluate`` modules load
where this package is not installed; the other folders link to it.

Example:
    >>> from evaluation.page_sets import page_set
    >>> sorted(page_set(["[BOS]", "home", "shoes", "home", "[EOS]"]))
    ['home', 'shoes']
"""

from evaluation.metrics.page_generation.page_sets import SPECIALS, check_users, page_set

__all__ = ["SPECIALS", "check_users", "page_set"]
