"""Suite-wide settings: one torch thread (tiny models run faster without thread hand-offs, and the
results do not depend on the machine's core count) and no model hub at run time."""

from __future__ import annotations

import os

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
torch.set_num_threads(1)


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory):
    """One ``hetlm experiment --preset smoke`` run folder, shared by the experiment and README tests."""
    from application.cli import main as cli_main

    run_dir = tmp_path_factory.mktemp("experiment") / "run"
    assert (
        cli_main(
            [
                "--log-level",
                "WARNING",
                "experiment",
                "--preset",
                "smoke",
                "--simulator-users",
                "160",
                "--out",
                str(run_dir),
            ]
        )
        == 0
    )
    return run_dir
