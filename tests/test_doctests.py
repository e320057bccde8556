"""The docstring examples of the package and the benchmarks run as written (illustrative ones are marked
``# doctest: +SKIP``): one test per folder, failing with doctest's report of every wrong example."""

from __future__ import annotations

import doctest
import importlib
import importlib.util
import io
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("modeling_hetlm", "tokenization", "trainers", "inference", "evaluation", "application")
SCRIPT_FOLDERS = ("benchmarks",)


def _package_modules(package: str) -> list[ModuleType]:
    names = []
    for path in sorted((ROOT / package).rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return [importlib.import_module(name) for name in names]


def _script_modules(folder: str) -> list[ModuleType]:
    modules = []
    for path in sorted((ROOT / folder).glob("*.py")):
        spec = importlib.util.spec_from_file_location(f"{folder}_{path.stem}", path)
        module = importlib.util.module_from_spec(spec)
        # Registered first: dataclasses look their module up while the script runs.
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
        modules.append(module)
    return modules


def _run_examples(modules: list[ModuleType]) -> tuple[int, int, str]:
    """(examples attempted, failures, doctest's report) over every docstring defined in ``modules``."""
    report = io.StringIO()
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    for module in modules:
        for test in doctest.DocTestFinder().find(module):
            runner.run(test, out=report.write)
    return runner.tries, runner.failures, report.getvalue()


@pytest.mark.parametrize("folder", PACKAGES + SCRIPT_FOLDERS)
def test_docstring_examples_run(folder):
    modules = _script_modules(folder) if folder in SCRIPT_FOLDERS else _package_modules(folder)
    attempted, failed, report = _run_examples(modules)
    assert attempted > 0, f"no docstring example found in {folder}/"
    assert failed == 0, report
