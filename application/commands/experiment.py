"""``hetlm experiment``: the paper's protocol end to end, resumable stage by stage.

Runs (or resumes) data preparation, the single small and large LMs, the K-means baselines, HeTLM
for each (alpha, beta) pair, the simple baselines and the evaluation into one run folder, then
prints the summary table and the stage timings. Settings: flags > ``--config`` YAML/JSON file >
the ``--preset`` (default: ``default``, about 10 minutes on a 2-core CPU on simulated users).

Example:
    $ hetlm experiment --out runs/default
    $ hetlm experiment --preset smoke --out runs/smoke
    $ hetlm experiment --source events.parquet --format parquet --family qwen2 --out runs/mine
    $ hetlm experiment --ablation 0.5,1 5,9 --out runs/ablation
"""

from __future__ import annotations

import argparse

from ..config_files import build_settings, load_config_file
from ..experiment import CONFIG_FILE, run_experiment
from ..experiment_report import summary_table
from ..experiment_settings import PRESETS, ExperimentSettings
from tokenization.simulator import SCENARIOS
from trainers.model_sizes import FAMILIES

from .train import add_dynamics_arguments

NAME = "experiment"
HELP = "Run the paper's protocol end to end (data, single LMs, K-means, HeTLM, baselines, evaluation)."


def _pair(value: str) -> tuple[float, float]:
    try:
        alpha, beta = (float(part) for part in value.split(","))
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"an (alpha, beta) pair is written ALPHA,BETA (e.g. 5,9), got {value!r}") from error
    return alpha, beta


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register ``hetlm experiment``'s options (each defaults to the config file, then the preset)."""
    parser.add_argument("--out", default="runs/default", help="Run folder (default: runs/default); a rerun resumes it.")
    parser.add_argument("--preset", default="default", choices=sorted(PRESETS), help="Size preset (default: default).")
    parser.add_argument("--config", help="YAML or JSON file of settings (keys as the flags); flags given here override it.")
    parser.add_argument("--force", action="store_true", help="Redo every stage even when its output is complete.")
    parser.add_argument("--source", help="'simulator' (default) or an event log file/folder.")
    parser.add_argument("--format", help="Reader format: simulator, events, csv, parquet, jsonl, ga360, rees46.")
    parser.add_argument("--simulator-users", type=int, help="Users the simulator draws.")
    parser.add_argument("--simulator-scenario", choices=sorted(SCENARIOS),
                        help="default (segments differ in what they browse) or behaviour (only in how they browse).")
    parser.add_argument("--family", choices=FAMILIES, help="LM family of every model (default: opt).")
    parser.add_argument("--num-clusters", type=int, help="Initial K of HeTLM and K of the K-means baseline (default 6).")
    parser.add_argument("--ablation", type=_pair, nargs="+", metavar="ALPHA,BETA",
                        help="(alpha, beta) pairs, one HeTLM each (default: 5,9).")
    parser.add_argument("--centroid-distance", choices=("paper", "normalized"), help="L3 variant (default: paper).")
    parser.add_argument("--pretrain-epochs", type=float, help="Epochs of the single small LM.")
    parser.add_argument("--large-pretrain-epochs", type=float, help="Epochs of the single large LM.")
    parser.add_argument("--clusterwise-epochs", type=float, help="Epochs of HeTLM and of the K-means fine-tuning.")
    add_dynamics_arguments(parser)
    parser.add_argument("--max-test-users", type=int, help="Score at most this many test users.")
    parser.add_argument("--seed", type=int, help="Seed (default 0).")


def run(args: argparse.Namespace) -> int:
    """Run or resume the experiment, print the summary table and the stage timings."""
    file_values = load_config_file(args.config) if args.config else {}
    preset = file_values.pop("preset", None) or args.preset
    cli_values = {key: value for key, value in vars(args).items() if key in ExperimentSettings.keys()}
    if cli_values.get("source") not in (None, "simulator") and cli_values.get("format") is None \
            and "format" not in file_values:
        cli_values["format"] = "events"
    base = ExperimentSettings.from_preset(preset)
    settings = build_settings(ExperimentSettings, {**vars(base), **file_values}, cli_values)
    summary = run_experiment(settings, args.out, force=args.force)
    label = " (SYNTHETIC DATA: simulator)" if summary["synthetic"] else ""
    print(f"\n# HeTLM experiment: test users, Combined{label}\n")
    print(summary_table(summary))
    print("\n# Stage timings\n")
    for timing in summary["stage_timings"]:
        note = " (reused)" if timing["reused"] else ""
        print(f"- {timing['name']}: {timing['seconds']:.1f} s{note}")
    print(f"- total: {summary['total_seconds']:.1f} s")
    print(f"\nReport: {args.out}/report.md; summary: {args.out}/summary.json; "
          f"rerun with: hetlm experiment --config {args.out}/{CONFIG_FILE} --out {args.out}")
    return 0
