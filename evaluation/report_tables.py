"""Write report rows (one dict per row) as Markdown tables, CSV and JSON (files written atomically).

Example:
    >>> rows = [{"Cluster": "Cluster 0", "N": 3, "HR": 0.5}, {"Cluster": "Combined", "N": 4, "HR": 2 / 3}]
    >>> print(markdown_table(rows, ["Cluster", "N", "HR"]))
    | Cluster | N | HR |
    |---|---:|---:|
    | Cluster 0 | 3 | 0.500 |
    | Combined | 4 | 0.667 |
"""

from __future__ import annotations

import csv
import json
import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tokenization.atomic_files import atomic_open, write_text_atomically

_IMAGE_LINK = re.compile(r"!\[([^\]]*)\]\(([^)\s]+)\)")


def format_value(value: Any, digits: int = 3) -> str:
    """Format one table cell: floats with ``digits`` decimals, NaN and None as ``-``.

    Example:
        >>> format_value(0.41666), format_value(12), format_value(float("nan")), format_value("Combined")
        ('0.417', '12', '-', 'Combined')
    """
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def markdown_table(rows: Sequence[dict[str, Any]], columns: Sequence[str], digits: int = 3) -> str:
    """A GitHub Markdown table of ``columns`` (text columns left-aligned, numbers right-aligned).

    Example:
        >>> print(markdown_table([{"Model": "markov", "BLEU": 0.1234}], ["Model", "BLEU"], digits=2))
        | Model | BLEU |
        |---|---:|
        | markov | 0.12 |
    """
    numeric = [any(isinstance(row.get(column), (int, float)) for row in rows) for column in columns]
    lines = [
        "| " + " | ".join(columns) + " |",
        "|" + "|".join("---:" if is_number else "---" for is_number in numeric) + "|",
    ]
    lines += ["| " + " | ".join(format_value(row.get(column), digits) for column in columns) + " |" for row in rows]
    return "\n".join(lines)


def image_links(markdown: str) -> list[str]:
    """The targets of the Markdown image links (``![text](target)``) in ``markdown``, in order.

    Example:
        >>> image_links("![a](x.png) and ![b](plots/y.png)")
        ['x.png', 'plots/y.png']
    """
    return [match.group(2) for match in _IMAGE_LINK.finditer(markdown)]


def rebase_image_links(markdown: str, folder: str | Path) -> str:
    """``markdown`` with every relative image link prefixed by ``folder``: the same text embedded in a document
    one or more folders up (absolute paths and URLs are left as they are).

    Example:
        >>> rebase_image_links("![plot](comparison.png) ![web](https://x.org/a.png)", "evaluation")
        '![plot](evaluation/comparison.png) ![web](https://x.org/a.png)'
    """

    def rebase(match: re.Match) -> str:
        target = match.group(2)
        if "://" in target or target.startswith("/"):
            return match.group(0)
        return f"![{match.group(1)}]({Path(folder, target).as_posix()})"

    return _IMAGE_LINK.sub(rebase, markdown)


def write_csv(rows: Sequence[dict[str, Any]], path: str | Path, columns: Sequence[str]) -> Path:
    """Write ``columns`` of every row to a CSV file with full precision (missing cells left empty).

    Example:
        >>> import tempfile
        >>> path = write_csv([{"N": 2, "HR": 0.5}], Path(tempfile.mkdtemp()) / "t.csv", ["N", "HR"])
        >>> path.read_text().splitlines()
        ['N,HR', '2,0.5']
    """
    path = Path(path)
    with atomic_open(path, newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(columns), extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return path


def write_json(data: Any, path: str | Path) -> Path:
    """Write ``data`` as indented JSON (NaN written as ``null`` so every JSON reader accepts it).

    Example:
        >>> import tempfile
        >>> path = write_json({"HR": float("nan")}, Path(tempfile.mkdtemp()) / "t.json")
        >>> json.loads(path.read_text())
        {'HR': None}
    """
    path = Path(path)
    write_text_atomically(path, json.dumps(_nan_to_none(data), indent=2, ensure_ascii=False) + "\n")
    return path


def _nan_to_none(data: Any) -> Any:
    if isinstance(data, float) and math.isnan(data):
        return None
    if isinstance(data, dict):
        return {key: _nan_to_none(value) for key, value in data.items()}
    if isinstance(data, (list, tuple)):
        return [_nan_to_none(value) for value in data]
    return data
