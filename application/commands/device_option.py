"""The ``--device`` option of the commands that run a model, resolved only when the command runs (no torch import
while the parser is built, so ``--help`` stays fast).

Example:
    >>> resolve_device("cpu")
    'cpu'
"""

from __future__ import annotations

import argparse

DEVICE_HELP = "Device for models (default: cuda when available, else cpu)."


def add_device_option(parser: argparse.ArgumentParser) -> None:
    """Register ``--device`` (default None: see :func:`resolve_device`)."""
    parser.add_argument("--device", help=DEVICE_HELP)


def resolve_device(device: str | None) -> str:
    """``device``, or ``"cuda"`` when torch sees a GPU, else ``"cpu"``."""
    if device:
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"
