"""The hetlm command line: no `--help` imports a command module or torch, `--threads`, the sub-command in argv."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from application.cli import (
    COMMANDS,
    MAX_DEFAULT_THREADS,
    apply_threads,
    build_parser,
    default_threads,
    requested_command,
)

ROOT = Path(__file__).resolve().parents[1]
# Runs `hetlm ARGS` and prints which heavy or command modules it imported.
CHILD = """
import json, sys
from application.cli import main
try:
    main(sys.argv[1:])
except SystemExit as exit:
    code = exit.code
heavy = [name for name in sys.modules if name in ("torch", "transformers", "datasets")
         or name.startswith("application.commands.")]
print(json.dumps({"code": code, "imported": sorted(heavy)}))
"""


def run_cli(*arguments: str) -> tuple[dict, str]:
    result = subprocess.run(
        [sys.executable, "-c", CHILD, *arguments],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={"PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "PATH": "/usr/bin"},
    )
    *help_lines, report = result.stdout.strip().splitlines()
    return json.loads(report), "\n".join(help_lines)


def test_top_level_help_lists_every_command_and_imports_none():
    report, text = run_cli("--help")
    assert report == {"code": 0, "imported": []}
    assert all(name in text for name in COMMANDS) and "--threads N" in text


@pytest.mark.parametrize("command", COMMANDS)
def test_a_sub_command_help_is_its_parsers_and_imports_no_command_module(command, monkeypatch):
    report, text = run_cli("--threads", "1", command, "--help")
    assert report == {"code": 0, "imported": []}
    monkeypatch.setenv("COLUMNS", "80")  # the child's width: its output is a pipe
    assert text == build_parser([command])._subparsers._group_actions[0].choices[command].format_help().strip()


def test_requested_command_skips_global_options():
    assert requested_command(["--threads", "2", "--log-level", "DEBUG", "generate", "model", "log.csv"]) == "generate"
    assert requested_command(["--log-level=INFO", "prepare", "simulator"]) == "prepare"
    assert requested_command(["--help"]) is None and requested_command(["nonsense"]) is None
    assert set(build_parser(commands=["prepare"]).parse_args(["prepare", "simulator", "--out", "x"]).__dict__) > {
        "_run"
    }


def test_threads_are_applied_and_the_default_never_raises_torchs_count():
    before = torch.get_num_threads()
    try:
        assert apply_threads(2) == 2
        torch.set_num_threads(1)
        assert apply_threads(None) == 1  # the default caps, it does not raise
        torch.set_num_threads(64)
        assert apply_threads(None) == default_threads() <= MAX_DEFAULT_THREADS
    finally:
        torch.set_num_threads(before)
    with pytest.raises(SystemExit):
        build_parser(commands=[]).parse_args(["--threads", "0", "prepare"])
