"""The ``on_bad_rows`` policy: raise a DataFormatError on the first bad row, or skip, count and log.

Every reader keeps a hidden ``__row`` column (the 1-based line number in text files, where a CSV
header is line 1; the 1-based row index in Parquet files) next to its data, so a bad row can be
named exactly, and filters it out together with the data when rows are skipped.

Example:
    >>> import pyarrow as pa
    >>> report = {}
    >>> policy = BadRowPolicy("events.csv", "skip", report)
    >>> table = pa.table({"page": ["home", ""], ROW_COLUMN: [2, 3]})
    >>> policy.reject(table, Check([False, True], "missing page", "page")).num_rows
    1
    >>> policy.finish(); report
    {'missing page': 1}
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import pyarrow as pa

from ..errors import DataFormatError
from .options import check_choice

logger = logging.getLogger(__name__)

ROW_COLUMN = "__row"
ON_BAD_ROWS_CHOICES = ("error", "skip")
SKIP_HINT = " (skip and count such rows with on_bad_rows='skip', or --on-bad-rows skip on the command line)"


def as_mask(bad: pa.Array | pa.ChunkedArray | np.ndarray | Sequence[bool]) -> np.ndarray:
    """A boolean numpy mask from an Arrow or numpy mask; Arrow nulls count as False.

    Example:
        >>> as_mask(pa.array([True, None, False])).tolist()
        [True, False, False]
    """
    if isinstance(bad, pa.ChunkedArray):
        bad = bad.combine_chunks()
    if isinstance(bad, pa.Array):
        return bad.fill_null(False).to_numpy(zero_copy_only=False).astype(bool, copy=False)
    return np.asarray(bad, dtype=bool)


class Check(NamedTuple):
    """One row test: ``bad`` flags the failing rows; ``values`` (optional) are quoted in the error.

    Example:
        >>> Check([False, True], "missing page", "page").reason
        'missing page'
    """

    bad: pa.Array | np.ndarray | Sequence[bool]
    reason: str
    field: str | None
    values: pa.Array | None = None


class BadRowPolicy:
    """Applies ``on_bad_rows`` to the rows of one file and counts what it skips.

    Args:
        file: The file being read (named in errors and warnings).
        on_bad_rows: "error" (raise on the first bad row) or "skip" (drop, count, log).
        report: The stream's report; the counts of skipped rows by reason are added to it by
            :meth:`finish`.
    """

    def __init__(self, file: str, on_bad_rows: str, report: dict[str, int]):
        self.file = str(file)
        self.skip = check_choice("on_bad_rows", on_bad_rows, ON_BAD_ROWS_CHOICES) == "skip"
        self.report = report
        self.counts: Counter[str] = Counter()
        self.ignored: Counter[str] = Counter()

    def error(self, message: str, *, row: int | None = None, field: str | None = None) -> DataFormatError:
        """A DataFormatError about this file (to raise)."""
        return DataFormatError(message, file=self.file, row=row, field=field)

    def reject_line(self, reason: str, *, row: int | None, field: str | None = None, detail: str = "") -> None:
        """One bad line that never became a table row: raise, or count it when skipping."""
        if not self.skip:
            raise self.error(f"{reason}{detail}{SKIP_HINT}", row=row, field=field)
        self.counts[reason] += 1

    def reject(self, table: pa.Table, *checks: Check, ignored: np.ndarray | None = None) -> pa.Table:
        """Drop the rows of ``table`` that fail any check; raise on the first one unless skipping.

        A row failing several checks is counted once, under its first failing check.

        Args:
            table: Rows with the hidden ``__row`` column.
            checks: What to test, in order of priority.
            ignored: Rows to drop in the same pass without checking them (already counted with
                :meth:`ignore`); one filter instead of two.
        """
        ignored = np.zeros(table.num_rows, dtype=bool) if ignored is None else ignored
        masks = [as_mask(check.bad) & ~ignored for check in checks]
        any_bad = np.logical_or.reduce(masks) if masks else np.zeros(table.num_rows, dtype=bool)
        if not any_bad.any():
            return table.filter(pa.array(~ignored)) if ignored.any() else table
        if not self.skip:
            first = int(np.argmax(any_bad))
            check = next(c for c, mask in zip(checks, masks) if mask[first])
            row = table.column(ROW_COLUMN)[first].as_py()
            detail = "" if check.values is None else f": {check.values[first].as_py()!r}"
            raise self.error(f"{check.reason}{detail}{SKIP_HINT}", row=row, field=check.field)
        counted = np.zeros(table.num_rows, dtype=bool)
        for check, mask in zip(checks, masks):
            new = mask & ~counted
            if new.any():
                self.counts[check.reason] += int(new.sum())
            counted |= mask
        return table.filter(pa.array(~(any_bad | ignored)))

    def ignore(self, reason: str, count: int) -> None:
        """Count well-formed rows a reader deliberately drops (e.g. "remove_from_cart ignored")."""
        if count:
            self.ignored[reason] += count

    def finish(self) -> None:
        """Add this file's counts to the report and log them (a skip is never silent)."""
        for counter in (self.counts, self.ignored):
            for reason, count in counter.items():
                self.report[reason] = self.report.get(reason, 0) + count
        if self.counts:
            logger.warning("%s: skipped bad rows (%s)", self.file, _summary(self.counts))
        if self.ignored:
            logger.info("%s: ignored rows (%s)", self.file, _summary(self.ignored))
        self.counts.clear()
        self.ignored.clear()


def _summary(counts: Counter[str]) -> str:
    return ", ".join(f"{reason}: {count}" for reason, count in sorted(counts.items()))
