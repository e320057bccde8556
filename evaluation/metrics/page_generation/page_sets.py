"""Turn per-user page lists into the page sets every metric works on.

Specials (``[PAD] [UNK] [BOS] [EOS]``) are not pages: they are removed from G, A and I. Every
metric module checks its inputs through :func:`check_users` so a wrong shape (a string instead
of a list, nested input sessions, lists of different lengths) fails with the user and the field
named instead of giving a silently wrong number.

Example:
    >>> from evaluation.page_sets import page_set
    >>> sorted(page_set(["[BOS]", "home", "shoes", "home", "[EOS]"]))
    ['home', 'shoes']
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

# The page tokenizer's special tokens (tokenization.constants.SPECIAL_TOKENS, pinned equal by the tests): this
# file is copied on its own into `evaluate`'s module cache, where the package may not be installed.
SPECIALS: frozenset[str] = frozenset(("[PAD]", "[UNK]", "[BOS]", "[EOS]"))


def page_set(pages: Iterable[str]) -> set[str]:
    """The set of pages in ``pages``, specials removed.

    Example:
        >>> page_set(["[UNK]", "cart"])
        {'cart'}
    """
    return set(pages) - SPECIALS


def check_users(**fields: Sequence[Sequence[str]]) -> int:
    """Check that every field is one list of page names per user and that all have one length.

    Returns the number of users. Raises ``ValueError`` for different lengths and ``TypeError``
    naming the field and the user for an entry that is not a list of strings.

    Example:
        >>> check_users(generated=[["a"], []], actual=[["a"], ["b"]])
        2
        >>> check_users(generated=[["a"]], actual=[])
        Traceback (most recent call last):
        ...
        ValueError: one entry per user is needed in every field, got generated: 1, actual: 0
    """
    lengths = {name: len(users) for name, users in fields.items()}
    if len(set(lengths.values())) > 1:
        counts = ", ".join(f"{name}: {length}" for name, length in lengths.items())
        raise ValueError(f"one entry per user is needed in every field, got {counts}")
    for name, users in fields.items():
        _check_field(name, users)
    return next(iter(lengths.values()), 0)


def _check_field(name: str, users: Sequence[Sequence[str]]) -> None:
    # One pass over the distinct items keeps the check cheap for 100,000 users; the search for
    # the offending user only runs when something is wrong.
    distinct: set = set()
    try:
        for pages in users:
            if isinstance(pages, str):
                raise TypeError
            distinct.update(pages)
        well_formed = all(isinstance(page, str) for page in distinct)
    except TypeError:
        well_formed = False
    if not well_formed:
        bad_user = next(index for index, pages in enumerate(users) if not _is_page_list(pages))
        raise TypeError(f"{name}[{bad_user}]: expected a list of page names (str)")


def _is_page_list(pages: object) -> bool:
    if isinstance(pages, str):
        return False
    try:
        return all(isinstance(page, str) for page in pages)
    except TypeError:
        return False
