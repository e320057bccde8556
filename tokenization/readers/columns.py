"""Small vectorised helpers shared by the readers: id columns as text, blank masks, interleaving.

Example:
    >>> import pyarrow as pa
    >>> text_column(pa.array([7, None]), "user_id", "events.parquet").to_pylist()
    ['7', None]
    >>> is_blank(pa.array(["a", " ", None])).to_pylist()
    [False, True, True]
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..errors import DataFormatError
from .bad_rows import Check


def text_column(values: pa.Array | pa.ChunkedArray, field: str, file: str) -> pa.Array:
    """An id / page column as UTF-8 strings: strings, integers and dictionaries of those are accepted.

    Anything else (floats, lists, structs, booleans...) is a wrong type for the whole column.

    Example:
        >>> text_column(pa.array([1.5]), "user_id", "events.parquet")  # doctest: +NORMALIZE_WHITESPACE
        Traceback (most recent call last):
        ...
        tokenization.errors.DataFormatError: events.parquet, field 'user_id': wrong type double
            (expected text or integers)
    """
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    data_type = values.type
    if pa.types.is_dictionary(data_type):
        values = values.dictionary_decode()
        data_type = values.type
    if pa.types.is_string(data_type):
        return values
    if (
        pa.types.is_large_string(data_type)
        or pa.types.is_string_view(data_type)
        or pa.types.is_integer(data_type)
        or pa.types.is_null(data_type)
    ):
        return values.cast(pa.string())
    raise DataFormatError(f"wrong type {data_type} (expected text or integers)", file=file, field=field)


def is_blank(values: pa.Array) -> pa.Array:
    """True where a text value is null, empty or only whitespace.

    Example:
        >>> is_blank(pa.array(["", "x"])).to_pylist()
        [True, False]
    """
    return pc.fill_null(pc.or_(pc.equal(pc.binary_length(values), 0), pc.utf8_is_space(values)), True)


def blank_to_null(values: pa.Array) -> pa.Array:
    """Replace empty / whitespace-only strings by null.

    Example:
        >>> blank_to_null(pa.array(["", "s1"])).to_pylist()
        [None, 's1']
    """
    return pc.if_else(is_blank(values), pa.scalar(None, values.type), values)


def cast_or_null(values: pa.Array, target: pa.DataType) -> pa.Array:
    """Cast, turning the values that do not convert into nulls (the slow loop only runs on bad data).

    Example:
        >>> cast_or_null(pa.array(["12", "x"]), pa.int64()).to_pylist()
        [12, None]
    """
    try:
        return values.cast(target)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    converted = []
    for value in values:
        try:
            converted.append(value.cast(target).as_py())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            converted.append(None)
    return pa.array(converted, type=target)


def interleave(
    first: pa.Table, first_positions: np.ndarray, second: pa.Table, second_positions: np.ndarray
) -> pa.Table:
    """Merge two tables of the same schema, ordering rows by position (ties: ``first`` wins).

    Used to put a derived row (a category page, an outcome page) right next to the row it comes
    from, keeping the file order of everything else.

    Example:
        >>> a, b = pa.table({"page": ["x", "y"]}), pa.table({"page": ["cart"]})
        >>> interleave(a, np.array([0, 1]), b, np.array([0])).column("page").to_pylist()
        ['x', 'cart', 'y']
    """
    positions = np.concatenate([np.asarray(first_positions) * 2, np.asarray(second_positions) * 2 + 1])
    order = np.argsort(positions, kind="stable")
    return pa.concat_tables([first, second]).take(pa.array(order))


# Text a spreadsheet or a data-frame export writes for a missing value: never a real page.
NULL_LIKE_PAGES = ("nan", "null", "none", "nil", "undefined", "n/a", "<na>")
# C0 / C1 control characters, and the zero-width and direction marks that make two pages look alike.
_INVISIBLE_PATTERN = r"[\x00-\x1f\x7f-\x9f\x{200b}-\x{200f}\x{2028}-\x{202e}\x{2060}-\x{2064}\x{feff}]"  # RE2 syntax
DEFAULT_MAX_PAGE_LENGTH = 1000


def page_checks(pages: pa.Array, field: str, max_page_length: int = DEFAULT_MAX_PAGE_LENGTH) -> list[Check]:
    """The row checks every page name passes, in order: not blank, not a null-like text (``NaN``, ``null``,
    ``None``...), no control or zero-width characters, at most ``max_page_length`` characters.

    Returns ``Check`` tuples for :meth:`BadRowPolicy.reject` (each a counted skip reason).

    Example:
        >>> pages = pa.array(["home", "NaN", "ca\\u200brt", "x" * 6, None])
        >>> checks = page_checks(pages, "page", max_page_length=5)
        >>> [  # doctest: +NORMALIZE_WHITESPACE
        ...     (check.reason.split(" (")[0], check.bad.to_pylist()) for check in checks
        ... ]
        [('missing page', [False, False, False, False, True]),
         ('null-like page', [False, True, False, False, False]),
         ('control or invisible character in page', [False, False, True, False, False]),
         ('page longer than 5 characters', [False, False, False, True, False])]
    """
    if max_page_length < 1:
        raise ValueError(f"max_page_length must be at least 1, got {max_page_length}")
    trimmed = pc.utf8_lower(pc.utf8_trim_whitespace(pages))
    return [
        Check(is_blank(pages), "missing page", field),
        Check(pc.fill_null(pc.is_in(trimmed, pa.array(NULL_LIKE_PAGES)), False), "null-like page", field, pages),
        Check(
            pc.fill_null(pc.match_substring_regex(pages, _INVISIBLE_PATTERN), False),
            "control or invisible character in page",
            field,
        ),
        Check(
            pc.fill_null(pc.greater(pc.utf8_length(pages), max_page_length), False),
            f"page longer than {max_page_length} characters",
            field,
        ),
    ]
