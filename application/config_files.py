"""Settings dataclasses filled from a YAML/JSON config file and command-line flags.

The flags are the dataclasses' fields (:func:`settings_parser`, ``transformers.HfArgumentParser``);
precedence: flag given on the command line > config file > dataclass default (:func:`build_arguments`).
Keys may use dashes or underscores (``min-cluster-size`` = ``min_cluster_size``).

Example:
    >>> from trainers.training_arguments import ClusterwiseTrainingArguments
    >>> (args,) = build_arguments((ClusterwiseTrainingArguments,), {"alpha": 1.0, "beta": 2.0}, {"alpha": 0.5})
    >>> args.alpha, args.beta
    (0.5, 2.0)
"""

from __future__ import annotations

import argparse
import json
from dataclasses import fields
from pathlib import Path
from typing import Any

import yaml


def load_config_file(path: str | Path) -> dict[str, Any]:
    """Read a ``.yaml``/``.yml`` or ``.json`` file holding one mapping of setting -> value.

    Example:
        >>> import tempfile, os
        >>> path = os.path.join(tempfile.mkdtemp(), "train.json")
        >>> _ = open(path, "w").write('{"min-cluster-size": 5}')
        >>> load_config_file(path)
        {'min_cluster_size': 5}
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"config file {path} does not exist")
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() in (".yaml", ".yml"):
        values = yaml.safe_load(text)
    elif path.suffix.lower() == ".json":
        values = json.loads(text)
    else:
        raise ValueError(f"config file {path}: expected a .yaml, .yml or .json file")
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise ValueError(f"config file {path}: expected a mapping of setting -> value, got {type(values).__name__}")
    return {str(key).replace("-", "_"): value for key, value in values.items()}


def settings_parser(*dataclass_types: type) -> argparse.ArgumentParser:
    """A parent parser (``add_help=False``) with one option per field of ``dataclass_types``, built by
    ``transformers.HfArgumentParser`` from the fields' types, choices and ``help`` metadata.

    Options not given on the command line are left out of the namespace (their default is
    ``argparse.SUPPRESS``), so :func:`build_arguments` can tell a flag from a default.

    Example:
        >>> from trainers.training_arguments import PretrainingArguments
        >>> vars(settings_parser(PretrainingArguments).parse_args(["--epochs", "2"]))
        {'num_train_epochs': 2.0}
    """
    from transformers import HfArgumentParser

    parser = HfArgumentParser(dataclass_types, add_help=False)
    names = _field_names(dataclass_types)
    for action in parser._actions:  # set_defaults would put SUPPRESS in the namespace, where argparse converts it
        if action.dest in names:
            action.default = argparse.SUPPRESS
    return parser


def build_arguments(
    dataclass_types: tuple[type, ...], file_values: dict[str, Any], cli_values: dict[str, Any]
) -> tuple[Any, ...]:
    """One instance per dataclass from the fields' defaults, then ``file_values``, then the options given in
    ``cli_values`` (a namespace of :func:`settings_parser`'s, as a dict; other keys are ignored).

    Keys that are not fields may be the short names of :data:`trainers.training_arguments.ARGUMENT_ALIASES`
    (``epochs``).
    Raises ``ValueError`` naming any key of the file that is not a field.

    Example:
        >>> from trainers.training_arguments import PretrainingArguments
        >>> (args,) = build_arguments((PretrainingArguments,), {"epochs": 4, "size": "tiny"}, {"num_train_epochs": 2})
        >>> args.num_train_epochs, args.size
        (2, 'tiny')
    """
    from transformers import HfArgumentParser

    from trainers.training_arguments import ARGUMENT_ALIASES

    names = _field_names(dataclass_types)
    values = {key if key in names else ARGUMENT_ALIASES.get(key, key): value for key, value in file_values.items()}
    unknown = sorted(key for key in file_values if key not in names and ARGUMENT_ALIASES.get(key) not in names)
    if unknown:
        raise ValueError(f"unknown setting(s) in the config file: {', '.join(unknown)}; see the command's --help")
    values.update({key: value for key, value in cli_values.items() if key in names})
    return HfArgumentParser(dataclass_types).parse_dict(values)


def _field_names(dataclass_types: tuple[type, ...]) -> set[str]:
    return {item.name for dataclass_type in dataclass_types for item in fields(dataclass_type) if item.init}
