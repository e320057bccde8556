"""Finding and opening the files of a source; shared helpers for the CSV and JSON-lines readers.

A source is a file, a folder (every file in it with a known extension, in name order) or a glob
pattern (``ga_sessions_*.json.gz``). Compressed files (``.gz``, ``.bz2``, ``.zst``, ``.lz4``) are
decompressed on the fly. Nothing is read whole.

Example:
    >>> base_suffix(Path("ga_sessions_20170801.json.gz"))
    '.json'
"""

from __future__ import annotations

import glob
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa

from ..errors import DataFormatError

COMPRESSION_SUFFIXES = (".gz", ".bz2", ".zst", ".lz4")
# Blocks of at most 16 MiB keep the working set in cache: measured faster than larger blocks.
MAX_BLOCK_BYTES = 1 << 24
# Small batch sizes (tests) give small blocks; a CSV line must still fit in one block.
MIN_BLOCK_BYTES = 1 << 12


def block_bytes_for(batch_size: int, bytes_per_row: int) -> int:
    """Bytes to read at once for about ``batch_size`` rows, within [MIN_BLOCK_BYTES, MAX_BLOCK_BYTES].

    Example:
        >>> block_bytes_for(1_000_000, 128) == MAX_BLOCK_BYTES
        True
    """
    return int(min(max(batch_size * bytes_per_row, MIN_BLOCK_BYTES), MAX_BLOCK_BYTES))


def source_files(source: str | Path, extensions: Sequence[str]) -> list[Path]:
    """The files of a source (file, folder or glob pattern), sorted by name.

    A folder or a pattern keeps the files ending in one of ``extensions`` (optionally followed by
    a compression suffix).

    Example:
        >>> source_files("no/such/file.csv", (".csv",))
        Traceback (most recent call last):
        ...
        tokenization.errors.DataFormatError: no/such/file.csv: no such file, folder or matching pattern
    """
    path = Path(source)
    if path.is_file():
        return [path]
    if path.is_dir():
        candidates = sorted(p for p in path.iterdir() if p.is_file())
    else:
        candidates = sorted(Path(p) for p in glob.glob(str(source)) if Path(p).is_file())
        if not candidates:
            raise DataFormatError("no such file, folder or matching pattern", file=str(source))
    files = [p for p in candidates if base_suffix(p) in extensions]
    if not files:
        raise DataFormatError(f"no files with extension {' / '.join(extensions)}", file=str(source))
    return files


def base_suffix(path: Path) -> str:
    """The extension of a file name, ignoring a compression suffix (``a.json.gz`` -> ``.json``).

    Example:
        >>> base_suffix(Path("ga_sessions_20170801.json.gz"))
        '.json'
    """
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] in COMPRESSION_SUFFIXES:
        suffixes = suffixes[:-1]
    return suffixes[-1] if suffixes else ""


def open_input(path: Path) -> pa.NativeFile:
    """Open a file for streaming, decompressing by extension; an empty file is an error.

    Example:
        >>> open_input(Path("missing.csv"))  # doctest: +SKIP
    """
    if path.stat().st_size == 0:
        raise DataFormatError("empty file", file=str(path))
    try:
        return pa.input_stream(str(path), compression="detect")
    except (pa.ArrowInvalid, OSError) as error:
        raise DataFormatError(f"cannot open: {error}", file=str(path)) from None


def require_columns(path: Path, available: Sequence[str], required: Sequence[str], what: str) -> None:
    """Raise a DataFormatError naming every required column missing from ``available``.

    Example:
        >>> require_columns(  # doctest: +NORMALIZE_WHITESPACE
        ...     Path("a.csv"), ["user_id"], ["user_id", "page"], "an event log"
        ... )
        Traceback (most recent call last):
        ...
        tokenization.errors.DataFormatError: a.csv, field 'page': missing column 'page'
            (an event log needs user_id, page; found user_id)
    """
    missing = [name for name in required if name not in available]
    if missing:
        raise DataFormatError(
            f"missing column{'s' if len(missing) > 1 else ''} {', '.join(repr(m) for m in missing)} "
            f"({what} needs {', '.join(required)}; found {', '.join(available) or 'no columns'})",
            file=str(path),
            field=missing[0],
        )


def read_bytes(stream: pa.NativeFile, size: int, path: Path) -> bytes:
    """Read up to ``size`` bytes; a corrupt or truncated compressed file becomes a DataFormatError.

    Example:
        >>> read_bytes(pa.BufferReader(b"abc"), 2, Path("a.csv"))
        b'ab'
    """
    try:
        return stream.read(size)
    except (pa.ArrowException, OSError) as error:
        raise DataFormatError(f"cannot read (corrupt or truncated file?): {error}", file=str(path)) from None


def line_blocks(path: Path, block_bytes: int) -> Iterator[bytes]:
    """Blocks of whole lines of a (possibly compressed) text file, each ending with a newline.

    Example:
        >>> next(line_blocks(Path("tests/fixtures/events_sample.jsonl"), 1 << 20))[:1]  # doctest: +SKIP
        b'{'
    """
    rest = b""
    with open_input(path) as stream:
        while True:
            data = read_bytes(stream, block_bytes, path)
            if not data:
                break
            data = rest + data
            cut = data.rfind(b"\n") + 1
            rest = data[cut:]
            if cut:
                yield data[:cut]
    if rest:
        yield rest + b"\n"


def is_utf8(value: bytes) -> bool:
    """Whether ``value`` is valid UTF-8.

    Example:
        >>> is_utf8(b"caf\\xe9")
        False
    """
    try:
        value.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def arrow_message(error: Exception) -> str:
    """The first line of a pyarrow error, without pyarrow's internal prefixes.

    Example:
        >>> arrow_message(ValueError("JSON parse error: Invalid value. in row 1\\ndetails"))
        'Invalid value. in row 1'
    """
    return str(error).splitlines()[0].removeprefix("JSON parse error: ").removeprefix("CSV parse error: ")


def record_line_numbers(block: bytes, first_line: int, *, whitespace_is_blank: bool) -> np.ndarray:
    """Line numbers of the non-blank lines of a block of whole lines (the records a parser makes).

    An empty line (or a lone ``\\r``) is always blank; with ``whitespace_is_blank`` (JSON lines) a
    line of spaces is too.

    Example:
        >>> record_line_numbers(b"a\\n\\n  \\nb\\n", 10, whitespace_is_blank=True).tolist()
        [10, 13]
    """
    data = np.frombuffer(block, dtype=np.uint8)
    ends = np.flatnonzero(data == ord("\n"))
    starts = np.concatenate([[0], ends[:-1] + 1]).astype(np.int64)
    nonblank = (ends - starts) > 0
    # Lines starting with whitespace are few: check them one by one.
    first_bytes = data[np.minimum(starts, max(len(data) - 1, 0))] if len(data) else np.zeros(0, dtype=np.uint8)
    blank_bytes = b" \t\r" if whitespace_is_blank else b"\r"
    for i in np.flatnonzero(nonblank & np.isin(first_bytes, np.frombuffer(blank_bytes, dtype=np.uint8))):
        line = block[starts[i] : ends[i]]
        nonblank[i] = bool(line.strip() if whitespace_is_blank else line.rstrip(b"\r"))
    return (first_line + np.flatnonzero(nonblank)).astype(np.int64)
