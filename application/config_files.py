"""Settings from a YAML/JSON config file, overridden by command-line flags.

Command options default to ``None`` (not given); the settings dataclass holds the real defaults.
Precedence: flag given on the command line > config file > dataclass default. Keys may use
dashes or underscores (``min-cluster-size`` = ``min_cluster_size``).

Example:
    >>> from dataclasses import dataclass
    >>> @dataclass
    ... class Settings:
    ...     epochs: int = 3
    ...     alpha: float = 5.0
    >>> build_settings(Settings, {"epochs": 10, "alpha": 1.0}, {"epochs": 2, "alpha": None})
    Settings(epochs=2, alpha=1.0)
"""

from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path
from typing import Any, TypeVar

import yaml

SettingsT = TypeVar("SettingsT")


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


def build_settings(settings_cls: type[SettingsT], file_values: dict[str, Any], cli_values: dict[str, Any]) -> SettingsT:
    """An instance of the dataclass ``settings_cls`` from file values overridden by non-``None`` CLI values.

    Raises ``ValueError`` naming any key of the file that is not a setting.
    """
    names = {field.name for field in fields(settings_cls)}
    unknown = sorted(set(file_values) - names)
    if unknown:
        raise ValueError(f"unknown setting(s) in the config file: {', '.join(unknown)}; known: {', '.join(sorted(names))}")
    values = dict(file_values)
    values.update({key: value for key, value in cli_values.items() if key in names and value is not None})
    return settings_cls(**values)
