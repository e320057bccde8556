"""A fingerprint of an event-log source's content, so a finished stage is never reused for changed data.

A run folder's stages are reused when their configuration is unchanged; the configuration of the
data stage (and so of every stage after it) holds this fingerprint. For each file of the source
(a file, a folder or a glob pattern, as the readers take it) it covers the name, the size, the
modification time and a SHA-256 of the bytes, so an edited, replaced, added or removed file, or
one touched to another mtime, all give another fingerprint. The simulator has no file: its
settings are its content.

Hashing reads every byte once (about 1 GB/s on one core): for a month-scale log that is seconds,
small beside preparing it.

Example:
    >>> import os, tempfile
    >>> folder = tempfile.mkdtemp()
    >>> path = os.path.join(folder, "events.csv")
    >>> _ = open(path, "w").write("user_id,timestamp,page\\n")
    >>> before = source_fingerprint(path)
    >>> _ = open(path, "a").write("u1,2024-03-01T10:00:00Z,home\\n")
    >>> source_fingerprint(path) == before
    False
    >>> source_fingerprint("simulator") is None
    True

A folder written by ``hetlm prepare`` (``hetlm experiment --data DIR``) is fingerprinted by its content alone
(:func:`prepared_data_fingerprint`): a copy of the folder elsewhere is the same data.
"""

from __future__ import annotations

import glob
import hashlib
from pathlib import Path

from modeling_hetlm.weights_integrity_hetlm import file_sha256


def _source_files(source: str) -> list[Path]:
    path = Path(source)
    if path.is_file():
        return [path]
    if path.is_dir():
        return sorted(p for p in path.rglob("*") if p.is_file())
    return sorted(Path(p) for p in glob.glob(source) if Path(p).is_file())


def source_fingerprint(source: str | Path) -> str | None:
    """A hash of the names, sizes, modification times and bytes of the source's files; None for
    ``"simulator"``. A source that names no file raises ``FileNotFoundError``."""
    source = str(source)
    if source == "simulator":
        return None
    files = _source_files(source)
    if not files:
        raise FileNotFoundError(f"{source}: no such file, folder or matching pattern")
    digest = hashlib.sha256()
    for path in files:
        stat = path.stat()
        digest.update(f"{path.name}\0{stat.st_size}\0{stat.st_mtime_ns}\0{file_sha256(path)}\n".encode())
    return digest.hexdigest()[:32]


PREPARED_CONTENT = ("dataset", "tokenizer")


def prepared_data_fingerprint(folder: str | Path) -> str:
    """A hash of the relative paths and bytes of a prepared folder's ``dataset/`` and ``tokenizer/`` files (not
    their modification times, nor the folder's place).

    Example:
        >>> import tempfile
        >>> folder = Path(tempfile.mkdtemp())
        >>> for name in PREPARED_CONTENT:
        ...     (folder / name).mkdir()
        >>> _ = (folder / "dataset" / "data.arrow").write_bytes(b"rows")
        >>> before = prepared_data_fingerprint(folder)
        >>> _ = (folder / "dataset" / "data.arrow").write_bytes(b"other rows")
        >>> prepared_data_fingerprint(folder) == before
        False
    """
    folder = Path(folder)
    digest = hashlib.sha256()
    for name in PREPARED_CONTENT:
        if not (folder / name).is_dir():
            raise FileNotFoundError(f"{folder / name} not found: is {folder} a folder written by `hetlm prepare`?")
        for path in _source_files(str(folder / name)):
            digest.update(f"{path.relative_to(folder).as_posix()}\0{file_sha256(path)}\n".encode())
    return digest.hexdigest()[:32]
