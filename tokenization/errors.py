"""Errors raised for bad input data, naming the file, row and field at fault.

Example:
    >>> error = DataFormatError("unparsable timestamp '2019-13-45'", file="events.csv", row=7, field="timestamp")
    >>> str(error)
    "events.csv, row 7, field 'timestamp': unparsable timestamp '2019-13-45'"
    >>> isinstance(error, ValueError)
    True
"""

from __future__ import annotations


class DataFormatError(ValueError):
    """Input data that cannot be read as events: a missing column, a wrong type, a bad value...

    Args:
        message: What is wrong, in plain words.
        file: The file at fault (None when not known or not a file).
        row: The 1-based data row at fault (None when the whole file is at fault).
        field: The column / field at fault (None when not specific to one field).
    """

    def __init__(self, message: str, *, file: str | None = None, row: int | None = None, field: str | None = None):
        self.message = message
        self.file = None if file is None else str(file)
        self.row = row
        self.field = field
        super().__init__(self._format())

    def _format(self) -> str:
        location = []
        if self.file is not None:
            location.append(self.file)
        if self.row is not None:
            location.append(f"row {self.row}")
        if self.field is not None:
            location.append(f"field {self.field!r}")
        return f"{', '.join(location)}: {self.message}" if location else self.message
