# The README's two commands: `make main` (install + the main job) and `make test` (install + tests).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
RUN_DIR ?= runs/default

.PHONY: install main test readme-results help-spec clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	# CPU build from this machine's disk; installing it first keeps pip from pulling a CUDA build.
	$(PY) -m pip install --no-compile torch==2.13.0
	$(PY) -m pip install --no-compile -e ".[dev]"
	# pip byte-compiles file by file on one core (about 90 of a 145 s install, measured); compileall uses every
	# core. A file that does not compile is skipped, as pip skips it (torch ships a Python 3.12-only test helper).
	$(PY) -m compileall -q -j 0 $(VENV)/lib > /dev/null || true
	touch $(STAMP)

main: install
	HF_HUB_OFFLINE=1 $(VENV)/bin/hetlm --threads $$(nproc) experiment --out $(RUN_DIR)

test: install
	HF_HUB_OFFLINE=1 $(PY) -m pytest -q

# After `make main`: rewrite the README's results section from that run (maintainers; never edit it by hand).
readme-results:
	$(PY) -m application.readme_results $(RUN_DIR) README.md

# After changing a command's flags (or a settings dataclass, or transformers): rewrite the help `hetlm COMMAND --help`
# prints without importing torch; tests/test_command_help.py fails until then.
help-spec: install
	$(PY) -m application.command_help

clean:
	rm -rf $(VENV) runs
