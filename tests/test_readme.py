"""Every Python snippet of the README runs, in order, in a fresh process against a real run folder
(the smoke experiment as ``runs/default``) and a local Hub server for the push/pull snippet."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from hub_server import LocalHub

README = Path(__file__).resolve().parents[1] / "README.md"


def python_snippets(text: str) -> list[str]:
    """The README's ```python blocks, in order."""
    return re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)


def test_the_readme_has_the_two_commands_and_python_snippets():
    text = README.read_text(encoding="utf-8")
    assert "make main" in text and "make test" in text
    assert len(python_snippets(text)) >= 4


def test_every_readme_snippet_runs(smoke_run, tmp_path):
    work = tmp_path / "work"
    (work / "runs").mkdir(parents=True)
    (work / "runs" / "default").symlink_to(smoke_run, target_is_directory=True)
    script = "\n\n".join(python_snippets(README.read_text(encoding="utf-8")))
    with LocalHub(tokens={"hf_readme_token": "my-org"}) as hub:
        env = {key: value for key, value in os.environ.items() if key != "HF_HUB_OFFLINE"}
        env.update(
            HF_ENDPOINT=hub.endpoint,
            HF_TOKEN="hf_readme_token",
            HF_HUB_DISABLE_XET="1",
            HF_HOME=str(tmp_path / "hf-home"),
            PYTHONUNBUFFERED="1",
        )
        result = subprocess.run(
            [sys.executable, "-c", script], cwd=work, env=env, capture_output=True, text=True, timeout=600
        )
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.strip().splitlines()
    assert "next session:" in result.stdout
    assert any(line.startswith("0.666") and " 1.0 " in line for line in lines), result.stdout
    assert lines[-1] == "True"
