"""Write output files atomically: into a temporary file beside the target, renamed over it once complete.

A crash, a full disk or Ctrl-C part-way leaves the previous file (or none), never half of one; the
temporary file is removed. Shared by every writer of results: run markers and summaries
(:mod:`application.stages`), reports (:mod:`evaluation.report_tables`) and predictions
(:mod:`inference.batch_generation`).

Example:
    >>> import json, tempfile
    >>> path = Path(tempfile.mkdtemp()) / "summary.json"
    >>> write_text_atomically(path, json.dumps({"users": 3}))
    >>> try:
    ...     with atomic_open(path) as handle:
    ...         _ = handle.write('{"users": ')
    ...         raise OSError("No space left on device")
    ... except OSError:
    ...     pass
    >>> path.read_text(), sorted(item.name for item in path.parent.iterdir())
    ('{"users": 3}', ['summary.json'])
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO


@contextmanager
def atomic_open(path: str | os.PathLike, newline: str | None = None) -> Iterator[IO[str]]:
    """A UTF-8 text file opened for writing whose content replaces ``path`` only when the block ends
    without an exception (see the module example)."""
    path = Path(path)
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    try:
        with open(partial, "w", encoding="utf-8", newline=newline) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


def write_text_atomically(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file renamed over it (see the module example)."""
    with atomic_open(path) as handle:
        handle.write(text)


__all__ = ["atomic_open", "write_text_atomically"]
