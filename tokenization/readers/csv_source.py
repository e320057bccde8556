"""Streaming CSV: the header, then tables of text columns, one block of whole lines at a time.

Every table yielded carries the hidden ``__row`` column (see :mod:`.bad_rows`): the line each
record starts on (the header is line 1). Blocks are cut at record boundaries
(:mod:`.csv_records`), so a quoted value holding a newline is one record, CR-only line endings are
read, and an unbalanced or stray quote costs one bad line, not the file.

Example:
    >>> read_csv_header(Path("tests/fixtures/rees46_sample.csv"))[:2]  # doctest: +SKIP
    ['event_time', 'event_type']
"""

from __future__ import annotations

import csv
import io
from collections import deque
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv

from ..errors import DataFormatError
from .bad_rows import ROW_COLUMN, SKIP_HINT, BadRowPolicy, Check
from .csv_records import csv_record_blocks, normalize_line_endings, record_ends, record_start_lines
from .files import arrow_message, is_utf8, open_input, read_bytes

_HEADER_PROBE_BYTES = 1 << 16


def read_csv_header(path: Path) -> list[str]:
    """The column names on the first line of a CSV file.

    Example:
        >>> read_csv_header(Path("tests/fixtures/rees46_sample.csv"))[:2]  # doctest: +SKIP
        ['event_time', 'event_type']
    """
    with open_input(path) as stream:
        head = read_bytes(stream, _HEADER_PROBE_BYTES, path)
    first_line = normalize_line_endings(head).split(b"\n", 1)[0].removeprefix(b"\xef\xbb\xbf")
    if not first_line.strip():
        raise DataFormatError("empty file (no header line)", file=str(path), row=1)
    try:
        text = first_line.decode("utf-8")
    except UnicodeDecodeError as error:
        raise DataFormatError(
            f"invalid UTF-8 byte in the header at column {error.start + 1}", file=str(path), row=1
        ) from None
    return next(csv.reader([text]))


def csv_tables(path: Path, columns: Sequence[str], policy: BadRowPolicy, block_bytes: int) -> Iterator[pa.Table]:
    """Stream the given columns of a CSV file as tables of UTF-8 strings plus ``__row``.

    The file is cut into blocks of whole lines, each parsed by ``pyarrow.csv.read_csv`` (threads
    inside a block). Unlike ``pyarrow.csv.open_csv``, which reads ahead as fast as it can (a whole
    640 MB file before the first batch is used, measured), only one block is in memory at a time.
    All values are read as text (ids keep leading zeros and never overflow). A line with the wrong
    number of fields or an invalid UTF-8 byte goes through ``policy``. A block holding a record over several
    lines or a byte that is not UTF-8 is parsed record by record (:func:`_parse_record_by_record`), so a stray
    quote costs only its own line.

    Example:
        >>> tables = csv_tables(Path("events.csv"), ["user_id", "page"], policy, 1 << 24)  # doctest: +SKIP
    """
    names = read_csv_header(path)
    wrong_lines: list[pa_csv.InvalidRow] = []

    def on_invalid_row(row: pa_csv.InvalidRow) -> str:
        wrong_lines.append(row)
        return "skip" if policy.skip else "error"

    options = dict(
        read_options=pa_csv.ReadOptions(column_names=names, use_threads=True),
        parse_options=pa_csv.ParseOptions(invalid_row_handler=on_invalid_row, newlines_in_values=True),
        convert_options=pa_csv.ConvertOptions(
            include_columns=list(columns), column_types={c: pa.binary() for c in columns}
        ),
    )

    def on_unbalanced(line: int) -> None:
        policy.reject_line("unbalanced quote", row=line, detail=": a quoted value never closes")

    records = 0
    for block, line_numbers in csv_record_blocks(path, block_bytes, on_unbalanced):
        if line_numbers.size and line_numbers[0] == 1:  # the header
            header_end = _first_record_end(block)
            block, line_numbers = block[header_end:], line_numbers[1:]
        if not line_numbers.size:
            continue
        wrong_lines.clear()
        if block.count(b"\n") != len(line_numbers) or not is_utf8(block):
            # A record over several lines may be a quoted newline or a stray quote that pyarrow's lenient parse
            # reads differently from the record splitter, and pyarrow cannot report a line with the wrong field
            # count that is not UTF-8 (its handler fails): such blocks are parsed record by record.
            table, line_numbers = _parse_record_by_record(block, line_numbers, names, columns, policy)
        else:
            try:
                table = pa_csv.read_csv(pa.py_buffer(block), **options)
            except pa.ArrowInvalid as error:
                if not policy.skip:
                    if wrong_lines:
                        row = wrong_lines[0]
                        raise policy.error(
                            f"wrong number of fields: expected {row.expected_columns}, found {row.actual_columns}"
                            f"{SKIP_HINT}",
                            row=_line_number_in(block, line_numbers, row.text),
                        ) from None
                    raise policy.error(
                        f"cannot parse as CSV: {arrow_message(error)}", row=int(line_numbers[0])
                    ) from None
                table = None
            kept_lines = line_numbers
            if table is not None and wrong_lines:  # skipped: drop their line numbers so the kept rows keep theirs
                skipped = [_record_index(block, row.text) for row in wrong_lines]
                kept_lines = np.delete(line_numbers, [index for index in skipped if index is not None])
            if table is None or len(kept_lines) != table.num_rows:
                if not policy.skip:
                    raise policy.error(
                        f"cannot match {table.num_rows} parsed records to their lines", row=int(line_numbers[0])
                    )
                # pyarrow and the record splitter disagree (a stray quote inside a value): record by record.
                table, line_numbers = _parse_record_by_record(block, line_numbers, names, columns, policy)
            else:
                for row in wrong_lines:
                    detail = f": expected {row.expected_columns}, found {row.actual_columns}"
                    policy.reject_line("wrong number of fields", row=None, detail=detail)
                line_numbers = kept_lines
        if table.num_rows == 0:
            continue
        records += table.num_rows
        # One batch per block: read_csv returns ~1 MB chunks, too small for the stages after it.
        table = table.combine_chunks().append_column(ROW_COLUMN, pa.array(line_numbers))
        yield decode_utf8(table, columns, policy)
    if records == 0 and not policy.counts:
        raise DataFormatError("no data rows (the file has only a header)", file=str(path))


def _records(block: bytes) -> list[bytes]:
    """The non-blank records of a block of whole records, without their line ending."""
    ends = record_ends(np.frombuffer(block, dtype=np.uint8))
    starts = [0, *(int(end) + 1 for end in ends[:-1])]
    records = [block[start : int(end)] for start, end in zip(starts, ends)]
    return [record for record in records if record]


def _parse_record_by_record(
    block: bytes, line_numbers: np.ndarray, names: Sequence[str], columns: Sequence[str], policy: BadRowPolicy
) -> tuple[pa.Table, np.ndarray]:
    """Parse each record of ``block`` alone with Python's strict CSV reader (slower; for blocks the one-pass
    parse may get wrong): a record that is exactly one row of the right width is kept; a multi-line record
    that is not (a stray quote joined lines) costs its first line ("unbalanced quote") and its other lines
    are split again; any other record is a bad line ("wrong number of fields"). Values stay bytes (invalid
    UTF-8 is judged later). Returns the kept rows (``columns``) and their line numbers."""
    pending = deque(zip(_records(block), line_numbers.tolist()))
    index = [names.index(name) for name in columns]
    values: list[list[bytes]] = [[] for _ in columns]
    kept_lines = []
    while pending:
        record, line = pending.popleft()
        try:
            rows = list(csv.reader(io.StringIO(record.decode("utf-8", "surrogateescape"), newline=""), strict=True))
        except csv.Error:
            rows = []
        if len(rows) == 1 and len(rows[0]) == len(names):
            for target, position in zip(values, index):
                target.append(rows[0][position].encode("utf-8", "surrogateescape"))
            kept_lines.append(line)
        elif b"\n" in record:
            policy.reject_line("unbalanced quote", row=line, detail=": a quote opens a value that never closes")
            rest = record.split(b"\n", 1)[1] + b"\n"
            ends = record_ends(np.frombuffer(rest, dtype=np.uint8))
            whole = int(ends[-1]) + 1 if len(ends) else 0  # the rest's complete records, then an open tail
            again = []
            if whole:
                again = list(zip(_records(rest[:whole]), record_start_lines(rest[:whole], line + 1).tolist()))
            tail = rest[whole:].rstrip(b"\n")
            if tail:
                again.append((tail, line + 1 + rest[:whole].count(b"\n")))
            pending.extendleft(reversed(again))
        else:
            found = len(rows[0]) if len(rows) == 1 else "a malformed quote"
            policy.reject_line("wrong number of fields", row=line, detail=f": expected {len(names)}, found {found}")
    table = pa.table({name: pa.array(column, pa.binary()) for name, column in zip(columns, values)})
    return table, np.asarray(kept_lines, dtype=np.int64)


def _first_record_end(block: bytes) -> int:
    return int(record_ends(np.frombuffer(block, dtype=np.uint8))[0]) + 1


def _record_index(block: bytes, text: str) -> int | None:
    """Index, among the block's non-blank records, of the record whose text is ``text``."""
    wanted = text.encode()
    return next((index for index, record in enumerate(_records(block)) if record == wanted), None)


def _line_number_in(block: bytes, line_numbers: np.ndarray, text: str) -> int | None:
    """The line a record equal to ``text`` starts on (the multithreaded parser does not number bad rows)."""
    index = _record_index(block, text)
    return None if index is None else int(line_numbers[index])


def decode_utf8(table: pa.Table, columns: Sequence[str], policy: BadRowPolicy) -> pa.Table:
    """Turn binary columns into strings; a row with an invalid UTF-8 byte goes through ``policy``.

    Example:
        >>> table = pa.table({"page": [b"caf\\xc3\\xa9"], "__row": [2]})  # doctest: +SKIP
        >>> decode_utf8(table, ["page"], policy).column("page")[0].as_py()  # doctest: +SKIP
        'café'
    """
    for name in columns:
        values = table.column(name)
        try:
            decoded = values.cast(pa.string())
        except pa.ArrowInvalid:
            bad = [value is not None and not is_utf8(value) for value in values.to_pylist()]
            table = policy.reject(table, Check(bad, "invalid UTF-8", name))
            decoded = table.column(name).cast(pa.string())
        table = table.set_column(table.schema.get_field_index(name), name, decoded)
    return table
