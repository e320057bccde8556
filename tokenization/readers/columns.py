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


def text_column(values: pa.Array | pa.ChunkedArray, field: str, file: str) -> pa.Array:
    """An id / page column as UTF-8 strings: strings, integers and dictionaries of those are accepted.

    Anything else (floats, lists, structs, booleans...) is a wrong type for the whole column.

    Example:
        >>> text_column(pa.array([1.5]), "user_id", "events.parquet")
        Traceback (most recent call last):
        ...
        tokenization.errors.DataFormatError: events.parquet, field 'user_id': wrong type double (expected text or integers)
    """
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    data_type = values.type
    if pa.types.is_dictionary(data_type):
        values = values.dictionary_decode()
        data_type = values.type
    if pa.types.is_string(data_type):
        return values
    if pa.types.is_large_string(data_type) or pa.types.is_string_view(data_type) or pa.types.is_integer(data_type) or pa.types.is_null(data_type):
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


def interleave(first: pa.Table, first_positions: np.ndarray, second: pa.Table, second_positions: np.ndarray) -> pa.Table:
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
