"""The committed sub-command help (application/command_help.json) is the real parsers' and renders as they do."""

from __future__ import annotations

import argparse
import json

import pytest

from application.cli import COMMANDS, build_parser
from application.command_help import (
    HELP_SPEC_FILE,
    add_help_arguments,
    command_specs,
    load_help_specs,
    parser_spec,
    write_help_specs,
)


def _sub_parsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    return parser._subparsers._group_actions[0].choices


def test_the_committed_file_is_what_the_parsers_give_now(tmp_path):
    assert write_help_specs(tmp_path / "help.json").read_text() == HELP_SPEC_FILE.read_text(), (
        f"{HELP_SPEC_FILE} is stale: run `make help-spec`"
    )
    assert load_help_specs() == command_specs()


def test_a_file_of_another_transformers_version_is_not_used(tmp_path):
    content = json.loads(HELP_SPEC_FILE.read_text())
    assert load_help_specs(HELP_SPEC_FILE).keys() == set(COMMANDS)
    (tmp_path / "old.json").write_text(json.dumps({**content, "transformers": "4.0.0"}))
    assert load_help_specs(tmp_path / "old.json") == {}


@pytest.mark.parametrize("columns", ["80", "140"])
def test_each_help_from_the_file_is_the_real_parsers_help(columns, monkeypatch):
    monkeypatch.setenv("COLUMNS", columns)
    real, from_file = _sub_parsers(build_parser()), _sub_parsers(build_parser([], load_help_specs()))
    for name in COMMANDS:
        assert from_file[name].format_help() == real[name].format_help(), name
        assert "--" in from_file[name].format_usage()


def test_a_spec_round_trip_keeps_groups_choices_nargs_and_expanded_defaults():
    parser = argparse.ArgumentParser(prog="demo")
    parser.add_argument("models", nargs="+", metavar="MODEL", help="Models (100%% of them).")
    parser.add_argument("--family", choices=("opt", "llama"), required=True, help="Family.")
    group = parser.add_argument_group("data", "Data options.")
    group.add_argument("--seed", type=int, default=7, help="Seed (default: %(default)s).")
    group.add_argument("--option", action="append", metavar="KEY=VALUE", dest="options")
    group.add_argument("--no-progress", action="store_true", help=argparse.SUPPRESS)
    spec = parser_spec(parser)
    assert spec[2]["actions"][0] == {
        "option_strings": ["--seed"],
        "dest": "seed",
        "action": "store",
        "help": "Seed (default: 7).",
    }
    rebuilt = argparse.ArgumentParser(prog="demo")
    add_help_arguments(rebuilt, spec)
    assert rebuilt.format_help() == parser.format_help()
    assert "Seed (default: 7)." in rebuilt.format_help() and "(100% of them)" in rebuilt.format_help()
    assert (
        rebuilt.format_usage().split()
        == "usage: demo [-h] --family {opt,llama} [--seed SEED] [--option KEY=VALUE] MODEL [MODEL ...]".split()
    )


def test_what_the_file_cannot_keep_is_refused_by_name():
    counting = argparse.ArgumentParser(prog="demo")
    counting.add_argument("-v", action="count")
    with pytest.raises(ValueError, match="demo v: action _CountAction is not kept"):
        parser_spec(counting)
    exclusive = argparse.ArgumentParser(prog="demo")
    exclusive.add_mutually_exclusive_group().add_argument("--a")
    with pytest.raises(ValueError, match="demo: mutually exclusive groups"):
        parser_spec(exclusive)
