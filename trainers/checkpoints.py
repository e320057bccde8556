"""Which training checkpoint to resume from: the newest COMPLETE one.

A checkpoint folder (``checkpoint-STEP`` in the trainer's output folder) is complete when it has a
readable ``trainer_state.json``, safetensors weights (``model.safetensors`` or a sharded index) whose
sha256 match their ``weights_sha256.json`` when there is one, and a readable ``hetlm_clusters.json``.
A run killed while saving leaves the newest folder incomplete; resuming then falls back to the newest
complete one and logs which, and why the newer ones were passed over.

Example:
    >>> import tempfile
    >>> output_dir = Path(tempfile.mkdtemp())
    >>> (output_dir / "checkpoint-10").mkdir()
    >>> checkpoint_problem(output_dir / "checkpoint-10")
    'no trainer_state.json'
    >>> print(newest_complete_checkpoint(output_dir))
    None
"""

from __future__ import annotations

import json
import logging
import os
import re
from pathlib import Path

from modeling_hetlm.weights_integrity_hetlm import verify_weights_checksums

logger = logging.getLogger(__name__)

CLUSTER_STATE_FILE = "hetlm_clusters.json"
TRAINER_STATE_FILE = "trainer_state.json"
WEIGHTS_FILES = ("model.safetensors", "model.safetensors.index.json")
_CHECKPOINT_NAME = re.compile(r"^checkpoint-(\d+)$")


def checkpoint_problem(folder: str | os.PathLike) -> str | None:
    """Why the checkpoint ``folder`` cannot be resumed from (the first missing or unreadable part), or ``None``."""
    folder = Path(folder)
    for name in (TRAINER_STATE_FILE, CLUSTER_STATE_FILE):
        path = folder / name
        if not path.is_file():
            return f"no {name}"
        try:
            json.loads(path.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError):
            return f"{name} is not valid JSON (cut short?)"
    if not any((folder / name).is_file() for name in WEIGHTS_FILES):
        return f"no weights ({' or '.join(WEIGHTS_FILES)})"
    try:
        verify_weights_checksums(folder)
    except OSError as error:
        return str(error)
    return None


def newest_complete_checkpoint(output_dir: str | os.PathLike) -> Path | None:
    """The complete checkpoint of ``output_dir`` with the highest step (see the module docstring), logging each
    newer incomplete one; ``None`` when there is none."""
    output_dir = Path(output_dir)
    steps = {}
    if output_dir.is_dir():
        for folder in output_dir.iterdir():
            match = _CHECKPOINT_NAME.match(folder.name)
            if match and folder.is_dir():
                steps[folder] = int(match.group(1))
    for folder in sorted(steps, key=steps.get, reverse=True):
        problem = checkpoint_problem(folder)
        if problem is None:
            return folder
        logger.warning("checkpoint %s is incomplete (%s): passed over", folder, problem)
    return None


__all__ = ["CLUSTER_STATE_FILE", "checkpoint_problem", "newest_complete_checkpoint"]
