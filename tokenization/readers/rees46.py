"""Reader for the REES46 multi-category store CSV (Kechinov 2019, the paper's Dataset II).

Columns: ``event_time,event_type,product_id,category_id,category_code,brand,price,user_id,user_session``
with ``event_time`` like ``2019-10-01 00:00:00 UTC`` (any ISO-8601 form is accepted, see
:mod:`.timestamps`) and ``category_code`` sometimes empty. ``brand`` and ``price`` are not used.

Events become pages:

- ``view`` -> a page at the chosen ``granularity``, where the category key is ``category_code``
  (e.g. ``electronics.smartphone``) or, when that is empty, ``category_id``:
  ``"product"`` (the default, one token per product as the paper's 17,310-page vocabulary
  suggests): ``product/<category key>/<product_id>``;
  ``"category"``: ``category/<category key>`` (one page per view, so browsing several products
  of one category repeats the page; ``hetlm prepare --drop-consecutive-duplicates`` collapses
  such repeats);
  ``"both"``: the category page, then the product page; the category page is only emitted when
  the category differs from the previous view of the same session. The previous view is
  remembered across batches for sessions active in the last ``category_memory_hours`` (default
  24); a session idle longer than that starts again with its category page.
- ``cart`` -> the outcome page ``cart``; ``purchase`` -> ``purchase``.
- ``remove_from_cart`` -> no page: such rows are dropped and counted in the report as
  ``"remove_from_cart ignored"`` (the paper's outcomes are add-to-cart and purchase only).

``session_id`` is ``user_session``; ``user_id`` and ids stay text. Bad rows (unknown
``event_type``, a blank ``user_id`` / ``user_session``, an unparsable ``event_time``, a view without
``product_id`` or without any category key, a wrong number of fields, invalid UTF-8) raise a
DataFormatError naming file, line and field, or are skipped and counted with
``on_bad_rows="skip"``.

Example:
    >>> reader = Rees46Reader("tests/fixtures/rees46_sample.csv", batch_size=1000)
    >>> report = {}
    >>> table = pa.Table.from_batches(list(reader.batches("error", report)))
    >>> table.column_names
    ['user_id', 'session_id', 'timestamp', 'page']
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..constants import EVENT_SCHEMA, OUTCOME_CART, OUTCOME_PURCHASE
from .bad_rows import ROW_COLUMN, BadRowPolicy, Check, as_mask
from .columns import blank_to_null, interleave, is_blank
from .csv_source import csv_tables, read_csv_header
from .files import block_bytes_for, require_columns, source_files
from .options import check_choice
from .timestamps import TIMESTAMP_TYPE, parse_timestamps

REES46_COLUMNS = (
    "event_time",
    "event_type",
    "product_id",
    "category_id",
    "category_code",
    "brand",
    "price",
    "user_id",
    "user_session",
)
USED_COLUMNS = ("event_time", "event_type", "product_id", "category_id", "category_code", "user_id", "user_session")
GRANULARITIES = ("product", "category", "both")
REMOVE_FROM_CART_IGNORED = "remove_from_cart ignored"
_EVENT_TYPES = ("view", "cart", "remove_from_cart", "purchase")
# About 125 bytes per line in the real October 2019 file.
_BYTES_PER_ROW = 128


class Rees46Reader:
    """Streams a REES46 CSV (file, folder or glob; optionally compressed) as event batches.

    Args:
        source: The CSV file(s).
        batch_size: About how many rows to read per batch.
        granularity: "product" (default), "category" or "both" (see the module docstring).
        category_memory_hours: For "both": how long a session's last viewed category is remembered.
    """

    def __init__(
        self, source: str | Path, *, batch_size: int, granularity: str = "product", category_memory_hours: float = 24.0
    ):
        self.files = source_files(source, (".csv",))
        for path in self.files:
            require_columns(path, read_csv_header(path), USED_COLUMNS, "a REES46 event file")
        self.block_bytes = block_bytes_for(batch_size, _BYTES_PER_ROW)
        self.granularity = check_choice("granularity", granularity, GRANULARITIES)
        self.category_memory_microseconds = int(category_memory_hours * 3600 * 1_000_000)

    def batches(self, on_bad_rows: str, report: dict[str, int]) -> Iterator[pa.RecordBatch]:
        """Yield record batches in EVENT_SCHEMA, file after file, adding skip counts to ``report``."""
        memory = _CategoryMemory(self.category_memory_microseconds) if self.granularity == "both" else None
        for path in self.files:
            policy = BadRowPolicy(str(path), on_bad_rows, report)
            for table in csv_tables(path, USED_COLUMNS, policy, self.block_bytes):
                events = self._events(table, policy, memory)
                if events.num_rows:
                    yield from events.to_batches()
            policy.finish()

    def _events(self, table: pa.Table, policy: BadRowPolicy, memory: _CategoryMemory | None) -> pa.Table:
        event_type = table.column("event_type")
        removed = as_mask(pc.equal(event_type, "remove_from_cart"))
        policy.ignore(REMOVE_FROM_CART_IGNORED, int(removed.sum()))
        view = pc.equal(event_type, "view")
        category_key = pc.coalesce(
            blank_to_null(table.column("category_code")), blank_to_null(table.column("category_id"))
        )
        category_page = pc.binary_join_element_wise("category", category_key, "/")
        if self.granularity == "category":
            view_page = category_page
        else:
            view_page = pc.binary_join_element_wise("product", category_key, table.column("product_id"), "/")
        page = pc.if_else(view, view_page, pc.if_else(pc.equal(event_type, "cart"), OUTCOME_CART, OUTCOME_PURCHASE))
        timestamps = _parse_event_time(table.column("event_time").combine_chunks())
        columns = [table.column("user_id"), table.column("user_session"), timestamps, page, table.column(ROW_COLUMN)]
        names = [*EVENT_SCHEMA.names, ROW_COLUMN]
        if memory is not None:
            columns += [view, category_page]
            names += ["view", "category_page"]
        events = pa.table(columns, names=names)
        events = policy.reject(
            events,
            Check(
                pc.invert(pc.is_in(event_type, pa.array(_EVENT_TYPES))),
                f"unknown event_type (expected one of {', '.join(_EVENT_TYPES)})",
                "event_type",
                event_type,
            ),
            Check(is_blank(table.column("user_id")), "missing user_id", "user_id"),
            Check(is_blank(table.column("user_session")), "missing user_session", "user_session"),
            Check(timestamps.is_null(), "unparsable timestamp", "event_time", table.column("event_time")),
            Check(pc.and_(view, is_blank(table.column("product_id"))), "view without product_id", "product_id"),
            Check(pc.and_(view, category_key.is_null()), "view without category_id or category_code", "category_id"),
            ignored=removed,
        )
        if memory is not None:
            events = _with_category_pages(events, memory)
        return events.select(EVENT_SCHEMA.names).cast(EVENT_SCHEMA)


def _parse_event_time(values: pa.Array) -> pa.Array:
    """``2019-10-01 00:00:00 UTC`` fast; anything else by the general rule."""
    if len(values) and values.null_count == 0:
        lengths = pc.min_max(pc.binary_length(values))
        if lengths["min"].as_py() == lengths["max"].as_py() == 23 and pc.all(pc.ends_with(values, " UTC")).as_py():
            try:
                return pc.utf8_slice_codeunits(values, 0, 19).cast(pa.timestamp("s")).cast(TIMESTAMP_TYPE)
            except pa.ArrowInvalid:
                pass
    return parse_timestamps(values)


def _with_category_pages(events: pa.Table, memory: _CategoryMemory) -> pa.Table:
    """Granularity "both": put a category page before each view that enters a new category."""
    view_rows = np.flatnonzero(as_mask(events.column("view")))
    indices = pa.array(view_rows)
    category_page = events.column("category_page")
    changed = memory.changed(
        events.column("session_id").take(indices),
        category_page.take(indices),
        events.column("timestamp").take(indices).cast(pa.int64()).to_numpy(),
    )
    entering = pa.array(view_rows[changed])
    category_rows = events.take(entering)
    category_rows = category_rows.set_column(3, "page", category_page.take(entering))
    return interleave(category_rows, view_rows[changed], events, np.arange(events.num_rows))


class _CategoryMemory:
    """The last viewed category of each recently active session, carried from batch to batch."""

    def __init__(self, horizon_microseconds: int):
        self.horizon = horizon_microseconds
        self.sessions = pa.array([], pa.string())
        self.categories = pa.array([], pa.string())
        self.times = np.array([], dtype=np.int64)

    def changed(self, sessions: pa.ChunkedArray, categories: pa.ChunkedArray, times: np.ndarray) -> np.ndarray:
        """For each view (in input order): is its category different from its session's previous view?"""
        count = len(times)
        if count == 0:
            return np.zeros(0, dtype=bool)
        keys = pa.table({"session": sessions, "time": times, "position": np.arange(count)})
        order = pc.sort_indices(
            keys, sort_keys=[("session", "ascending"), ("time", "ascending"), ("position", "ascending")]
        ).to_numpy()
        sessions = sessions.take(pa.array(order)).combine_chunks()
        categories = categories.take(pa.array(order)).combine_chunks()
        times = times[order]

        same_session = np.zeros(count, dtype=bool)
        same_session[1:] = as_mask(pc.equal(sessions[1:], sessions[:-1]))
        same_category = np.zeros(count, dtype=bool)
        same_category[1:] = as_mask(pc.equal(categories[1:], categories[:-1]))
        changed = ~(same_session & same_category)
        first = np.flatnonzero(~same_session)
        remembered = self.categories.take(pc.index_in(sessions.take(pa.array(first)), value_set=self.sessions))
        changed[first] = ~as_mask(pc.equal(remembered, categories.take(pa.array(first))))

        last = np.ones(count, dtype=bool)
        last[:-1] = ~same_session[1:]
        self._remember(sessions.filter(pa.array(last)), categories.filter(pa.array(last)), times[last])
        result = np.empty(count, dtype=bool)
        result[order] = changed
        return result

    def _remember(self, sessions: pa.Array, categories: pa.Array, times: np.ndarray) -> None:
        kept = ~as_mask(pc.is_in(self.sessions, value_set=sessions))
        all_times = np.concatenate([self.times[kept], times])
        recent = all_times >= all_times.max() - self.horizon
        self.sessions = pa.concat_arrays([self.sessions.filter(pa.array(kept)), sessions]).filter(pa.array(recent))
        self.categories = pa.concat_arrays([self.categories.filter(pa.array(kept)), categories]).filter(
            pa.array(recent)
        )
        self.times = all_times[recent]
