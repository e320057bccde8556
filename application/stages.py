"""Resumable pipeline stages: each stage writes one folder and a completion marker.

A stage is skipped when its marker exists and was written for the same configuration, so an
interrupted ``hetlm experiment`` picks up where it stopped instead of redoing finished work.
A stage whose folder exists without a valid marker (it was interrupted) is cleared and rerun.

Example:
    >>> import tempfile
    >>> runner = StageRunner(tempfile.mkdtemp())
    >>> runner.run("square", {"x": 3}, lambda out: {"y": 9})["y"]
    9
    >>> runner.run("square", {"x": 3}, lambda out: {"y": -1})["y"]  # finished: not recomputed
    9
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

MARKER_NAME = "stage_done.json"


def config_fingerprint(config: dict[str, Any]) -> str:
    """A stable hash of a JSON-serialisable stage configuration."""
    canonical = json.dumps(config, sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]


@dataclass
class StageTiming:
    """How long one stage took in this invocation (``reused`` when its earlier output was kept)."""

    name: str
    seconds: float
    reused: bool


@dataclass
class StageRunner:
    """Runs named stages under ``root``, each in ``root/<name>``, with completion markers.

    Args:
        root: The run folder.
        force: Rerun every stage even when a valid marker exists.
    """

    root: str | Path
    force: bool = False
    timings: list[StageTiming] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.root = Path(self.root)
        self.root.mkdir(parents=True, exist_ok=True)

    def stage_dir(self, name: str) -> Path:
        """The folder a stage writes into."""
        return Path(self.root) / name

    def run(self, name: str, config: dict[str, Any], work: Callable[[Path], dict[str, Any]]) -> dict[str, Any]:
        """Run ``work(stage_dir)`` unless the stage already finished with the same ``config``.

        ``work`` returns a JSON-serialisable result dict, stored in the marker and returned again
        when the stage is reused.
        """
        out_dir = self.stage_dir(name)
        marker = out_dir / MARKER_NAME
        fingerprint = config_fingerprint(config)
        if not self.force and marker.is_file():
            stored = json.loads(marker.read_text())
            if stored.get("fingerprint") == fingerprint:
                logger.info("stage %s: reusing finished output in %s", name, out_dir)
                self.timings.append(StageTiming(name, float(stored.get("seconds", 0.0)), reused=True))
                return stored["result"]
            logger.info("stage %s: configuration changed, rerunning", name)
        if out_dir.exists():
            shutil.rmtree(out_dir)
        out_dir.mkdir(parents=True)
        start = time.perf_counter()
        result = work(out_dir)
        seconds = time.perf_counter() - start
        marker.write_text(json.dumps({"fingerprint": fingerprint, "config": config, "seconds": seconds,
                                      "result": result}, indent=2, default=str))
        self.timings.append(StageTiming(name, seconds, reused=False))
        logger.info("stage %s: done in %.1f s", name, seconds)
        return result
