"""Resumable pipeline stages: each stage writes one folder and a completion marker.

A stage is skipped when its marker exists and was written for the same configuration, so an
interrupted ``hetlm experiment`` picks up where it stopped instead of redoing finished work.
A stage whose folder exists without a valid marker (it was interrupted) is cleared and rerun; so is
one whose marker cannot be read (truncated, not JSON), said in one log line. Markers are written
atomically (a temporary file renamed over the marker), so a crash never leaves half a marker.

One run per folder at a time: :class:`RunLock` holds ``<run>/run.lock`` (the owner's pid, host
and start time) while a run works there; a second run on the same folder stops with an error
naming the owner, and a lock left by a process that no longer exists (on this host) is taken over
with a warning.

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
import os
import shutil
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tokenization.atomic_files import write_text_atomically

logger = logging.getLogger(__name__)

MARKER_NAME = "stage_done.json"
LOCK_NAME = "run.lock"


class RunFolderBusyError(OSError):
    """Another live process holds the run folder's lock."""


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by another user
        return True
    return True


@dataclass
class RunLock:
    """An exclusive lock on a run folder: a ``run.lock`` file created with ``O_EXCL``.

    Example:
        >>> import tempfile
        >>> folder = Path(tempfile.mkdtemp())
        >>> with RunLock(folder):
        ...     RunLock(folder).acquire()
        Traceback (most recent call last):
        ...
        application.stages.RunFolderBusyError: ...
        >>> (folder / LOCK_NAME).exists()
        False
    """

    root: Path

    @property
    def path(self) -> Path:
        return Path(self.root) / LOCK_NAME

    def acquire(self) -> None:
        """Take the lock, replacing a stale one; raise :class:`RunFolderBusyError` when a live process holds it."""
        Path(self.root).mkdir(parents=True, exist_ok=True)
        owner = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.strftime("%Y-%m-%d %H:%M:%S")}
        for _ in range(2):
            try:
                descriptor = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                holder = self._holder()
                alive = holder is not None and (holder.get("host") != owner["host"] or _process_alive(holder["pid"]))
                if alive:
                    raise RunFolderBusyError(
                        f"run folder {self.root} is in use by pid {holder['pid']} on {holder['host']} "
                        f"(since {holder.get('started')}): wait for it to finish, or use another --out"
                    ) from None
                logger.warning("run folder %s: removing a stale lock (%s)", self.root, holder or "unreadable")
                self.path.unlink(missing_ok=True)
                continue
            with os.fdopen(descriptor, "w") as handle:
                json.dump(owner, handle)
            return
        raise RunFolderBusyError(f"run folder {self.root}: could not take {self.path}")

    def _holder(self) -> dict[str, Any] | None:
        try:
            holder = json.loads(self.path.read_text(encoding="utf-8"))
            return holder if isinstance(holder, dict) and isinstance(holder.get("pid"), int) else None
        except (OSError, ValueError):
            return None

    def release(self) -> None:
        """Remove the lock file (only this process's own)."""
        holder = self._holder()
        if holder is not None and holder.get("pid") == os.getpid():
            self.path.unlink(missing_ok=True)

    def __enter__(self) -> "RunLock":
        self.acquire()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.release()


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
        stored = self._read_marker(name, marker) if not self.force else None
        if stored is not None:
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
        marker_text = json.dumps(
            {"fingerprint": fingerprint, "config": config, "seconds": seconds, "result": result}, indent=2, default=str
        )
        write_text_atomically(marker, marker_text)
        self.timings.append(StageTiming(name, seconds, reused=False))
        logger.info("stage %s: done in %.1f s", name, seconds)
        return result

    @staticmethod
    def _read_marker(name: str, marker: Path) -> dict[str, Any] | None:
        """The stored marker, or None when there is none or it cannot be read (then the stage is redone)."""
        if not marker.is_file():
            return None
        try:
            stored = json.loads(marker.read_text(encoding="utf-8"))
            if isinstance(stored, dict) and "fingerprint" in stored and "result" in stored:
                return stored
            problem = "not a stage marker"
        except (OSError, UnicodeDecodeError, ValueError) as error:
            problem = str(error).splitlines()[0]
        logger.warning("stage %s: marker %s is unreadable (%s); redoing the stage", name, marker, problem)
        return None
