"""``hetlm generate``: predict the next session of every user of an event log with a saved HeTLM model.

For each user: the predicted next session (page names), the cluster the user was routed to (and its
readable label, ``cluster_label``, when the model folder holds ``cluster_profiles.json``), the
number of input sessions used, the count of input pages unknown to the model (``[UNK]``) and, with
``--num-samples N``, the estimated probability of a cart and of a purchase in the next session (the
share of N sampled sessions containing ``cart`` / ``purchase``). One row per user goes to OUT
(JSON lines or CSV) as each batch finishes; a summary line is printed and ``OUT``'s
``.summary.json`` sibling holds the counts (users predicted and skipped, unknown pages, bad rows).

Example:
    $ hetlm generate runs/default/hetlm events.csv --out predictions.jsonl
    $ hetlm generate runs/default/hetlm ga_sessions_*.json.gz --format ga360 --out p.csv --num-samples 20 --seed 1
    $ hetlm generate runs/default/hetlm simulator --simulator-users 500 --out p.jsonl
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import fields

from inference.batch_generation import PREDICTION_FORMATS, BatchGenerationOptions
from tokenization.readers import FORMATS as SOURCE_FORMATS

from .device_option import add_device_option, resolve_device
from .reader_options import reader_option


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register ``hetlm generate``'s arguments."""
    defaults = BatchGenerationOptions()
    parser.add_argument("model_dir", metavar="MODEL_DIR", help="A saved HeTLM model folder (with its page tokenizer).")
    parser.add_argument(
        "source",
        metavar="SOURCE",
        help="The event log: a file, a folder or a glob pattern; or 'simulator' for simulated (synthetic) users.",
    )
    parser.add_argument("--out", required=True, help="Output file: .jsonl or .csv (or see --output-format).")
    parser.add_argument(
        "--format",
        choices=SOURCE_FORMATS,
        help="Format of SOURCE (default: 'simulator' for SOURCE 'simulator', else 'events': "
        "a generic CSV / Parquet / JSONL log by extension).",
    )
    parser.add_argument(
        "--reader-option",
        "--format-option",
        dest="format_option",
        type=reader_option,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="A reader option, repeatable (values are JSON when they parse, else text), "
        "e.g. num_users=500 for the simulator, granularity=category for rees46.",
    )
    parser.add_argument(
        "--simulator-users",
        type=int,
        help="Users to simulate when SOURCE is 'simulator' (same as --reader-option num_users=N).",
    )
    parser.add_argument(
        "--output-format", choices=PREDICTION_FORMATS, help="Output format (default: from --out's extension)."
    )
    parser.add_argument(
        "--batch-size",
        type=int,
        default=defaults.batch_size,
        help=f"Users per generation batch (default: {defaults.batch_size}).",
    )
    parser.add_argument(
        "--max-input-sessions",
        type=int,
        help="A user's last sessions used as input (default: the model config's, else 3).",
    )
    parser.add_argument(
        "--max-new-tokens",
        type=int,
        default=defaults.max_new_tokens,
        help=f"Most tokens generated for the next session (default: {defaults.max_new_tokens}).",
    )
    parser.add_argument(
        "--num-samples",
        type=int,
        default=defaults.num_samples,
        help="Sampled sessions per user to estimate the cart and purchase probabilities (default: 0, off).",
    )
    parser.add_argument(
        "--temperature",
        type=float,
        default=defaults.temperature,
        help=f"Sampling temperature (default: {defaults.temperature}).",
    )
    parser.add_argument(
        "--top-k",
        type=int,
        default=defaults.top_k,
        help="Sample among the k most likely pages only (default: 0, all pages).",
    )
    parser.add_argument(
        "--seed", type=int, default=defaults.seed, help=f"Seed of the sampling (default: {defaults.seed})."
    )
    parser.add_argument(
        "--session-gap-minutes",
        type=float,
        default=defaults.session_gap_minutes,
        help=f"Inactivity that splits events without a session id (default: {defaults.session_gap_minutes:g}).",
    )
    parser.add_argument(
        "--min-session-length",
        type=int,
        default=defaults.min_session_length,
        help=f"Sessions with fewer pages are not used (default: {defaults.min_session_length}).",
    )
    parser.add_argument(
        "--drop-consecutive-duplicates",
        action="store_true",
        help="Drop a page view repeating the previous one in its session (use it if the model's data did).",
    )
    parser.add_argument(
        "--on-bad-rows",
        choices=("error", "skip"),
        default=defaults.on_bad_rows,
        help="Stop at the first malformed row, or skip and count such rows (default: error).",
    )
    add_device_option(parser)
    parser.add_argument("--no-progress", action="store_true", help="Hide the progress bar.")


def run(args: argparse.Namespace) -> int:
    """Predict, write the rows and the summary, print the summary line; exit 2 on bad input."""
    from transformers.utils import logging as transformers_logging

    from inference.batch_generation import BatchGenerationError, generate_predictions, summary_line

    if args.no_progress:
        transformers_logging.disable_progress_bar()
    option_names = [field.name for field in fields(BatchGenerationOptions) if field.name != "progress"]
    try:
        options = BatchGenerationOptions(
            **{name: getattr(args, name) for name in option_names}, progress=not args.no_progress
        )
        format_options = dict(args.format_option)
        if args.simulator_users is not None:
            format_options["num_users"] = args.simulator_users
        summary = generate_predictions(
            args.model_dir,
            args.source,
            args.out,
            source_format=args.format,
            format_options=format_options,
            output_format=args.output_format,
            options=options,
            device=resolve_device(args.device),
        )
    except BatchGenerationError as error:
        print(f"hetlm generate: error: {error}", file=sys.stderr)
        return 2
    print(f"hetlm generate: {summary_line(summary)}")
    return 0
