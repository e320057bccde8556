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
    $ hetlm experiment --source visits.csv --reader-option user_column=visitor --session-gap-minutes 20 \\
          --split time --on-bad-rows skip --out runs/visits
    $ hetlm experiment --data runs/visits/data --num-clusters 4 --out runs/visits-k4

A config file holds the same settings (:class:`~application.experiment_settings.ExperimentSettings`): the
experiment's own keys, and the training and data settings flat (``num_clusters``, ``family``,
``reader_options``, ``split``...) or nested (``clusterwise: {num_clusters: 4, learning_rate: 0.001}``,
``pretraining: {...}``, ``data_options: {...}``); every field of ``ClusterwiseTrainingArguments``,
``PretrainingArguments`` and ``ExampleOptions`` can be given there.
"""

from __future__ import annotations

import argparse

from tokenization.simulator import SCENARIOS
from trainers.model_sizes import FAMILIES
from trainers.training_arguments import INITIAL_PARTITIONS

from ..config_files import load_config_file
from ..experiment_settings import PRESETS, ExperimentSettings, merge_settings, route_setting
from .data_options import add_data_arguments, data_option_values


def _pair(value: str) -> tuple[float, float]:
    try:
        alpha, beta = (float(part) for part in value.split(","))
    except ValueError as error:
        raise argparse.ArgumentTypeError(
            f"an (alpha, beta) pair is written ALPHA,BETA (e.g. 5,9), got {value!r}"
        ) from error
    return alpha, beta


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register ``hetlm experiment``'s options (each defaults to the config file, then the preset)."""
    parser.add_argument(
        "--out", default="runs/default", help="Run folder (default: runs/default); a rerun resumes it."
    )
    parser.add_argument("--preset", default="default", choices=sorted(PRESETS), help="Size preset (default: default).")
    parser.add_argument(
        "--config", help="YAML or JSON file of settings (keys as the flags); flags given here override it."
    )
    parser.add_argument("--force", action="store_true", help="Redo every stage even when its output is complete.")
    parser.add_argument("--source", help="'simulator' (default) or an event log file/folder.")
    parser.add_argument("--format", help="Reader format: simulator, events, csv, parquet, jsonl, ga360, rees46.")
    parser.add_argument("--simulator-users", type=int, help="Users the simulator draws.")
    parser.add_argument(
        "--simulator-scenario",
        choices=sorted(SCENARIOS),
        help="default (segments differ in what they browse) or behaviour (only in how they browse).",
    )
    parser.add_argument("--family", choices=FAMILIES, help="LM family of every model (default: llama).")
    parser.add_argument(
        "--num-clusters", type=int, help="Initial K of HeTLM and K of the K-means baseline (default 6)."
    )
    parser.add_argument(
        "--ablation",
        type=_pair,
        nargs="+",
        metavar="ALPHA,BETA",
        help="(alpha, beta) pairs, one HeTLM each (default: 5,9).",
    )
    parser.add_argument("--centroid-distance", choices=("paper", "normalized"), help="L3 variant (default: paper).")
    parser.add_argument("--pretrain-epochs", type=float, help="Epochs of the single small LM.")
    parser.add_argument("--large-pretrain-epochs", type=float, help="Epochs of the single large LM.")
    parser.add_argument("--clusterwise-epochs", type=float, help="Epochs of HeTLM and of the K-means fine-tuning.")
    parser.add_argument(
        "--l1-reduction",
        choices=("sum", "mean"),
        help="Each user's NLL in L1: summed over tokens (the paper's, default) or the per-token mean.",
    )
    parser.add_argument(
        "--selector-label-smoothing",
        type=float,
        help="Label smoothing of the selector's (re)training; keeps it soft (default 0.3).",
    )
    parser.add_argument(
        "--reassignment",
        choices=("hard_em", "online_em", "heldout_em", "none"),
        help="hard_em: retrain the selector towards argmin_k NLL_k every few epochs; online_em (default): the same "
        "on the NLLs L1 computed before training on each row, the critic following the labels; heldout_em: online "
        "EM scored on each user's last session, kept out of training.",
    )
    parser.add_argument(
        "--retire-min-gain",
        type=float,
        help="Retire a cluster whose users gain less than this many nats each over their best other cluster.",
    )
    parser.add_argument(
        "--initial-partition",
        choices=INITIAL_PARTITIONS,
        help="HeTLM's start: K-means on the encoder's embeddings (default), on browsing statistics, or the one "
        "with the lower routed validation NLL.",
    )
    parser.add_argument(
        "--merge-max-cost",
        type=float,
        help="Retire a cluster when routing its validation users to their next best cluster raises the routed "
        "validation NLL by at most this many nats per token.",
    )
    parser.add_argument("--reassign-every-epochs", type=int, help="Hard-EM step every N epochs (default 1).")
    parser.add_argument("--reassign-every-steps", type=int, help="Hard-EM step every N steps instead.")
    parser.add_argument(
        "--reassign-warmup-steps", type=int, help="No hard-EM step (nor online-EM score) before this step."
    )
    parser.add_argument(
        "--grad-clipping",
        choices=("global", "separate"),
        help="global: one gradient norm; separate (default): the predictors and the selector clipped each on its own.",
    )
    parser.add_argument(
        "--kmeans-silhouette",
        action="store_true",
        default=None,
        help="Also train the K-means baseline with K chosen by silhouette (kmeans-auto; off by default: about a "
        "minute of the default run).",
    )
    parser.add_argument(
        "--no-cluster-batches",
        dest="cluster_batches",
        action="store_false",
        default=None,
        help="Shuffled HeTLM training batches (default: each batch holds one cluster's rows, as the K-means "
        "baseline's).",
    )
    parser.add_argument(
        "--routing",
        choices=("selector", "likelihood"),
        help="HeTLM's routing: the predictor with the lowest NLL of the input history (default) or the selector.",
    )
    parser.add_argument("--reassign-selector-epochs", type=int, help="Selector epochs per hard-EM step (default 5).")
    parser.add_argument(
        "--reassign-size-prior", type=float, help="Weight of -log(cluster share) in the hard-EM choice (default 1)."
    )
    parser.add_argument("--max-test-users", type=int, help="Score at most this many test users.")
    parser.add_argument("--seed", type=int, help="Seed of the data split, training and generation (default 0).")
    parser.add_argument(
        "--data",
        dest="prepared_data",
        metavar="DIR",
        help="A folder written by `hetlm prepare` to use as the data (the data stage is skipped).",
    )
    add_data_arguments(parser.add_argument_group("data options (as `hetlm prepare`'s)"), defaults=False)


# The flags (besides the data options) that are settings; each goes where route_setting says.
FLAGS_TO_SETTINGS = (
    "source",
    "format",
    "prepared_data",
    "simulator_users",
    "simulator_scenario",
    "family",
    "num_clusters",
    "ablation",
    "centroid_distance",
    "pretrain_epochs",
    "large_pretrain_epochs",
    "clusterwise_epochs",
    "max_test_users",
    "seed",
    "l1_reduction",
    "selector_label_smoothing",
    "reassignment",
    "reassign_every_epochs",
    "reassign_every_steps",
    "retire_min_gain",
    "merge_max_cost",
    "initial_partition",
    "reassign_warmup_steps",
    "routing",
    "grad_clipping",
    "cluster_batches",
    "kmeans_silhouette",
    "reassign_selector_epochs",
    "reassign_size_prior",
)


def experiment_settings(args: argparse.Namespace) -> ExperimentSettings:
    """The run's settings: the flags given > the ``--config`` file > the preset (the override mappings and
    ``reader_options`` merged key by key).

    Example:
        >>> parser = argparse.ArgumentParser()
        >>> add_arguments(parser)
        >>> settings = experiment_settings(parser.parse_args(["--preset", "smoke", "--num-clusters", "2",
        ...                                                   "--session-gap-minutes", "10"]))
        >>> settings.num_clusters, settings.example_options().session_gap_minutes
        (2, 10.0)
    """
    file_values = load_config_file(args.config) if args.config else {}
    preset = file_values.pop("preset", None) or args.preset
    flags = {key: value for key, value in vars(args).items() if value is not None and key in FLAGS_TO_SETTINGS}
    explicit = merge_settings(
        *(route_setting(key, value) for key, value in file_values.items()),
        *(route_setting(key, value) for key, value in flags.items()),
        {"data_options": data_option_values(args)},
    )
    if explicit.get("source") not in (None, "simulator") and "format" not in explicit:
        explicit["format"] = "events"
    return ExperimentSettings.from_preset(preset, **explicit)


def run(args: argparse.Namespace) -> int:
    """Run or resume the experiment, print the summary table and the stage timings."""
    from ..experiment import CONFIG_FILE, run_experiment
    from ..experiment_report import summary_table

    settings = experiment_settings(args)
    summary = run_experiment(settings, args.out, force=args.force)
    label = " (SYNTHETIC DATA: simulator)" if summary["synthetic"] else ""
    print(f"\n# HeTLM experiment: test users, Combined{label}\n")
    print(summary_table(summary))
    print("\n# Stage timings\n")
    for timing in summary["stage_timings"]:
        note = " (reused)" if timing["reused"] else ""
        print(f"- {timing['name']}: {timing['seconds']:.1f} s{note}")
    print(f"- total: {summary['total_seconds']:.1f} s")
    print(
        f"\nReport: {args.out}/report.md; summary: {args.out}/summary.json; "
        f"rerun with: hetlm experiment --config {args.out}/{CONFIG_FILE} --out {args.out}"
    )
    return 0
