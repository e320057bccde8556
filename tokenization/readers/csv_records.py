"""CSV text cut into blocks of whole RECORDS (not lines), with the line number each record starts on.

A record ends at a newline outside double quotes: ``"ho\\nme"`` is one value holding a newline, so a
record can span several lines. Quotes inside a value are doubled (``""``), so a newline lies outside
quotes exactly when an even number of quote characters precede it in the record; that parity is
computed with numpy, one block at a time.

- **Line numbers** stay physical lines (the header is line 1), so an error names the line a
  record starts on, however many quoted newlines came before it.
- **Line endings**: ``\\n``, ``\\r\\n`` and a lone ``\\r`` (old Mac style) all end a line, as they do
  for pyarrow's CSV parser, so both agree on where records end; they are handed to it as ``\\n``.
- **An unbalanced quote** (a value that opens a quote and never closes it) would swallow the rest of
  the file as one value. A record still open after ``max_record_bytes`` bytes (or at the end of the
  file) is taken to start with such a line: that single line is reported through
  ``on_unbalanced(line_number)`` (which raises, or counts a skipped row) and reading resumes on the
  next line.

Example:
    >>> from pathlib import Path
    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "log.csv"
    >>> _ = path.write_bytes(b'page,n\\n"ho\\nme",1\\nshop,2\\n')
    >>> [(block, lines.tolist()) for block, lines in csv_record_blocks(path, 1 << 20, on_unbalanced=print)]
    [(b'page,n\\n"ho\\nme",1\\nshop,2\\n', [1, 2, 4])]
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from .files import open_input, read_bytes

MAX_RECORD_BYTES = 1 << 20
_QUOTE, _NEWLINE = ord('"'), ord("\n")


def normalize_line_endings(data: bytes) -> bytes:
    """``\\r\\n`` and a lone ``\\r`` become ``\\n``.

    Example:
        >>> normalize_line_endings(b"a\\r\\nb\\rc\\n")
        b'a\\nb\\nc\\n'
    """
    return data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")


def record_ends(data: np.ndarray) -> np.ndarray:
    """Positions of the newlines of ``data`` (uint8, starting at a record boundary) that end a record.

    Example:
        >>> record_ends(np.frombuffer(b'a,"x\\ny"\\nb\\n', dtype=np.uint8)).tolist()
        [7, 9]
    """
    newlines = np.flatnonzero(data == _NEWLINE)
    quotes_before = np.cumsum(data == _QUOTE)[newlines] if len(newlines) else newlines
    return newlines[quotes_before % 2 == 0]


def record_start_lines(block: bytes, first_line: int) -> np.ndarray:
    """The line number of every non-blank record of a block of whole records (what a CSV parser returns).

    Example:
        >>> record_start_lines(b'a\\n\\n"x\\ny"\\nb\\n', 10).tolist()
        [10, 12, 14]
    """
    data = np.frombuffer(block, dtype=np.uint8)
    ends = record_ends(data)
    starts = np.concatenate([[0], ends[:-1] + 1]).astype(np.int64)
    lengths = ends - starts
    blank = lengths == 0  # an empty line: the parser skips it
    lines_before = np.cumsum(data == _NEWLINE)
    start_lines = first_line + np.where(starts > 0, lines_before[np.maximum(starts - 1, 0)], 0)
    return start_lines[~blank].astype(np.int64)


def csv_record_blocks(
    path: Path,
    block_bytes: int,
    on_unbalanced: Callable[[int], None],
    first_line: int = 1,
    max_record_bytes: int = MAX_RECORD_BYTES,
) -> Iterator[tuple[bytes, np.ndarray]]:
    """Blocks of whole records of a (possibly compressed) CSV file, each with its records' start lines.

    The first block starts at the file's first byte (line ``first_line``); callers strip the header.
    """
    buffer, line, exhausted = b"", first_line, False
    with open_input(path) as stream:
        while True:
            ends = record_ends(np.frombuffer(buffer, dtype=np.uint8))
            if len(ends):
                cut = int(ends[-1]) + 1
                block, buffer = buffer[:cut], buffer[cut:]
                yield block, record_start_lines(block, line)
                line += block.count(b"\n")
            elif buffer and (exhausted or len(buffer) > max_record_bytes):
                # No record ends anywhere in the buffer: its first line opens a quote that never closes.
                on_unbalanced(line)
                buffer = buffer[buffer.index(b"\n") + 1 :]
                line += 1
            elif exhausted:
                return
            else:
                data = read_bytes(stream, block_bytes, path)
                if data.endswith(b"\r"):  # keep a "\r\n" cut by the block boundary whole
                    data += read_bytes(stream, 1, path)
                exhausted = not data
                buffer += normalize_line_endings(data)
                if exhausted and buffer and not buffer.endswith(b"\n"):
                    buffer += b"\n"
