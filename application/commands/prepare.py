"""``hetlm prepare``: events -> sessions -> examples, the page tokenizer and a data summary.

Example:
    $ hetlm prepare simulator --out runs/default/data --simulator-users 5000
    $ hetlm prepare simulator --out runs/forecast/data --split time --time-cutoff-quantile 0.9
    $ hetlm prepare 2019-Oct.csv --format rees46 --out runs/rees46/data --on-bad-rows skip \\
          --reader-option granularity=category
    $ hetlm prepare shop-log.csv --out runs/shop/data --cart-page /cart --cart-page '/basket*' \
          --purchase-page /checkout/thank-you --keep-query-parameter q
"""

from __future__ import annotations

import argparse
import logging
import sys

from tokenization.errors import DataFormatError
from tokenization.examples import SPLIT_MODES, TRAIN_EXAMPLE_MODES, ExampleOptions
from tokenization.readers import FORMATS

from .reader_options import reader_option

logger = logging.getLogger(__name__)

NAME = "prepare"
HELP = "Read an event log (or the built-in simulator), build train/validation/test examples and the page tokenizer."


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
    parser.add_argument("--train-examples", choices=TRAIN_EXAMPLE_MODES, default=defaults.train_examples,
                        help="every_session: a train user gives one example per session after its first; "
                             "last_session: one example per train user, its last session (the paper's protocol) "
                             "(default: %(default)s).")
    parser.add_argument("--split", choices=SPLIT_MODES, default=defaults.split,
                        help="user: a seeded split by user (the paper's protocol); time: a forecast, sessions before "
                             "the cut-off are history, each user's first session after it the target, the evaluation "
                             "users split into validation (--validation-fraction) and test (default: %(default)s).")
    parser.add_argument("--time-cutoff", default=None, metavar="DATE",
                        help="The time split's cut-off, ISO 8601 (e.g. 2019-11-20 or 2019-11-20T12:00:00Z; UTC unless "
                             "a zone is given) (default: the --time-cutoff-quantile of session start times).")
    parser.add_argument("--time-cutoff-quantile", type=float, default=defaults.time_cutoff_quantile,
                        help="The quantile of session start times used as the default cut-off (default: %(default)s).")
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
    parser.add_argument("--cart-page", action="append", default=[], metavar="PATTERN",
                        help="A page meaning 'added to cart', mapped to the outcome page 'cart': an exact name "
                             "(normalised like pages), a glob ('/basket*') or re:REGEX. Repeatable; the page 'cart' "
                             "(what the ga360 and rees46 readers emit) is always an outcome.")
    parser.add_argument("--purchase-page", action="append", default=[], metavar="PATTERN",
                        help="A page meaning 'purchased', mapped to the outcome page 'purchase' (as --cart-page).")
    parser.add_argument("--keep-query-parameter", action="append", default=[], metavar="NAME",
                        help="A query parameter kept by the URL normalisation (e.g. q for searches); every other "
                             "parameter, the fragment and trailing slashes are dropped. Repeatable.")
    parser.add_argument("--no-url-normalization", action="store_true",
                        help="Keep URL-like pages (starting with / or http(s)://) as they are, apart from case and "
                             "whitespace (normalised by default, see the README).")
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
            train_examples=args.train_examples,
            split=args.split,
            time_cutoff=args.time_cutoff,
            time_cutoff_quantile=args.time_cutoff_quantile,
        )
        if args.split == "user" and args.time_cutoff is not None:
            raise ValueError("--time-cutoff applies to --split time only")
        prepare(args.source, data_format, args.out, options, on_bad_rows=args.on_bad_rows,
                reader_options=reader_options, progress=not args.no_progress, cart_pages=args.cart_page,
                purchase_pages=args.purchase_page, normalize_urls=not args.no_url_normalization,
                keep_query_parameters=args.keep_query_parameter)
    except (DataFormatError, FileNotFoundError, ValueError) as error:
        logger.debug("hetlm prepare failed", exc_info=True)  # the traceback, with --log-level DEBUG
        print(f"hetlm prepare: error: {error}", file=sys.stderr)
        return 2
    print(f"Wrote {args.out}/dataset, {args.out}/tokenizer, {args.out}/summary.json and {args.out}/summary.md")
    return 0
