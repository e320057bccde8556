"""Time of ``hetlm --help`` and of each sub-command's ``--help`` (the target is under 2 s each).

Each command runs ``--repeats`` times in a fresh Python process (``application.cli.main`` from the
repository root); prints the best (the figure to quote) and median wall seconds, the CPU seconds (user +
system: on a machine shared with other jobs the wall clock overstates the cost) and which of torch,
transformers and datasets the command imported. A command that fails stops the benchmark with its error.

Example:
    $ .venv/bin/python benchmarks/cli_help.py --repeats 3
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("torch", "transformers", "datasets")
# Runs the CLI, then reports which heavy packages it imported (help exits with SystemExit).
_CHILD = r"""
import json, sys
from application.cli import main
try:
    main(sys.argv[2:])
except SystemExit:
    pass
print(json.dumps({"imported": [name for name in sys.argv[1].split(",") if name in sys.modules]}), file=sys.stderr)
"""


def measure(arguments: list[str], repeats: int) -> dict:
    """Best and median wall seconds, median CPU seconds and the heavy imports of ``hetlm ARGUMENTS``."""
    walls, cpus, imported = [], [], []
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    for _ in range(repeats):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        result = subprocess.run(
            [sys.executable, "-c", _CHILD, ",".join(HEAVY), *arguments],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        walls.append(time.perf_counter() - start)
        if result.returncode != 0:
            raise RuntimeError(f"hetlm {' '.join(arguments)} failed:\n{result.stderr[-2000:]}")
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
        imported = json.loads(result.stderr.strip().splitlines()[-1])["imported"]
    return {
        "best_s": min(walls),
        "median_s": statistics.median(walls),
        "cpu_s": statistics.median(cpus),
        "imported": imported,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="Runs per command (default: 3).")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from application.cli import COMMANDS

    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"{'command':<26} {'best s':>7} {'median s':>9} {'cpu s':>7}  heavy imports")
    for arguments in (["--help"], *([name, "--help"] for name in COMMANDS)):
        figures = measure(list(arguments), args.repeats)
        print(
            f"{'hetlm ' + ' '.join(arguments):<26} {figures['best_s']:>7.2f} {figures['median_s']:>9.2f} "
            f"{figures['cpu_s']:>7.2f}  {', '.join(figures['imported']) or '-'}"
        )


if __name__ == "__main__":
    main()
