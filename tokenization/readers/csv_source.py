"""Streaming CSV: the header, then tables of text columns, one block of whole lines at a time.

Every table yielded carries the hidden ``__row`` column (see :mod:`.bad_rows`): the line number
of each record (the header is line 1). Lines are counted as physical lines, so a value with an
embedded newline, or a skipped malformed line, shifts the numbers after it.

Example:
    >>> read_csv_header(Path("tests/fixtures/rees46_sample.csv"))[:2]  # doctest: +SKIP
    ['event_time', 'event_type']
"""

from __future__ import annotations

import csv
from collections.abc import Iterator, Sequence
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pa_csv

from ..errors import DataFormatError
from .bad_rows import ROW_COLUMN, SKIP_HINT, BadRowPolicy, Check
from .files import arrow_message, is_utf8, line_blocks, open_input, read_bytes, record_line_numbers

_HEADER_PROBE_BYTES = 1 << 16


def read_csv_header(path: Path) -> list[str]:
    """The column names on the first line of a CSV file.

    Example:
        >>> read_csv_header(Path("tests/fixtures/rees46_sample.csv"))[:2]  # doctest: +SKIP
        ['event_time', 'event_type']
    """
    with open_input(path) as stream:
        head = read_bytes(stream, _HEADER_PROBE_BYTES, path)
    first_line = head.split(b"\n", 1)[0].rstrip(b"\r").removeprefix(b"\xef\xbb\xbf")
    if not first_line.strip():
        raise DataFormatError("empty file (no header line)", file=str(path), row=1)
    try:
        text = first_line.decode("utf-8")
    except UnicodeDecodeError as error:
        raise DataFormatError(f"invalid UTF-8 byte in the header at column {error.start + 1}", file=str(path), row=1) from None
    return next(csv.reader([text]))


def csv_tables(path: Path, columns: Sequence[str], policy: BadRowPolicy, block_bytes: int) -> Iterator[pa.Table]:
    """Stream the given columns of a CSV file as tables of UTF-8 strings plus ``__row``.

    The file is cut into blocks of whole lines, each parsed by ``pyarrow.csv.read_csv`` (threads
    inside a block). Unlike ``pyarrow.csv.open_csv``, which reads ahead as fast as it can (a whole
    640 MB file before the first batch is used, measured), only one block is in memory at a time.
    All values are read as text (ids keep leading zeros and never overflow). A line with the wrong
    number of fields or an invalid UTF-8 byte goes through ``policy``.

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
        parse_options=pa_csv.ParseOptions(invalid_row_handler=on_invalid_row),
        convert_options=pa_csv.ConvertOptions(include_columns=list(columns), column_types={c: pa.binary() for c in columns}),
    )
    first_line, records = 1, 0
    for block in line_blocks(path, block_bytes):
        if first_line == 1:  # the header
            header_end = block.index(b"\n") + 1
            block, first_line = block[header_end:], 2
        try:
            table = pa_csv.read_csv(pa.py_buffer(block), **options) if block.strip() else None
        except pa.ArrowInvalid as error:
            if wrong_lines:
                row = wrong_lines[0]
                raise policy.error(
                    f"wrong number of fields: expected {row.expected_columns}, found {row.actual_columns}{SKIP_HINT}",
                    row=_line_number_in(block, first_line, row.text),
                ) from None
            raise policy.error(f"cannot parse as CSV: {arrow_message(error)}", row=first_line) from None
        line_numbers = record_line_numbers(block, first_line, whitespace_is_blank=False)
        if wrong_lines:  # skipped: their numbers are not needed, only their count
            for row in wrong_lines:
                policy.reject_line("wrong number of fields", row=None, detail=f": expected {row.expected_columns}, found {row.actual_columns}")
            wrong_lines.clear()
            line_numbers = line_numbers[: 0 if table is None else table.num_rows]
        first_line += block.count(b"\n")
        if table is None or table.num_rows == 0:
            continue
        records += table.num_rows
        # One batch per block: read_csv returns ~1 MB chunks, too small for the stages after it.
        table = table.combine_chunks().append_column(ROW_COLUMN, pa.array(line_numbers))
        yield decode_utf8(table, columns, policy)
    if records == 0 and not policy.counts:
        raise DataFormatError("no data rows (the file has only a header)", file=str(path))


def _line_number_in(block: bytes, first_line: int, text: str) -> int | None:
    """The line of ``block`` equal to ``text`` (the multithreaded parser does not number bad rows)."""
    wanted = text.encode()
    for offset, line in enumerate(block.split(b"\n")):
        if line.rstrip(b"\r") == wanted:
            return first_line + offset
    return None


def decode_utf8(table: pa.Table, columns: Sequence[str], policy: BadRowPolicy) -> pa.Table:
    """Turn binary columns into strings; a row with an invalid UTF-8 byte goes through ``policy``.

    Example:
        >>> decode_utf8(pa.table({"page": [b"caf\\xc3\\xa9"], "__row": [2]}), ["page"], policy).column("page")[0].as_py()  # doctest: +SKIP
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
