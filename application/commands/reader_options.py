"""The ``KEY=VALUE`` reader options shared by ``hetlm prepare``, ``hetlm experiment`` and ``hetlm generate``.

Example:
    >>> reader_option("num_users=500"), reader_option("granularity=category")
    (('num_users', 500), ('granularity', 'category'))
    >>> reader_option("sessions_per_user=[2, 4]")
    ('sessions_per_user', [2, 4])
"""

from __future__ import annotations

import argparse
import json


def reader_option(text: str) -> tuple[str, object]:
    """An argparse type: ``KEY=VALUE`` -> ``(KEY, VALUE)``, VALUE parsed as JSON when it parses, else text."""
    key, separator, value = text.partition("=")
    if not separator or not key.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    try:
        return key.strip(), json.loads(value)  # numbers, true/false, null, lists
    except json.JSONDecodeError:
        return key.strip(), value
