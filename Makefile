# Two entry points, each creating the environment first (a .venv beside this file).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: setup reproduce test lint docs docs-tables clean-venv

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
# The linter and the documentation site first (a lint error, a broken link, a missing page or a stale API
# reference fails), then pytest.
test: lint docs
	$(BIN)/python -m pytest -n $(TEST_WORKERS)

# pyflakes, import order and the pycodestyle rules of pyproject.toml's [tool.ruff]
lint: setup
	$(BIN)/ruff check restyle_lab tests benchmarks

# The documentation site (mkdocs.yml, docs/) into site/; --strict turns every warning into a failure
# (NO_MKDOCS_2_WARNING quiets a banner mkdocs-material prints on every build).
docs: setup
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet

# Write every copy of a table (the notebooks' parameters cells, docs/generated/*.md) from its record;
# tests/test_docs_tables.py fails when one is stale.
docs-tables: setup
	$(BIN)/python -m restyle_lab.run.docs_tables

clean-venv:
	rm -rf $(VENV)
