"""The ``hetlm`` command line: one sub-command per pipeline stage.

Each sub-command lives in its own module under :mod:`application.commands` and exposes
``add_arguments(parser)`` and ``run(args) -> int``, and optionally ``parent_parsers()`` (options built
from settings dataclasses); :data:`COMMANDS` names them with their one-line help. Only the module of
the sub-command being run is imported; ``hetlm --help`` imports no command module, and ``hetlm COMMAND --help``
prints the help kept in ``application/command_help.json`` (:mod:`application.command_help`), so neither imports
torch, transformers or datasets.

Example:
    $ hetlm prepare simulator --out runs/default/data
    $ hetlm --threads 1 generate runs/default/hetlm events.csv --out predictions.jsonl
    $ hetlm --help
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from collections.abc import Iterable, Sequence

from .command_help import add_help_arguments, load_help_specs

# Sub-command -> (module, one-line help), in the order of the pipeline.
COMMANDS: dict[str, tuple[str, str]] = {
    "prepare": (
        "application.commands.prepare",
        "Read an event log (or the built-in simulator), build train/validation/test examples and the page tokenizer.",
    ),
    "pretrain": (
        "application.commands.pretrain",
        "Pretrain a single causal LM (OPT, Qwen2 or Llama family) over the page vocabulary of a prepared dataset.",
    ),
    "train": (
        "application.commands.train",
        "Train HeTLM (actor-critic, endogenous K) or the K-means clusterwise baseline from a pretrained single LM.",
    ),
    "evaluate": (
        "application.commands.evaluate",
        "Score models and simple baselines on a prepared test set: per-cluster and Combined tables, plots.",
    ),
    "generate": (
        "application.commands.generate",
        "Predict every user's next session (pages, cluster, cart/purchase probabilities) from an event log "
        "with a HeTLM model.",
    ),
    "experiment": (
        "application.commands.experiment",
        "Run the paper's protocol end to end (data, single LMs, K-means, HeTLM, baselines, evaluation).",
    ),
}
# Asking for a sub-command's help (argparse's own flags); abbreviations such as --he build the real parser.
HELP_OPTIONS = frozenset({"-h", "--help"})
# More torch threads than this rarely speed up these small models on CPU. Threads on cores that other
# jobs keep busy cost more than they give: on a 2-core machine at load 9, benchmarks/generation.py
# (200 users, `cpu` preset) took 5.9 s with 1 thread and 18.0 s with 2; the issue measured
# `hetlm generate --num-samples 16` at 611 s with all threads and 55 s with one.
MAX_DEFAULT_THREADS = 4


def default_threads() -> int:
    """The torch threads used without ``--threads``: the idle cores (usable cores minus the 1-minute load
    average, rounded to the nearest core), at least 1 and at most 4.

    Example:
        >>> 1 <= default_threads() <= MAX_DEFAULT_THREADS
        True
    """
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    idle = cores - os.getloadavg()[0] if hasattr(os, "getloadavg") else cores
    return max(1, min(round(idle), MAX_DEFAULT_THREADS))


def _add_global_options(parser: argparse.ArgumentParser) -> None:
    # dest differs from TrainingArguments' own ``log_level``, which the training commands accept after their name.
    parser.add_argument(
        "--log-level", dest="python_log_level", default="INFO", help="Python logging level (default: INFO)."
    )
    parser.add_argument(
        "--traceback",
        action="store_true",
        help="Show the full traceback of an error instead of one line (for bug reports).",
    )
    parser.add_argument(
        "--threads",
        type=_positive_int,
        metavar="N",
        help=f"torch CPU threads (torch.set_num_threads) before any work; default: the idle cores "
        f"(usable cores minus the load average), 1 to {MAX_DEFAULT_THREADS}, and never more than "
        "torch already uses (e.g. under OMP_NUM_THREADS).",
    )


def build_parser(
    commands: Iterable[str] | None = None, help_specs: dict[str, list[dict]] | None = None
) -> argparse.ArgumentParser:
    """The top-level parser; the options of ``commands`` (all when None) are added, importing their modules.

    The sub-commands in ``help_specs`` (:func:`application.command_help.load_help_specs`) and not in ``commands``
    get their options from there instead: enough to print their ``--help``, not to run them.

    Example:
        >>> parser = build_parser(commands=[])   # every sub-command listed, none imported
        >>> parser.prog, sorted(parser._subparsers._group_actions[0].choices) == sorted(COMMANDS)
        ('hetlm', True)
    """
    selected = set(COMMANDS) if commands is None else set(commands)
    help_specs = help_specs or {}
    parser = argparse.ArgumentParser(
        prog="hetlm",
        description="HeTLM: language models of browsing sessions (prepare, train, evaluate, generate).",
    )
    _add_global_options(parser)
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (module_name, help_text) in COMMANDS.items():
        if name not in selected:
            sub = subparsers.add_parser(name, help=help_text, description=help_text)
            if name in help_specs:
                add_help_arguments(sub, help_specs[name])
            continue
        module = importlib.import_module(module_name)
        parents = module.parent_parsers() if hasattr(module, "parent_parsers") else []
        sub = subparsers.add_parser(name, help=help_text, description=help_text, parents=parents)
        module.add_arguments(sub)
        sub.set_defaults(_run=module.run)
    return parser


def requested_command(argv: Sequence[str]) -> str | None:
    """The sub-command named in ``argv`` (after the global options), or None.

    Example:
        >>> requested_command(["--log-level", "DEBUG", "train", "--data", "d"]), requested_command(["--help"])
        ('train', None)
    """
    scout = argparse.ArgumentParser(add_help=False)
    _add_global_options(scout)
    scout.add_argument("command", nargs="?")
    known, _ = scout.parse_known_args(argv)
    return known.command if known.command in COMMANDS else None


def apply_threads(threads: int | None) -> int:
    """Set torch's CPU threads: ``threads`` exactly, or :func:`default_threads` without raising torch's own count.

    Returns the count in use.
    """
    import torch

    torch.set_num_threads(threads if threads is not None else min(torch.get_num_threads(), default_threads()))
    return torch.get_num_threads()


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``hetlm`` console script."""
    argv = sys.argv[1:] if argv is None else list(argv)
    command = requested_command(argv)
    if command is not None and HELP_OPTIONS.intersection(argv):
        help_specs = load_help_specs()
        if command in help_specs:
            build_parser([], help_specs).parse_args(argv)  # prints the help and exits
    args = build_parser([] if command is None else [command]).parse_args(argv)
    logging.basicConfig(level=args.python_log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger(__name__).debug("torch threads: %d", apply_threads(args.threads))
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


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


if __name__ == "__main__":
    sys.exit(main())
