# Two entry points, each creating the environment first (a .venv beside this file).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: setup reproduce test clean-venv

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -e ".[dev]"
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $@

setup: $(VENV)/.installed

# Regenerate every figure and table on the embedded mini domain (CPU, minutes).
reproduce: setup
	$(BIN)/restyle-lab reproduce --domain mini

# The test suite (CI runs exactly this through .ci/run).
test: setup
	$(BIN)/python -m pytest

clean-venv:
	rm -rf $(VENV)
