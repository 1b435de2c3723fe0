# Two entry points, each creating the environment first (a .venv beside this file).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: setup reproduce test lint docs-tables clean-venv

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -e ".[dev]"
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $@

setup: $(VENV)/.installed

# Regenerate every figure and table on the embedded mini domain (CPU, minutes).
reproduce: setup
	$(BIN)/restyle-lab reproduce --domain mini

# The test suite (CI runs exactly this through .ci/run), on TEST_WORKERS processes (tests/conftest.py keeps the
# tests that share fixtures on one worker); TEST_WORKERS=0 runs it in this process.
TEST_WORKERS ?= 2
test: lint
	$(BIN)/python -m pytest -n $(TEST_WORKERS)

# pyflakes, import order and the pycodestyle rules of pyproject.toml's [tool.ruff]; `make test` runs it first
lint: setup
	$(BIN)/ruff check restyle_lab tests benchmarks

# Write every copy of a table (the notebooks' parameters cells, docs/generated/*.md) from its record;
# tests/test_docs_tables.py fails when one is stale.
docs-tables: setup
	$(BIN)/python -m restyle_lab.run.docs_tables

clean-venv:
	rm -rf $(VENV)
