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
from tokenization.examples import ExampleOptions
from tokenization.readers import FORMATS

from .data_options import PREPARE_KEYWORDS, add_data_arguments, data_option_values

logger = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the options of ``hetlm prepare``."""
    defaults = ExampleOptions()
    parser.add_argument("source", help="Event file or folder, or 'simulator' for the built-in (synthetic) data.")
    parser.add_argument(
        "--format",
        choices=FORMATS,
        default=None,
        help="Input format (default: 'simulator' for SOURCE 'simulator', else 'events', "
        "which picks CSV / Parquet / JSONL by file extension).",
    )
    parser.add_argument("--out", required=True, help="Output folder (dataset/, tokenizer/, summary.json, summary.md).")
    add_data_arguments(parser)
    parser.add_argument(
        "--seed",
        type=int,
        default=defaults.seed,
        help="Seed of the user split and of the simulator (default: %(default)s).",
    )
    parser.add_argument(
        "--simulator-users",
        type=int,
        default=None,
        help="Users to simulate when SOURCE is 'simulator' (default: the simulator's default).",
    )
    parser.add_argument("--no-progress", action="store_true", help="Hide progress bars.")


def run(args: argparse.Namespace) -> int:
    """Run ``hetlm prepare``; bad input prints one line to stderr and returns 2."""
    from tokenization.prepare import prepare

    data_format = args.format or ("simulator" if args.source == "simulator" else "events")
    try:
        values = data_option_values(args)
        reader_options = values.pop("reader_options", {})
        if data_format == "simulator":
            reader_options.setdefault("seed", args.seed)
            if args.simulator_users is not None:
                reader_options["num_users"] = args.simulator_users
        keywords = {name: values.pop(name) for name in PREPARE_KEYWORDS if name in values}
        prepare(
            args.source,
            data_format,
            args.out,
            ExampleOptions(**values, seed=args.seed),
            reader_options=reader_options,
            progress=not args.no_progress,
            **keywords,
        )
    except (DataFormatError, FileNotFoundError, ValueError) as error:
        logger.debug("hetlm prepare failed", exc_info=True)  # the traceback, with --log-level DEBUG
        print(f"hetlm prepare: error: {error}", file=sys.stderr)
        return 2
    print(f"Wrote {args.out}/dataset, {args.out}/tokenizer, {args.out}/summary.json and {args.out}/summary.md")
    return 0
