"""Reader for event tables already in memory: a pandas ``DataFrame``, a pyarrow ``Table`` or ``RecordBatch``, or a
``datasets.Dataset``, in the generic event schema (one row per page view).

The same columns, options and row checks as the file reader of format ``"events"`` (:mod:`.events`): column
names (``user_column``...), ``timestamp_unit``, ``max_page_length``; a bad row is named by its 1-based row index
and raises, or is skipped and counted with ``on_bad_rows="skip"``. A pandas ``datetime64`` column (naive: UTC)
is a timestamp column like a Parquet one.

Example:
    >>> import pandas as pd
    >>> frame = pd.DataFrame({"user_id": ["u1", "u1"], "timestamp": ["2024-03-01T10:00:00Z", "2024-03-01T10:01:00Z"],
    ...                       "page": ["home", "cart"]})
    >>> reader = InMemoryEventReader(frame, batch_size=1000)
    >>> table = pa.Table.from_batches(list(reader.batches("error", {})))
    >>> table.column("page").to_pylist(), reader.source
    (['home', 'cart'], '<in-memory pandas.DataFrame: 2 rows>')
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pyarrow as pa

from ..errors import DataFormatError
from .bad_rows import ROW_COLUMN, BadRowPolicy
from .columns import DEFAULT_MAX_PAGE_LENGTH
from .events import EventLogReader
from .files import require_columns


def is_in_memory_table(source: Any) -> bool:
    """Whether ``source`` is an in-memory table this reader takes (pandas, pyarrow, ``datasets``).

    Example:
        >>> is_in_memory_table(pa.table({"page": ["home"]})), is_in_memory_table("events.csv")
        (True, False)
    """
    if isinstance(source, (pa.Table, pa.RecordBatch)):
        return True
    module = type(source).__module__.split(".")[0]
    if module == "pandas":
        import pandas as pd

        return isinstance(source, pd.DataFrame)
    if module == "datasets":
        import datasets

        return isinstance(source, datasets.Dataset)
    return False


def as_arrow_table(source: Any) -> pa.Table:
    """An in-memory table (:func:`is_in_memory_table`) as a pyarrow Table.

    Example:
        >>> as_arrow_table(pa.record_batch({"page": ["home"]})).num_rows
        1
    """
    if not is_in_memory_table(source):
        raise DataFormatError(
            f"not an in-memory event table: {type(source).__name__} (expected a pandas "
            "DataFrame, a pyarrow Table or RecordBatch, or a datasets.Dataset)"
        )
    if isinstance(source, pa.Table):
        return source
    if isinstance(source, pa.RecordBatch):
        return pa.Table.from_batches([source])
    if type(source).__module__.startswith("pandas"):
        return pa.Table.from_pandas(source, preserve_index=False)
    return source.with_format("arrow")[:]  # a datasets.Dataset: honours a select / shuffle / filter view


def describe_in_memory(source: Any) -> str:
    """The name errors and summaries give an in-memory source.

    Example:
        >>> describe_in_memory(pa.table({"page": ["a", "b"]}))
        '<in-memory pyarrow.Table: 2 rows>'
    """
    kind = type(source)
    return f"<in-memory {kind.__module__.split('.')[0]}.{kind.__name__}: {len(source):,} rows>"


class InMemoryEventReader(EventLogReader):
    """Streams an in-memory event table as batches in EVENT_SCHEMA (the checks of :class:`EventLogReader`).

    Args:
        table: A pandas DataFrame, a pyarrow Table / RecordBatch or a ``datasets.Dataset``.
        batch_size: At most this many rows per batch.
        user_column, session_column, timestamp_column, page_column, timestamp_unit, max_page_length,
            segment_column: As for :class:`EventLogReader`.
    """

    def __init__(
        self,
        table: Any,
        *,
        batch_size: int,
        user_column: str = "user_id",
        session_column: str = "session_id",
        timestamp_column: str = "timestamp",
        page_column: str = "page",
        timestamp_unit: str = "auto",
        max_page_length: int = DEFAULT_MAX_PAGE_LENGTH,
        segment_column: str | None = None,
    ):
        arrow_table = as_arrow_table(table)
        self.source = describe_in_memory(table)
        self._set_columns(
            user_column, session_column, timestamp_column, page_column, timestamp_unit, max_page_length, segment_column
        )
        self.batch_size = batch_size
        require_columns(self.source, arrow_table.column_names, self.required, "an event table")
        if arrow_table.num_rows == 0:
            raise DataFormatError("no data rows", file=self.source)
        present = [name for name in self.columns.values() if name in arrow_table.column_names]
        self.table = arrow_table.select(present)

    def batches(self, on_bad_rows: str, report: dict[str, int]) -> Iterator[pa.RecordBatch]:
        """Yield record batches in EVENT_SCHEMA, adding skip counts to ``report``."""
        policy = BadRowPolicy(self.source, on_bad_rows, report)
        for offset in range(0, self.table.num_rows, self.batch_size):
            chunk = self.table.slice(offset, self.batch_size)
            rows = pa.array(np.arange(offset + 1, offset + 1 + chunk.num_rows, dtype=np.int64))
            events = self._events(chunk.append_column(ROW_COLUMN, rows), policy)
            if events.num_rows:
                yield from events.to_batches()
        policy.finish()
