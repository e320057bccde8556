"""``hetlm prepare``: events -> sessions -> examples, the page tokenizer and a data summary.

Example:
    $ hetlm prepare simulator --out runs/default/data --simulator-users 5000
    $ hetlm prepare 2019-Oct.csv --format rees46 --out runs/rees46/data --on-bad-rows skip \\
          --reader-option granularity=category
"""

from __future__ import annotations

import argparse
import logging
import sys

from tokenization.errors import DataFormatError
from tokenization.examples import ExampleOptions
from tokenization.readers import FORMATS

from .reader_options import reader_option

logger = logging.getLogger(__name__)


def _percentile(value: str) -> float | None:
    if value.lower() in ("none", "off"):
        return None
    number = float(value)
    if not 0 < number <= 100:
        raise argparse.ArgumentTypeError(f"must be in (0, 100] or 'none', got {value}")
    return number


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the options of ``hetlm prepare``."""
    defaults = ExampleOptions()
    parser.add_argument("source", help="Event file or folder, or 'simulator' for the built-in (synthetic) data.")
    parser.add_argument("--format", choices=FORMATS, default=None,
                        help="Input format (default: 'simulator' for SOURCE 'simulator', else 'events', "
                             "which picks CSV / Parquet / JSONL by file extension).")
    parser.add_argument("--out", required=True, help="Output folder (dataset/, tokenizer/, summary.json, summary.md).")
    parser.add_argument("--session-gap-minutes", type=float, default=defaults.session_gap_minutes,
                        help="Inactivity that starts a new session, for events without a session id (default: %(default)s).")
    parser.add_argument("--min-session-length", type=int, default=defaults.min_session_length,
                        help="Drop sessions with fewer pages (default: %(default)s).")
    parser.add_argument("--max-session-length-percentile", type=_percentile,
                        default=defaults.max_session_length_percentile,
                        help="Drop sessions longer than this percentile of session lengths; 'none' keeps all "
                             "(default: %(default)s).")
    parser.add_argument("--max-input-sessions", type=int, default=defaults.max_input_sessions,
                        help="Sessions before the target used as input (default: %(default)s).")
    parser.add_argument("--test-fraction", type=float, default=defaults.test_fraction,
                        help="Share of users in the test split (default: %(default)s).")
    parser.add_argument("--validation-fraction", type=float, default=defaults.validation_fraction,
                        help="Share of the other users in the validation split (default: %(default)s).")
    parser.add_argument("--drop-consecutive-duplicates", action="store_true",
                        help="Drop page views repeating the previous page of the session (reloads); kept by default.")
    parser.add_argument("--seed", type=int, default=defaults.seed,
                        help="Seed of the user split and of the simulator (default: %(default)s).")
    parser.add_argument("--on-bad-rows", choices=("error", "skip"), default="error",
                        help="Stop at the first malformed row, or skip and count malformed rows (default: %(default)s).")
    parser.add_argument("--simulator-users", type=int, default=None,
                        help="Users to simulate when SOURCE is 'simulator' (default: the simulator's default).")
    parser.add_argument("--reader-option", type=reader_option, action="append", default=[], metavar="KEY=VALUE",
                        help="An option of the format's reader, e.g. granularity=category (rees46) or "
                             "user_column=visitor (events); for the simulator a SimulatorConfig field. Repeatable.")
    parser.add_argument("--no-progress", action="store_true", help="Hide progress bars.")


def run(args: argparse.Namespace) -> int:
    """Run ``hetlm prepare``; bad input prints one line to stderr and returns 2."""
    from tokenization.prepare import prepare

    data_format = args.format or ("simulator" if args.source == "simulator" else "events")
    reader_options = dict(args.reader_option)
    if data_format == "simulator":
        reader_options.setdefault("seed", args.seed)
        if args.simulator_users is not None:
            reader_options["num_users"] = args.simulator_users
    try:
        options = ExampleOptions(
            session_gap_minutes=args.session_gap_minutes,
            min_session_length=args.min_session_length,
            max_session_length_percentile=args.max_session_length_percentile,
            max_input_sessions=args.max_input_sessions,
            test_fraction=args.test_fraction,
            validation_fraction=args.validation_fraction,
            seed=args.seed,
            drop_consecutive_duplicates=args.drop_consecutive_duplicates,
        )
        prepare(args.source, data_format, args.out, options, on_bad_rows=args.on_bad_rows,
                reader_options=reader_options, progress=not args.no_progress)
    except (DataFormatError, FileNotFoundError, ValueError) as error:
        logger.debug("hetlm prepare failed", exc_info=True)  # the traceback, with --log-level DEBUG
        print(f"hetlm prepare: error: {error}", file=sys.stderr)
        return 2
    print(f"Wrote {args.out}/dataset, {args.out}/tokenizer, {args.out}/summary.json and {args.out}/summary.md")
    return 0
