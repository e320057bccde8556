"""Validation of reader options with a fixed set of values.

Example:
    >>> check_choice("granularity", "both", ("product", "category", "both"))
    'both'
"""

from __future__ import annotations

from collections.abc import Sequence


def check_choice(name: str, value: str, choices: Sequence[str]) -> str:
    """Return ``value`` if it is one of ``choices``, else raise a ValueError naming the option.

    Example:
        >>> check_choice("on_bad_rows", "drop", ("error", "skip"))
        Traceback (most recent call last):
        ...
        ValueError: on_bad_rows must be one of ('error', 'skip'), got 'drop'
    """
    if value not in choices:
        raise ValueError(f"{name} must be one of {tuple(choices)}, got {value!r}")
    return value
