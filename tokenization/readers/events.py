"""Reader for generic event logs: CSV, Parquet or JSON lines with one row per page view.

Columns (names configurable): ``user_id``, ``timestamp``, ``page`` and, optionally, ``session_id``.
With ``segment_column``, a column of known user segments (a CRM tier, an A/B arm, ...) is read too
and carried, like the simulator's true segments, through ``prepare`` into the prepared data, where the
evaluation scores how well the clusters recover it (ARI, NMI).

- The file format comes from the extension (``.csv``; ``.parquet`` / ``.pq``; ``.jsonl`` /
  ``.ndjson`` / ``.json`` for JSON lines; optionally compressed, e.g. ``.csv.gz``) unless
  ``file_format`` ("csv", "parquet", "jsonl") says otherwise.
- ``user_id``, ``session_id`` and ``page`` may be text or integers (read as text: CSV values are
  never parsed as numbers, so ids keep leading zeros and never overflow).
- ``timestamp`` may be ISO-8601 text (a time without a zone is UTC), epoch seconds, milliseconds,
  microseconds or nanoseconds (told apart by magnitude; ``timestamp_unit`` forces one), or a Parquet
  timestamp / date. See :mod:`.timestamps`.
- **Sessions.** A non-blank ``session_id`` is kept. Without the column (or where it is blank) the
  reader leaves ``session_id`` null: the examples stage (``tokenization/examples.py``) splits those
  events into sessions at the inactivity gap (``session_gap_minutes``, default 30). The reader
  cannot do it itself because a user's events may be spread over several batches.

- **Segments.** The segment values are labels (text or integers, trimmed); they are coded as integers
  0, 1, 2, ... in order of first appearance in the log (the same log always gives the same codes;
  the codes are logged and kept in ``segment_codes``). A user's segment is the one on its first event.
  A row without a segment is a bad row ("missing segment").

User and session ids are trimmed of surrounding whitespace (``' u000 '`` is user ``u000``). Rows with
a blank ``user_id`` or ``page``, a null-like page text (``NaN``, ``null``, ``None``, ...), a page holding
control or zero-width characters or longer than ``max_page_length``, a missing or unparsable
``timestamp``, a wrong number of fields, a malformed JSON line or invalid UTF-8 raise a DataFormatError naming file,
row and field, or are skipped and counted with ``on_bad_rows="skip"``. A missing column, a column of a
wrong type (e.g. a float or a list as ``user_id``) and an empty file are always errors.

Example:
    >>> reader = EventLogReader("tests/fixtures/events_sample.csv", batch_size=1000)
    >>> table = pa.Table.from_batches(list(reader.batches("error", {})))
    >>> table.column_names
    ['user_id', 'session_id', 'timestamp', 'page']
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pa_json
import pyarrow.parquet as pq

from ..constants import EVENT_SCHEMA, SEGMENT_FIELD
from ..errors import DataFormatError
from .bad_rows import ROW_COLUMN, BadRowPolicy, Check
from .columns import DEFAULT_MAX_PAGE_LENGTH, blank_to_null, is_blank, page_checks, text_column
from .csv_source import csv_tables, read_csv_header
from .files import base_suffix, block_bytes_for, require_columns, source_files
from .json_lines import first_json_record, ndjson_tables
from .options import check_choice
from .timestamps import TIMESTAMP_UNITS, is_supported_timestamp_type, parse_timestamps

FILE_FORMATS: dict[str, tuple[str, ...]] = {
    "csv": (".csv",),
    "parquet": (".parquet", ".pq"),
    "jsonl": (".jsonl", ".ndjson", ".json"),
}
_BYTES_PER_ROW = 64
_SEGMENT_LABEL = "__segment_label"
logger = logging.getLogger(__name__)


class EventLogReader:
    """Streams a generic event log (file, folder or glob) as batches in EVENT_SCHEMA.

    Args:
        source: The file(s).
        batch_size: At most this many rows per batch (Parquet); CSV / JSON blocks are sized from it.
        file_format: "csv", "parquet" or "jsonl"; None picks by extension.
        user_column, session_column, timestamp_column, page_column: The column names in the file.
        timestamp_unit: "auto" (default), "s", "ms", "us" or "ns" for numeric timestamps.
        max_page_length: Pages longer than this many characters are bad rows (default 1000).
        segment_column: The column of known user segments (None: no segments); see the module docstring.
    """

    def __init__(
        self,
        source: str | Path,
        *,
        batch_size: int,
        file_format: str | None = None,
        user_column: str = "user_id",
        session_column: str = "session_id",
        timestamp_column: str = "timestamp",
        page_column: str = "page",
        timestamp_unit: str = "auto",
        max_page_length: int = DEFAULT_MAX_PAGE_LENGTH,
        segment_column: str | None = None,
    ):
        if file_format is not None and file_format not in FILE_FORMATS:
            raise DataFormatError(
                f"unknown file format {file_format!r} (expected one of {', '.join(FILE_FORMATS)})", file=str(source)
            )
        extensions = FILE_FORMATS[file_format] if file_format else sum(FILE_FORMATS.values(), ())
        self.files = source_files(source, extensions)
        self.formats = [file_format or _format_of(path) for path in self.files]
        self._set_columns(
            user_column, session_column, timestamp_column, page_column, timestamp_unit, max_page_length, segment_column
        )
        self.batch_size = batch_size
        self.block_bytes = block_bytes_for(batch_size, _BYTES_PER_ROW)
        for path, file_format in zip(self.files, self.formats):
            if file_format == "csv":
                require_columns(path, read_csv_header(path), self.required, "an event log")
            elif file_format == "parquet":
                require_columns(path, _parquet_file(path).schema_arrow.names, self.required, "an event log")
            else:
                require_columns(path, list(first_json_record(path)), self.required, "an event log (first line)")

    def _set_columns(
        self,
        user_column: str,
        session_column: str,
        timestamp_column: str,
        page_column: str,
        timestamp_unit: str,
        max_page_length: int,
        segment_column: str | None,
    ) -> None:
        self.columns = {
            "user_id": user_column,
            "session_id": session_column,
            "timestamp": timestamp_column,
            "page": page_column,
        }
        self.required = [user_column, timestamp_column, page_column]
        if segment_column is not None:
            self.columns["segment"] = segment_column
            self.required.append(segment_column)
        self.schema = EVENT_SCHEMA.append(SEGMENT_FIELD) if segment_column is not None else EVENT_SCHEMA
        # Segment label -> code, in order of first appearance (kept across batches and re-reads).
        self.segment_codes: dict[str, int] = {}
        self.timestamp_unit = check_choice("timestamp_unit", timestamp_unit, TIMESTAMP_UNITS)
        self.max_page_length = max_page_length

    def batches(self, on_bad_rows: str, report: dict[str, int]) -> Iterator[pa.RecordBatch]:
        """Yield record batches in EVENT_SCHEMA, file after file, adding skip counts to ``report``."""
        for path, file_format in zip(self.files, self.formats):
            policy = BadRowPolicy(str(path), on_bad_rows, report)
            for table in self._tables(path, file_format, policy):
                # A JSON block whose lines all lack a field: its rows fail the row checks.
                for name in self.required:
                    if name not in table.column_names:
                        table = table.append_column(name, pa.nulls(table.num_rows, pa.string()))
                events = self._events(table, policy)
                if events.num_rows:
                    yield from events.to_batches()
            policy.finish()

    def _tables(self, path: Path, file_format: str, policy: BadRowPolicy) -> Iterator[pa.Table]:
        if file_format == "csv":
            present = [name for name in self.columns.values() if name in read_csv_header(path)]
            yield from csv_tables(path, present, policy, self.block_bytes)
        elif file_format == "parquet":
            yield from self._parquet_tables(path)
        else:
            options = pa_json.ParseOptions(newlines_in_values=False)
            yield from ndjson_tables(path, policy, self.block_bytes, options, self._normalize_record)

    def _parquet_tables(self, path: Path) -> Iterator[pa.Table]:
        parquet = _parquet_file(path)
        present = [name for name in self.columns.values() if name in parquet.schema_arrow.names]
        first_row = 1
        try:
            for batch in parquet.iter_batches(batch_size=self.batch_size, columns=present):
                rows = pa.array(np.arange(first_row, first_row + batch.num_rows, dtype=np.int64))
                first_row += batch.num_rows
                yield pa.Table.from_batches([batch]).append_column(ROW_COLUMN, rows)
        except (pa.ArrowException, OSError) as error:
            raise DataFormatError(f"cannot read Parquet data: {error}", file=str(path), row=first_row) from None
        if first_row == 1:
            raise DataFormatError("no data rows", file=str(path))

    def _normalize_record(self, record: dict) -> dict:
        """One JSON line with the used fields as text, for blocks pyarrow.json rejects (mixed types)."""
        normalized = {}
        for name in self.columns.values():
            value = record.get(name)
            accepted = (str, int, float) if name == self.columns["timestamp"] else (str, int)
            if value is not None and (isinstance(value, bool) or not isinstance(value, accepted)):
                raise ValueError(f"{name}: wrong type {type(value).__name__}")
            normalized[name] = None if value is None else str(value)
        return normalized

    def _events(self, table: pa.Table, policy: BadRowPolicy) -> pa.Table:
        file, names = policy.file, self.columns
        user = pc.utf8_trim_whitespace(text_column(table.column(names["user_id"]), names["user_id"], file))
        page = text_column(table.column(names["page"]), names["page"], file)
        if names["session_id"] in table.column_names:
            session_ids = text_column(table.column(names["session_id"]), names["session_id"], file)
            session = blank_to_null(pc.utf8_trim_whitespace(session_ids))
        else:
            session = pa.nulls(table.num_rows, pa.string())
        raw_time = table.column(names["timestamp"]).combine_chunks()
        if not is_supported_timestamp_type(raw_time.type):
            raise DataFormatError(
                f"wrong type {raw_time.type} (expected ISO-8601 text, epoch numbers or timestamps)",
                file=file,
                field=names["timestamp"],
            )
        timestamps = parse_timestamps(raw_time, self.timestamp_unit)
        events = pa.table(
            [user, session, timestamps, page, table.column(ROW_COLUMN)], names=[*EVENT_SCHEMA.names, ROW_COLUMN]
        )
        checks = []
        if "segment" in names:
            segment = pc.utf8_trim_whitespace(text_column(table.column(names["segment"]), names["segment"], file))
            events = events.append_column(_SEGMENT_LABEL, segment)
            checks.append(Check(is_blank(segment), "missing segment", names["segment"]))
        events = policy.reject(
            events,
            Check(is_blank(user), "missing user_id", names["user_id"]),
            *page_checks(page, names["page"], self.max_page_length),
            Check(raw_time.is_null(), "missing timestamp", names["timestamp"]),
            Check(timestamps.is_null(), "unparsable timestamp", names["timestamp"], raw_time),
            *checks,
        )
        if "segment" in names:
            events = events.append_column("segment", self._segment_codes(events.column(_SEGMENT_LABEL)))
        return events.select(self.schema.names).cast(self.schema)

    def _segment_codes(self, labels: pa.ChunkedArray) -> pa.Array:
        """The code of each segment label; labels not seen before get the next codes, in order of appearance."""
        new = [label for label in pc.unique(labels).to_pylist() if label not in self.segment_codes]
        for label in new:
            self.segment_codes[label] = len(self.segment_codes)
        if new:
            logger.info("segment codes (label: code): %s", self.segment_codes)
        return pc.index_in(labels, value_set=pa.array(list(self.segment_codes), pa.string())).cast(pa.int32())


def _format_of(path: Path) -> str:
    suffix = base_suffix(path)
    for name, suffixes in FILE_FORMATS.items():
        if suffix in suffixes:
            return name
    known = ", ".join(sum(FILE_FORMATS.values(), ()))
    raise DataFormatError(
        f"unknown file type {suffix or '(no extension)'!r}: expected {known}, "
        "or pass file_format / format csv, parquet or jsonl",
        file=str(path),
    )


def _parquet_file(path: Path) -> pq.ParquetFile:
    if path.stat().st_size == 0:
        raise DataFormatError("empty file", file=str(path))
    try:
        return pq.ParquetFile(str(path))
    except (pa.ArrowException, OSError) as error:
        raise DataFormatError(f"not a readable Parquet file: {error}", file=str(path)) from None
