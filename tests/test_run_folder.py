"""Run folders: source-content fingerprints, one run per folder (lock), atomic and unreadable stage markers."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from application.source_fingerprint import source_fingerprint
from application.stages import LOCK_NAME, MARKER_NAME, RunFolderBusyError, RunLock, StageRunner


def test_fingerprint_follows_content_not_path(tmp_path):
    log = tmp_path / "events.csv"
    log.write_text("user_id,timestamp,page\nu1,2024-03-01T10:00:00Z,home\n")
    first = source_fingerprint(log)
    assert source_fingerprint(log) == first
    stat = log.stat()
    log.write_text("user_id,timestamp,page\nu1,2024-03-01T10:00:00Z,cart\n")  # same size, other bytes
    os.utime(log, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # and the same mtime
    assert source_fingerprint(log) != first


def test_fingerprint_of_a_folder_sees_an_added_file(tmp_path):
    (tmp_path / "a.csv").write_text("x\n")
    before = source_fingerprint(tmp_path)
    (tmp_path / "b.csv").write_text("y\n")
    assert source_fingerprint(tmp_path) != before
    with pytest.raises(FileNotFoundError, match="no such file"):
        source_fingerprint(tmp_path / "missing.csv")


def test_a_second_run_on_a_busy_folder_is_refused_naming_the_owner(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        (tmp_path / LOCK_NAME).write_text(
            json.dumps({"pid": holder.pid, "host": os.uname().nodename, "started": "now"})
        )
        with pytest.raises(RunFolderBusyError, match=f"in use by pid {holder.pid}"):
            RunLock(tmp_path).acquire()
    finally:
        holder.kill()
        holder.wait()
    # The holder is gone: its lock is stale and is taken over.
    with RunLock(tmp_path):
        assert json.loads((tmp_path / LOCK_NAME).read_text())["pid"] == os.getpid()
    assert not (tmp_path / LOCK_NAME).exists()


def test_an_unreadable_lock_is_stale(tmp_path, caplog):
    (tmp_path / LOCK_NAME).write_text("{trunc")
    with RunLock(tmp_path):
        pass
    assert "stale lock" in caplog.text


def test_a_truncated_marker_means_redo_the_stage(tmp_path, caplog):
    runner = StageRunner(tmp_path)
    assert runner.run("square", {"x": 3}, lambda out: {"y": 9}) == {"y": 9}
    marker = tmp_path / "square" / MARKER_NAME
    marker.write_text(marker.read_text()[:20])
    assert StageRunner(tmp_path).run("square", {"x": 3}, lambda out: {"y": 10}) == {"y": 10}
    assert "unreadable" in caplog.text and "redoing the stage" in caplog.text
    assert json.loads(marker.read_text())["result"] == {"y": 10}
    assert not [path for path in marker.parent.iterdir() if path.name.endswith(".partial")]


def test_a_failed_stage_leaves_no_marker(tmp_path):
    def fail(out):
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        StageRunner(tmp_path).run("broken", {}, fail)
    assert not (tmp_path / "broken" / MARKER_NAME).exists()
    assert StageRunner(tmp_path).run("broken", {}, lambda out: {"ok": True}) == {"ok": True}
