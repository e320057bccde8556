"""Browsing-log readers: every source streamed as Arrow record batches in one event schema.

``read_events(source, format)`` returns an :class:`EventStream`: an iterable of
``pyarrow.RecordBatch`` in ``EVENT_SCHEMA`` (``user_id, session_id, timestamp, page``; the
simulator adds ``segment``), with ``.report`` (rows skipped or ignored, by reason, filled while
iterating) and ``.synthetic``.

Formats (one module each):

- ``"events"`` (:mod:`.events`): a generic event log, CSV / Parquet / JSON lines by extension;
  ``"csv"``, ``"parquet"``, ``"jsonl"`` force the file format. Options: ``user_column``,
  ``session_column``, ``timestamp_column``, ``page_column``, ``timestamp_unit``, ``segment_column`` (known
  user segments, scored like the simulator's with ARI / NMI). Without a
  session column ``session_id`` is null and the examples stage splits sessions at
  ``session_gap_minutes``.
- ``"ga360"`` (:mod:`.ga360`): Google Analytics 360 ``ga_sessions_*`` JSON-lines exports.
- ``"rees46"`` (:mod:`.rees46`): the REES46 multi-category store CSV. Options: ``granularity``
  ("product", "category", "both"), ``category_memory_hours``.
- ``"simulator"``: the built-in, SYNTHETIC browsing simulator (:mod:`tokenization.simulator`);
  ``source`` is ignored and the options are ``SimulatorConfig`` fields.
- An in-memory table (a pandas ``DataFrame``, a pyarrow ``Table``, a ``datasets.Dataset``) as ``source``
  with format ``"events"`` (:mod:`.in_memory`): the generic event schema, options and checks.

A source is a file, a folder or a glob pattern; ``.gz`` / ``.bz2`` / ``.zst`` files are read
compressed. Nothing is loaded whole: memory stays flat as the input grows.

Bad input (a missing column, a wrong type, an unparsable timestamp, an empty file, a non-UTF-8
byte, an unknown format) raises :class:`tokenization.errors.DataFormatError` naming the file, the
row (the line number in text files, a CSV header being line 1; the row index in Parquet) and the
field. Row-level problems are skipped instead with ``on_bad_rows="skip"``: each skipped row is
counted in ``.report`` by reason and logged with ``logging.warning``. A missing column, a wrong
column type and an empty file are always errors.

Example:
    >>> stream = read_events("tests/fixtures/rees46_sample.csv", "rees46")
    >>> sum(batch.num_rows for batch in stream)
    12
    >>> stream.report
    {'remove_from_cart ignored': 1}
    >>> stream.synthetic
    False
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa

from ..constants import EVENT_SCHEMA, SEGMENT_FIELD
from ..errors import DataFormatError
from .bad_rows import ON_BAD_ROWS_CHOICES
from .events import FILE_FORMATS, EventLogReader
from .ga360 import GA360Reader
from .in_memory import InMemoryEventReader, is_in_memory_table
from .options import check_choice
from .rees46 import Rees46Reader

FORMATS = ("events", *FILE_FORMATS, "ga360", "rees46", "simulator")

_READERS = {"events": EventLogReader, "ga360": GA360Reader, "rees46": Rees46Reader}

BatchSource = Callable[[str, dict[str, int]], Iterator[pa.RecordBatch]]


class EventStream:
    """Event batches of one source, with the counts of skipped rows.

    Iterating reads the source from the start (again, if iterated twice) and refills ``report``.

    Attributes:
        source: What was read.
        format: The format name.
        schema: The schema of the batches (``EVENT_SCHEMA``, plus ``segment`` for the simulator and a
            generic log read with ``segment_column``).
        synthetic: True for simulator data; every output built from it must say so.
        report: Rows skipped (``on_bad_rows="skip"``) or deliberately ignored, by reason.
        session_gap_minutes: The inactivity gap the examples stage splits null sessions at.
        segment_codes: For a generic log read with ``segment_column``: each segment label's code (filled
            while iterating), else empty.

    Example:
        >>> stream = read_events("simulator", "simulator", num_users=20, seed=3)
        >>> stream.synthetic, stream.schema.names[-1]
        (True, 'segment')
    """

    def __init__(
        self,
        batches: BatchSource,
        *,
        source: str,
        format: str,
        on_bad_rows: str,
        batch_size: int,
        session_gap_minutes: float,
        schema: pa.Schema = EVENT_SCHEMA,
        synthetic: bool = False,
        segment_codes: dict[str, int] | None = None,
    ):
        self._batches = batches
        self.source = source
        self.format = format
        self.on_bad_rows = on_bad_rows
        self.batch_size = batch_size
        self.session_gap_minutes = session_gap_minutes
        self.schema = schema
        self.synthetic = synthetic
        self.segment_codes = segment_codes if segment_codes is not None else {}
        self.report: dict[str, int] = {}

    def __iter__(self) -> Iterator[pa.RecordBatch]:
        self.report.clear()
        try:
            for batch in self._batches(self.on_bad_rows, self.report):
                for offset in range(0, batch.num_rows, self.batch_size):
                    yield batch.slice(offset, self.batch_size)
        except (pa.ArrowException, OSError) as error:
            # Whatever a reader did not foresee still reaches the user as one clear line.
            message = str(error).splitlines()[0] if str(error) else type(error).__name__
            raise DataFormatError(f"cannot read as {self.format!r}: {message}", file=self.source) from None

    def __repr__(self) -> str:
        return f"EventStream(source={self.source!r}, format={self.format!r}, synthetic={self.synthetic})"


def read_events(
    source: str | Path | Any,
    format: str,
    *,
    session_gap_minutes: float = 30,
    on_bad_rows: str = "error",
    batch_size: int = 1_000_000,
    **format_options,
) -> EventStream:
    """Open a browsing log as an :class:`EventStream` (see the module docstring for the formats).

    Files, columns and options are checked here, so a wrong path, a missing column or an
    unknown option fails at once; rows are checked while iterating.

    Args:
        source: File, folder or glob pattern ("simulator" or anything for the simulator), or an in-memory
            table (pandas DataFrame, pyarrow Table / RecordBatch, ``datasets.Dataset``) for format "events".
        format: One of ``FORMATS``.
        session_gap_minutes: Inactivity gap for events without a session id (applied downstream).
        on_bad_rows: "error" (default) or "skip" (skip, count in ``.report`` and log).
        batch_size: At most this many rows per batch (text files are read in blocks of at most
            16 MiB, about 130,000 REES46 rows, so their batches are often smaller).
        **format_options: Options of the format's reader (or ``SimulatorConfig`` fields).

    Example:
        >>> stream = read_events("tests/fixtures/events_sample.csv", "events", on_bad_rows="skip")
        >>> next(iter(stream)).schema.names
        ['user_id', 'session_id', 'timestamp', 'page']
        >>> read_events("log.xml", "xml")  # doctest: +NORMALIZE_WHITESPACE
        Traceback (most recent call last):
        ...
        tokenization.errors.DataFormatError: log.xml: unknown format 'xml'
            (expected one of events, csv, parquet, jsonl, ga360, rees46, simulator)
    """
    in_memory = is_in_memory_table(source)
    if in_memory and format != "events":
        raise DataFormatError(
            f"an in-memory table is read in the generic event schema: use format 'events', not {format!r}"
        )
    if not in_memory and not isinstance(source, (str, Path)):
        raise DataFormatError(
            f"cannot read a {type(source).__name__}: a source is a path (file, folder or glob), "
            "'simulator', or an in-memory table (pandas DataFrame, pyarrow Table, datasets.Dataset)"
        )
    if format not in FORMATS:
        raise DataFormatError(f"unknown format {format!r} (expected one of {', '.join(FORMATS)})", file=source)
    check_choice("on_bad_rows", on_bad_rows, ON_BAD_ROWS_CHOICES)
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    if session_gap_minutes <= 0:
        raise ValueError(f"session_gap_minutes must be positive, got {session_gap_minutes}")
    common = dict(
        source="" if in_memory else str(source),
        format=format,
        on_bad_rows=on_bad_rows,
        batch_size=batch_size,
        session_gap_minutes=session_gap_minutes,
    )
    if format == "simulator":
        return EventStream(
            _simulator_batches(format_options, batch_size),
            schema=EVENT_SCHEMA.append(SEGMENT_FIELD),
            synthetic=True,
            **common,
        )
    _check_options(format, format_options)
    if in_memory:
        reader = InMemoryEventReader(source, batch_size=batch_size, **format_options)
        return EventStream(
            reader.batches,
            schema=reader.schema,
            segment_codes=reader.segment_codes,
            **{**common, "source": reader.source},
        )
    if format in FILE_FORMATS:
        format_options = {**format_options, "file_format": format}
    reader = _READERS.get(format, EventLogReader)(source, batch_size=batch_size, **format_options)
    if isinstance(reader, EventLogReader):
        return EventStream(reader.batches, schema=reader.schema, segment_codes=reader.segment_codes, **common)
    return EventStream(reader.batches, **common)


def _simulator_batches(options: dict, batch_size: int) -> BatchSource:
    from ..simulator import SimulatorConfig, simulate_events  # imported lazily: only the simulator needs it

    _check_options("simulator", options)
    config = SimulatorConfig(**options)

    def batches(on_bad_rows: str, report: dict[str, int]) -> Iterator[pa.RecordBatch]:
        yield from simulate_events(config).to_batches(max_chunksize=batch_size)

    return batches


def format_options(format: str) -> tuple[str, ...]:
    """The names of the options a format accepts (for command lines and error messages).

    Example:
        >>> format_options("rees46")
        ('granularity', 'category_memory_hours')
    """
    if format not in FORMATS:
        raise DataFormatError(f"unknown format {format!r} (expected one of {', '.join(FORMATS)})")
    if format == "simulator":
        from ..simulator import SimulatorConfig

        target = SimulatorConfig
    else:
        target = _READERS.get(format, EventLogReader)
    hidden = ("self", "source", "batch_size") + (("file_format",) if format in FILE_FORMATS else ())
    return tuple(name for name in inspect.signature(target).parameters if name not in hidden)


def _check_options(format: str, options: dict) -> None:
    accepted = format_options(format)
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise ValueError(
            f"format {format!r} has no option {', '.join(map(repr, unknown))} "
            f"(options: {', '.join(accepted) or 'none'})"
        )
