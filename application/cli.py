"""The ``hetlm`` command line: one sub-command per pipeline stage.

Each sub-command lives in its own module under :mod:`application.commands` and exposes
``NAME``, ``HELP``, ``add_arguments(parser)`` and ``run(args) -> int``.

Example:
    $ hetlm prepare simulator --out runs/default/data
    $ hetlm --help
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

COMMAND_MODULES: tuple[str, ...] = (
    "application.commands.prepare",
    "application.commands.pretrain",
    "application.commands.train",
    "application.commands.evaluate",
    "application.commands.generate",
    "application.commands.experiment",
)


def build_parser() -> argparse.ArgumentParser:
    """Build the top-level parser with every registered sub-command."""
    parser = argparse.ArgumentParser(
        prog="hetlm",
        description="HeTLM: language models of browsing sessions (prepare, train, evaluate, generate).",
    )
    parser.add_argument("--log-level", default="INFO", help="Python logging level (default: INFO).")
    parser.add_argument("--traceback", action="store_true",
                        help="Show the full traceback of an error instead of one line (for bug reports).")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module_name in COMMAND_MODULES:
        module = importlib.import_module(module_name)
        sub = subparsers.add_parser(module.NAME, help=module.HELP, description=module.HELP)
        module.add_arguments(sub)
        sub.set_defaults(_run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``hetlm`` console script."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return int(args._run(args) or 0)
    except (ValueError, OSError) as error:
        # Bad input (a malformed file, a wrong option value, a missing folder) is the user's to fix:
        # one clear line, not a stack trace from deep inside a library.
        if args.traceback:
            raise
        print(f"hetlm {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        # Outputs are written atomically and stages resume, so an interrupt loses nothing to clean up.
        if args.traceback:
            raise
        print(f"hetlm {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
