"""Streaming newline-delimited JSON in blocks of lines, parsed by ``pyarrow.json``.

Every table yielded carries the hidden ``__row`` column (see :mod:`.bad_rows`): the line number
of each record; blank lines are skipped but counted.

Example:
    >>> sorted(first_json_record(Path("tests/fixtures/events_sample.jsonl")))[:2]  # doctest: +SKIP
    ['page', 'referrer']
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.json as pa_json

from ..errors import DataFormatError
from .bad_rows import ROW_COLUMN, BadRowPolicy
from .files import arrow_message, is_utf8, line_blocks, record_line_numbers


def ndjson_tables(
    path: Path,
    policy: BadRowPolicy,
    block_bytes: int,
    parse_options: pa_json.ParseOptions,
    normalize_record: Callable[[dict], dict],
) -> Iterator[pa.Table]:
    """Stream a newline-delimited JSON file as tables (one row per non-blank line) plus ``__row``.

    Each block is parsed by ``pyarrow.json``. A block that does not parse is re-read line by line:
    lines that are not valid JSON objects, or that ``normalize_record`` rejects (by raising
    ``ValueError("field: reason")``), go through ``policy``; the others are rewritten as
    ``normalize_record`` returns them (e.g. numbers turned into the strings the schema expects)
    and parsed again. Invalid UTF-8 is caught before parsing (pyarrow would silently replace it).

    Example:
        >>> tables = ndjson_tables(Path("ga_sessions_20170801.json"), policy, 1 << 24, options, dict)  # doctest: +SKIP
    """
    first_line = 1
    for block in line_blocks(path, block_bytes):
        block = _drop_invalid_utf8(block, first_line, policy)
        starts = record_line_numbers(block, first_line, whitespace_is_blank=True)
        try:
            table = pa_json.read_json(io.BytesIO(block), parse_options=parse_options)
        except pa.ArrowInvalid:
            block = _rewrite_block(block, first_line, policy, normalize_record)
            starts = record_line_numbers(block, first_line, whitespace_is_blank=True)
            try:
                table = pa_json.read_json(io.BytesIO(block), parse_options=parse_options) if len(starts) else None
            except pa.ArrowInvalid as error:
                raise policy.error(f"cannot parse as JSON lines: {arrow_message(error)}", row=first_line) from None
        first_line += block.count(b"\n")
        if table is None or table.num_rows == 0:
            continue
        yield table.append_column(ROW_COLUMN, pa.array(starts[: table.num_rows]))


def first_json_record(path: Path) -> dict:
    """The first line of a JSON-lines file that is a JSON object (to check its fields up front).

    Blank and malformed lines before it are passed over here: reading the file reports them.

    Example:
        >>> sorted(first_json_record(Path("tests/fixtures/events_sample.jsonl")))[:2]  # doctest: +SKIP
        ['page', 'referrer']
    """
    for block in line_blocks(path, 1 << 20):
        for line in block[:-1].split(b"\n"):
            try:
                record = json.loads(line) if line.strip() else None
            except ValueError:
                continue
            if isinstance(record, dict):
                return record
    raise DataFormatError("no line is a JSON object (empty or not JSON lines)", file=str(path))


def _drop_invalid_utf8(block: bytes, first_line: int, policy: BadRowPolicy) -> bytes:
    try:
        block.decode("utf-8")
        return block
    except UnicodeDecodeError:
        pass
    lines = block.split(b"\n")
    for i, line in enumerate(lines):
        if not is_utf8(line):
            policy.reject_line("invalid UTF-8", row=first_line + i)
            lines[i] = b""  # a blank line keeps the numbering of the lines after it
    return b"\n".join(lines)


def _rewrite_block(
    block: bytes, first_line: int, policy: BadRowPolicy, normalize_record: Callable[[dict], dict]
) -> bytes:
    lines = block.split(b"\n")
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError as error:
            policy.reject_line("malformed JSON", row=first_line + i, detail=f": {error}")
            lines[i] = b""
            continue
        if not isinstance(record, dict):
            policy.reject_line("malformed JSON", row=first_line + i, detail=": a line is not a JSON object")
            lines[i] = b""
            continue
        try:
            lines[i] = json.dumps(normalize_record(record)).encode()
        except ValueError as error:
            field, _, reason = str(error).partition(": ")
            policy.reject_line(reason or "wrong type", row=first_line + i, field=field)
            lines[i] = b""
    return b"\n".join(lines)
