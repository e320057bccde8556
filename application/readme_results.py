"""Regenerate the README's results section from a finished experiment run (never edited by hand).

The section between ``<!-- results:start -->`` and ``<!-- results:end -->`` in README.md is replaced by a
paragraph built from the run's ``summary.json`` (machine, data, models, wall time per stage) and the
chosen sections of its ``report.md``, copied verbatim, with their headings one level down. Run it
after ``make main``::

    python -m application.readme_results runs/default README.md

Example:
    >>> text = "intro\\n<!-- results:start -->\\nold\\n<!-- results:end -->\\nrest\\n"
    >>> replace_between_markers(text, "new")
    'intro\\n<!-- results:start -->\\nnew\\n<!-- results:end -->\\nrest\\n'
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from evaluation.report_tables import rebase_image_links

from .experiment_settings import ExperimentSettings

START_MARKER = "<!-- results:start -->"
END_MARKER = "<!-- results:end -->"
# Report sections copied into the README, by the start of their heading, in this order.
README_SECTIONS = (
    "Summary",
    "Next-page ranking",
    "Outcome probabilities",
    "Uncertainty",
    "Composite scores",
    "Cluster recovery",
    "Cluster dynamics",
)


def replace_between_markers(text: str, block: str) -> str:
    """``text`` with the lines between the results markers replaced by ``block``."""
    start, end = text.find(START_MARKER), text.find(END_MARKER)
    if start < 0 or end < start:
        raise ValueError(f"the README has no {START_MARKER} ... {END_MARKER} block")
    return text[: start + len(START_MARKER)] + "\n" + block.strip("\n") + "\n" + text[end:]


def report_sections(report: str, wanted: Sequence[str] = README_SECTIONS) -> list[str]:
    """The ``## `` sections of a report whose heading starts with one of ``wanted``, in ``wanted``'s order,
    headings demoted to ``###``.

    Example:
        >>> report_sections("# R\\n## Summary (x)\\n|a|\\n## Other\\nno\\n", ["Summary"])
        ['### Summary (x)\\n|a|']
    """
    parts = re.split(r"^## ", report, flags=re.M)[1:]
    found = []
    for prefix in wanted:
        for part in parts:
            if part.startswith(prefix):
                found.append("### " + part.strip("\n"))
    return found


def _intro(summary: dict[str, Any]) -> str:
    machine = summary.get("machine", {})
    timings = summary.get("stage_timings", [])
    stage_text = ", ".join(
        f"{t['name']} {t['seconds']:.0f} s" + (" (reused)" if t.get("reused") else "") for t in timings
    )
    data = summary.get("data", {})
    splits = data.get("splits", {})
    split_text = " / ".join(f"{counts.get('users', 0):,} {name}" for name, counts in splits.items())
    settings = ExperimentSettings(**summary["settings"])
    lines = [
        f"Generated from `{summary.get('run_dir', 'the run')}` by `python -m application.readme_results` "
        "(do not edit by hand).",
        "",
        f"Machine: {machine.get('cpu_model') or machine.get('processor')}, {machine.get('cpu_count')} cores "
        f"(AVX-512: {machine.get('avx512', 'unknown')}, kernels: {machine.get('kernel_isa', 'unknown')}, "
        f"bf16: {machine.get('cpu_bf16', 'unknown')}), "
        f"{machine.get('torch_threads')} torch threads, torch {machine.get('torch', '?')}.",
        f"Data: {'**synthetic** (simulator)' if summary.get('synthetic') else 'a real log'}; users {split_text}.",
        f"Settings: family `{settings.family}`, initial K={settings.num_clusters}, (alpha, beta) "
        f"{[tuple(pair) for pair in settings.ablation]}, decodings {settings.decodings} (S={settings.num_samples}).",
        f"Wall time {summary.get('total_seconds', 0) / 60:.1f} minutes ({stage_text}).",
    ]
    return "\n".join(lines)


def results_block(run_dir: str | Path, readme_dir: str | Path = ".") -> str:
    """The README's results block for the run in ``run_dir``, its image links made relative to ``readme_dir``
    (the README's folder)."""
    run_dir = Path(run_dir)
    summary = json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))
    summary.setdefault("run_dir", str(run_dir))
    report = (run_dir / "report.md").read_text(encoding="utf-8")
    folder = os.path.relpath(run_dir, readme_dir)
    sections = [rebase_image_links(section, folder) for section in report_sections(report)]
    return "\n\n".join([_intro(summary), *sections]) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """Rewrite the README's results block from a run folder."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", help="A finished `hetlm experiment` folder (summary.json, report.md).")
    parser.add_argument("readme", nargs="?", default="README.md", help="The README to update (default README.md).")
    args = parser.parse_args(argv)
    readme = Path(args.readme)
    readme.write_text(
        replace_between_markers(readme.read_text(encoding="utf-8"), results_block(args.run_dir, readme.parent)),
        encoding="utf-8",
    )
    print(f"{readme}: results section regenerated from {args.run_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
