# Two commands for a newcomer: `make demo` (full offline pipeline run) and `make test`.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
# torch's version comes from pyproject.toml, its one pin.
TORCH := $(shell sed -n 's/^ *"\(torch==[^"]*\)",*$$/\1/p' pyproject.toml)

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# torch first, at pyproject's pin: a torch already in the venv at that version (a CUDA build a GPU
	# user installed, see README) is kept; otherwise the index's build is installed.
	$(BIN)/python -m pip install --quiet "$(TORCH)"
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $@

.PHONY: install demo test test-fast lint
install: $(BIN)/.installed

demo: $(BIN)/.installed
	$(BIN)/tweet-signals demo

# Everything: lint, types, unit and integration tests (real Prefect server, Dask, S3, CLI runs).
test: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy tweet_signals
	$(BIN)/python -m pytest

# The inner loop: the tests not marked slow (no servers, subprocess pipelines, compiles), under a minute.
test-fast: $(BIN)/.installed
	$(BIN)/python -m pytest -m "not slow" -q

lint: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy tweet_signals
