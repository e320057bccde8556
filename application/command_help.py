"""Each sub-command's ``--help`` from a committed file, so asking for it imports no torch, transformers or datasets.

``command_help.json`` holds, for every sub-command, the argument groups and options of its real parser
(:func:`application.cli.build_parser`, the settings flags built by ``transformers.HfArgumentParser``): option
strings, destination, action, nargs, choices, metavar, required, and the help text already expanded
(``%(default)s`` filled in). :func:`add_help_arguments` rebuilds a parser that renders the same ``--help``; it is
used only to print help. Every run still parses its flags with the real parser, so HfArgumentParser stays the one
source of the settings' flags. ``tests/test_command_help.py`` fails when the file and the real parsers diverge;
``make help-spec`` (``python -m application.command_help``) rewrites it. Under another transformers version than
the file's, the real parsers print the help (slowly).

Why a file and not lazy imports (measured on the shared 2-core machine, ``python -X importtime`` and
``benchmarks/cli_help.py``, best of 3): the settings dataclasses subclass ``transformers.TrainingArguments``, and
``import transformers.training_args`` imports torch: 2.8 s of CPU, 5.6-8.3 s of wall time. Even ``import
transformers`` alone (what ``HfArgumentParser`` needs) takes 0.9 s of CPU and 2.1-3.1 s of wall time at load 5, so
no parser built by HfArgumentParser prints its help in under 2 s here. The other sub-commands read their choices
from modules that import datasets or torch; making each light would move constants out of a dozen modules. At load
4.9, ``hetlm COMMAND --help`` took 4.9 s (prepare), 18.0 (pretrain), 18.7 (train), 4.3 (evaluate), 16.7 (generate)
and 15.2 (experiment); read from this file, 0.12-0.15 s each at load 6.6 (it imports argparse and json only).

Example:
    >>> parser = argparse.ArgumentParser(prog="hetlm train")
    >>> add_help_arguments(parser, load_help_specs()["train"])
    >>> "--num-clusters" in parser.format_help() and "--learning-rate" in parser.format_help()
    True
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import sys
from pathlib import Path
from typing import Any

HELP_SPEC_FILE = Path(__file__).with_name("command_help.json")
# The argparse actions the commands use, by class -> the ``action=`` name that builds them.
ACTIONS: dict[type, str] = {
    argparse._StoreAction: "store",
    argparse._StoreTrueAction: "store_true",
    argparse._StoreFalseAction: "store_false",
    argparse._AppendAction: "append",
    argparse._HelpAction: "help",
}


def parser_spec(parser: argparse.ArgumentParser) -> list[dict[str, Any]]:
    """The argument groups of ``parser``, each with its options, as JSON-ready data.

    Raises ``ValueError`` for what :func:`add_help_arguments` cannot rebuild (an unknown action class,
    mutually exclusive groups).

    Example:
        >>> parser = argparse.ArgumentParser()
        >>> _ = parser.add_argument("--seed", type=int, default=0, help="Seed (default: %(default)s).")
        >>> parser_spec(parser)[1]["actions"][1]
        {'option_strings': ['--seed'], 'dest': 'seed', 'action': 'store', 'help': 'Seed (default: 0).'}
    """
    if parser._mutually_exclusive_groups:
        raise ValueError(f"{parser.prog}: mutually exclusive groups are not kept by {__name__}")
    formatter = parser._get_formatter()
    return [
        {
            "title": group.title,
            "description": group.description,
            "actions": [_action_spec(action, formatter, parser.prog) for action in group._group_actions],
        }
        for group in parser._action_groups
    ]


def _action_spec(action: argparse.Action, formatter: argparse.HelpFormatter, prog: str) -> dict[str, Any]:
    if type(action) not in ACTIONS:
        raise ValueError(f"{prog} {action.dest}: action {type(action).__name__} is not kept by {__name__}")
    spec: dict[str, Any] = {
        "option_strings": action.option_strings,
        "dest": action.dest,
        "action": ACTIONS[type(action)],
    }
    if ACTIONS[type(action)] in ("store", "append") and action.nargs is not None:
        spec["nargs"] = action.nargs
    if action.choices is not None:
        spec["choices"] = [str(choice) for choice in action.choices]
    if action.metavar is not None:
        spec["metavar"] = list(action.metavar) if isinstance(action.metavar, tuple) else action.metavar
    if action.required:
        spec["required"] = True
    if action.help is not None:
        spec["help"] = action.help if action.help == argparse.SUPPRESS else formatter._expand_help(action)
    return spec


def add_help_arguments(parser: argparse.ArgumentParser, groups: list[dict[str, Any]]) -> None:
    """Add the options of :func:`parser_spec`'s ``groups`` to ``parser`` (made with argparse's ``-h/--help``).

    The options parse only as text and without choices (``--help`` is all they are for); a ``choices`` list is
    shown as argparse shows choices.
    """
    existing = {group.title: group for group in parser._action_groups}
    for group in groups:
        container = existing.get(group["title"]) or parser.add_argument_group(group["title"], group["description"])
        for action in group["actions"]:
            if action["action"] == "help":
                continue  # the parser's own -h/--help
            options: dict[str, Any] = {"action": action["action"], "required": action.get("required", False)}
            if "nargs" in action:
                options["nargs"] = action["nargs"]
            metavar = action.get("metavar")
            if metavar is None and "choices" in action:
                metavar = "{" + ",".join(action["choices"]) + "}"
            if metavar is not None:
                options["metavar"] = tuple(metavar) if isinstance(metavar, list) else metavar
            if "help" in action:
                options["help"] = action["help"] if action["help"] == argparse.SUPPRESS else _escape(action["help"])
            if action["option_strings"]:
                container.add_argument(*action["option_strings"], dest=action["dest"], **options)
            else:
                options.pop("required")
                container.add_argument(action["dest"], **options)


def _escape(text: str) -> str:
    """``text`` as an argparse help string that expands back to ``text``."""
    return text.replace("%", "%%")


def command_specs() -> dict[str, list[dict[str, Any]]]:
    """:func:`parser_spec` of every sub-command's real parser (imports every command module, torch included)."""
    from .cli import build_parser

    subparsers = build_parser()._subparsers._group_actions[0]
    return {name: parser_spec(parser) for name, parser in subparsers.choices.items()}


def load_help_specs(path: str | Path = HELP_SPEC_FILE) -> dict[str, list[dict[str, Any]]]:
    """The committed :func:`command_specs`, or ``{}`` when they were written under another transformers version
    (``TrainingArguments``' flags and help may differ: the real parsers must print the help then).
    """
    content = json.loads(Path(path).read_text(encoding="utf-8"))
    return content["commands"] if content["transformers"] == _transformers_version() else {}


def write_help_specs(path: str | Path = HELP_SPEC_FILE) -> Path:
    """Write :func:`command_specs` and the transformers version they come from to ``path`` (``make help-spec``)."""
    path = Path(path)
    content = {"transformers": _transformers_version(), "commands": command_specs()}
    path.write_text(json.dumps(content, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def _transformers_version() -> str:
    return importlib.metadata.version("transformers")  # read from its metadata: no import


if __name__ == "__main__":
    print(f"wrote {write_help_specs(*sys.argv[1:2])}")
