"""Turn a column of timestamps in any common encoding into ``timestamp[us, tz=UTC]``.

The rule (every reader uses it):

- **Arrow timestamps / dates** (Parquet, JSON inference): taken as they are; a timestamp without a
  time zone is read as UTC.
- **ISO-8601 strings**: ``2019-10-01``, ``2019-10-01 08:30``, ``2019-10-01T08:30:00.250``, with an
  optional zone ``Z``, ``+02:00``, ``+0200``, ``+02`` or a trailing ``UTC`` (REES46 writes
  ``2019-10-01 00:00:00 UTC``). A string without a zone is read as UTC.
- **Epoch numbers** (integers, floats, or strings of digits): with ``unit="auto"`` a value whose
  magnitude is below 1e11 is seconds, below 1e14 milliseconds, below 1e17 microseconds, otherwise
  nanoseconds (1e11 seconds is the year 5138 and 1e11 milliseconds March 1973; 1e14 milliseconds is
  the year 5138 and 1e14 microseconds March 1973, and so on: real logs are never ambiguous).
  ``unit`` "s", "ms", "us" or "ns" forces one unit.

A value that is missing or cannot be parsed becomes null; the caller decides whether that is an
error or a counted skip.

Example:
    >>> import pyarrow as pa
    >>> same_instant = ["2019-10-01 00:00:00 UTC", "1569888000", "2019-10-01T02:00:00+02:00"]
    >>> parse_timestamps(pa.array([*same_instant, "soon"])).to_pylist()[3] is None
    True
    >>> len(set(parse_timestamps(pa.array(same_instant)).to_pylist()))
    1
    >>> str(parse_timestamps(pa.array([1569888000000]))[0])
    '2019-10-01 00:00:00+00:00'
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .columns import cast_or_null

TIMESTAMP_TYPE = pa.timestamp("us", tz="UTC")
TIMESTAMP_UNITS = ("auto", "s", "ms", "us", "ns")
# unit="auto": epoch values whose magnitude is below the first bound are seconds, below the second
# milliseconds, below the third microseconds, the rest nanoseconds.
AUTO_UNIT_BOUNDS = (1e11, 1e14, 1e17)
_MICROSECONDS_PER_UNIT = {"s": 1_000_000, "ms": 1_000, "us": 1, "ns": 1e-3}
# Beyond about the year 5000 a value is garbage, not a time.
_MAX_MICROSECONDS = 1e17

_NUMERIC_PATTERN = r"^[+-]?\d+(\.\d*)?$"
_ZONED_PATTERN = r"\d:\d\d(:\d\d(\.\d+)?)?(Z|[+-]\d\d(:?\d\d)?)$"


def is_supported_timestamp_type(data_type: pa.DataType) -> bool:
    """Whether :func:`parse_timestamps` accepts a column of this type.

    Example:
        >>> is_supported_timestamp_type(pa.list_(pa.int64()))
        False
    """
    return any(
        check(data_type)
        for check in (
            pa.types.is_timestamp,
            pa.types.is_date,
            pa.types.is_integer,
            pa.types.is_floating,
            pa.types.is_string,
            pa.types.is_large_string,
            pa.types.is_null,
        )
    )


def parse_timestamps(values: pa.Array, unit: str = "auto") -> pa.Array:
    """Parse ``values`` to ``timestamp[us, tz=UTC]`` following the module rule; bad values become null.

    Example:
        >>> parse_timestamps(pa.array(["2019-10-01"])).type
        TimestampType(timestamp[us, tz=UTC])
    """
    data_type = values.type
    if pa.types.is_null(data_type):
        return pa.nulls(len(values), TIMESTAMP_TYPE)
    if pa.types.is_timestamp(data_type):
        naive = values.cast(pa.timestamp(data_type.unit), safe=False) if data_type.tz is None else values
        return naive.cast(pa.timestamp("us", tz=data_type.tz or "UTC"), safe=False).cast(TIMESTAMP_TYPE)
    if pa.types.is_date(data_type):
        return values.cast(pa.timestamp("us")).cast(TIMESTAMP_TYPE)
    if pa.types.is_integer(data_type) or pa.types.is_floating(data_type):
        return _from_epoch(values, unit)
    if unit == "auto":
        try:
            return values.cast(pa.timestamp("us")).cast(TIMESTAMP_TYPE)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            pass
    return _parse_mixed_strings(values.cast(pa.string()), unit)


def _parse_mixed_strings(values: pa.Array, unit: str) -> pa.Array:
    text = pc.replace_substring_regex(pc.utf8_trim_whitespace(values), r"\s*UTC$", "Z")
    numeric = pc.match_substring_regex(text, _NUMERIC_PATTERN)
    if unit != "auto":
        return _from_epoch(cast_or_null(pc.if_else(numeric, text, None), pa.float64()), unit)
    zoned = pc.match_substring_regex(text, _ZONED_PATTERN)
    naive = pc.and_(pc.invert(numeric), pc.invert(zoned))
    return pc.coalesce(
        cast_or_null(pc.if_else(naive, text, None), pa.timestamp("us")).cast(TIMESTAMP_TYPE),
        cast_or_null(pc.if_else(zoned, text, None), TIMESTAMP_TYPE),
        _from_epoch(cast_or_null(pc.if_else(numeric, text, None), pa.float64()), unit),
    )


def _from_epoch(values: pa.Array, unit: str) -> pa.Array:
    valid = values.is_valid().to_numpy(zero_copy_only=False)
    if pa.types.is_integer(values.type):
        numbers = values.fill_null(0).cast(pa.int64()).to_numpy()
        magnitudes = np.abs(numbers.astype(np.float64))
        factors = _unit_factors(magnitudes, unit)
        huge = magnitudes * factors >= _MAX_MICROSECONDS
        # Integer arithmetic keeps every microsecond: multiply for s / ms / us, divide for ns.
        nanoseconds = factors < 1
        microseconds = np.where(huge, 0, np.where(nanoseconds, numbers // 1000, numbers * factors.astype(np.int64)))
    else:
        numbers = values.fill_null(0).cast(pa.float64()).to_numpy()
        scaled = np.nan_to_num(numbers * _unit_factors(np.abs(numbers), unit), nan=np.inf)
        huge = ~(np.abs(scaled) < _MAX_MICROSECONDS)
        microseconds = np.where(huge, 0, np.round(scaled)).astype(np.int64)
    mask = ~valid | huge
    return pa.array(microseconds, type=pa.int64(), mask=mask).cast(TIMESTAMP_TYPE)


def _unit_factors(magnitudes: np.ndarray, unit: str) -> np.ndarray:
    """Microseconds per unit of each value (float: 1e-3 for nanoseconds)."""
    if unit == "auto":
        return np.array([1e6, 1e3, 1.0, 1e-3])[np.searchsorted(AUTO_UNIT_BOUNDS, magnitudes, side="right")]
    return np.full(len(magnitudes), float(_MICROSECONDS_PER_UNIT[unit]))
