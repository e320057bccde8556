"""The data options shared by ``hetlm prepare`` and ``hetlm experiment``: the reader, sessions, filters, split.

Each option's destination is a field of :class:`~tokenization.examples.ExampleOptions` or a keyword option of
:func:`tokenization.prepare.prepare` (``on_bad_rows``, ``reader_options``), so :func:`data_option_values`
hands them on as one mapping.

Example:
    >>> parser = argparse.ArgumentParser()
    >>> add_data_arguments(parser, defaults=False)
    >>> data_option_values(parser.parse_args(["--split", "time", "--reader-option", "user_column=visitor"]))
    {'split': 'time', 'reader_options': {'user_column': 'visitor'}}
"""

from __future__ import annotations

import argparse
from dataclasses import fields
from typing import Any

from tokenization.examples import SPLIT_MODES, TRAIN_EXAMPLE_MODES, ExampleOptions
from tokenization.readers.bad_rows import ON_BAD_ROWS_CHOICES

from .reader_options import reader_option

# The keyword options of tokenization.prepare.prepare that are command-line flags here.
PREPARE_KEYWORDS = ("on_bad_rows", "cart_pages", "purchase_pages", "keep_query_parameters", "normalize_urls")


def _percentile(value: str) -> float | None:
    if value.lower() in ("none", "off"):
        return None
    number = float(value)
    if not 0 < number <= 100:
        raise argparse.ArgumentTypeError(f"must be in (0, 100] or 'none', got {value}")
    return number


def add_data_arguments(parser: argparse.ArgumentParser, defaults: bool = True) -> None:
    """Register the data options; with ``defaults=False`` an option not given is left out of the namespace
    (the experiment's config file and preset then decide)."""
    example_defaults = ExampleOptions()

    def default(value: Any) -> dict[str, Any]:
        return {"default": value if defaults else argparse.SUPPRESS}

    shown = " (default: %(default)s)" if defaults else ""
    parser.add_argument(
        "--session-gap-minutes",
        type=float,
        **default(example_defaults.session_gap_minutes),
        help=f"Inactivity that starts a new session, for events without a session id{shown}.",
    )
    parser.add_argument(
        "--min-session-length",
        type=int,
        **default(example_defaults.min_session_length),
        help=f"Drop sessions with fewer pages{shown}.",
    )
    parser.add_argument(
        "--max-session-length-percentile",
        type=_percentile,
        **default(example_defaults.max_session_length_percentile),
        help=f"Drop sessions longer than this percentile of session lengths; 'none' keeps all{shown}.",
    )
    parser.add_argument(
        "--max-input-sessions",
        type=int,
        **default(example_defaults.max_input_sessions),
        help=f"Sessions before the target used as input{shown}.",
    )
    parser.add_argument(
        "--test-fraction",
        type=float,
        **default(example_defaults.test_fraction),
        help=f"Share of users in the test split{shown}.",
    )
    parser.add_argument(
        "--validation-fraction",
        type=float,
        **default(example_defaults.validation_fraction),
        help=f"Share of the other users in the validation split{shown}.",
    )
    parser.add_argument(
        "--train-examples",
        choices=TRAIN_EXAMPLE_MODES,
        **default(example_defaults.train_examples),
        help="every_session: a train user gives one example per session after its first; "
        "last_session: one example per train user, its last session (the paper's protocol)"
        f"{shown}.",
    )
    parser.add_argument(
        "--split",
        choices=SPLIT_MODES,
        **default(example_defaults.split),
        help="user: a seeded split by user (the paper's protocol); time: a forecast, sessions before "
        "the cut-off are history, each user's first session after it the target, the evaluation "
        f"users split into validation (--validation-fraction) and test{shown}.",
    )
    parser.add_argument(
        "--time-cutoff",
        **default(None),
        metavar="DATE",
        help="The time split's cut-off, ISO 8601 (e.g. 2019-11-20 or 2019-11-20T12:00:00Z; UTC unless "
        "a zone is given) (default: the --time-cutoff-quantile of session start times).",
    )
    parser.add_argument(
        "--time-cutoff-quantile",
        type=float,
        **default(example_defaults.time_cutoff_quantile),
        help=f"The quantile of session start times used as the default cut-off{shown}.",
    )
    parser.add_argument(
        "--drop-consecutive-duplicates",
        action="store_true",
        **default(False),
        help="Drop page views repeating the previous page of the session (reloads); kept by default.",
    )
    parser.add_argument(
        "--on-bad-rows",
        choices=ON_BAD_ROWS_CHOICES,
        **default("error"),
        help=f"Stop at the first malformed row, or skip and count malformed rows{shown}.",
    )
    parser.add_argument(
        "--reader-option",
        type=reader_option,
        action="append",
        **default([]),
        metavar="KEY=VALUE",
        help="An option of the format's reader, e.g. granularity=category (rees46) or "
        "user_column=visitor (events); for the simulator a SimulatorConfig field. Repeatable.",
    )
    parser.add_argument(
        "--cart-page",
        dest="cart_pages",
        action="append",
        **default([]),
        metavar="PATTERN",
        help="A page meaning 'added to cart', mapped to the outcome page 'cart': an exact name "
        "(normalised like pages), a glob ('/basket*') or re:REGEX. Repeatable; the page 'cart' "
        "(what the ga360 and rees46 readers emit) is always an outcome.",
    )
    parser.add_argument(
        "--purchase-page",
        dest="purchase_pages",
        action="append",
        **default([]),
        metavar="PATTERN",
        help="A page meaning 'purchased', mapped to the outcome page 'purchase' (as --cart-page).",
    )
    parser.add_argument(
        "--keep-query-parameter",
        dest="keep_query_parameters",
        action="append",
        **default([]),
        metavar="NAME",
        help="A query parameter kept by the URL normalisation (e.g. q for searches); every other "
        "parameter, the fragment and trailing slashes are dropped. Repeatable.",
    )
    parser.add_argument(
        "--no-url-normalization",
        dest="normalize_urls",
        action="store_false",
        **default(True),
        help="Keep URL-like pages (starting with / or http(s)://) as they are, apart from case and "
        "whitespace (normalised by default, see the README).",
    )


def data_option_values(args: argparse.Namespace) -> dict[str, Any]:
    """The data options present in ``args``: ``ExampleOptions`` fields, ``prepare``'s keyword options
    (``on_bad_rows``, the outcome pages, the URL normalisation) and ``reader_options`` (the ``--reader-option``
    pairs as a mapping; left out when none was given)."""
    names = {item.name for item in fields(ExampleOptions)}
    values = {key: value for key, value in vars(args).items() if key in names and key != "seed"}
    for name in PREPARE_KEYWORDS:
        if name in vars(args):
            values[name] = vars(args)[name]
    if getattr(args, "reader_option", None):
        values["reader_options"] = dict(args.reader_option)
    return values
