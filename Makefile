# Two commands for a newcomer: `make demo` (full offline pipeline run) and `make test`.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# torch first and pinned: on CPU-only machines install the CPU build (see README, "GPU").
	$(BIN)/python -m pip install --quiet "torch==2.13.0"
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $@

.PHONY: install demo test test-fast lint
install: $(BIN)/.installed

demo: $(BIN)/.installed
	$(BIN)/tweet-signals demo

# Everything: lint, types, unit and integration tests (real Prefect server, Dask, S3, CLI runs).
test: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/mypy tweet_signals flows tasks deployments
	$(BIN)/python -m pytest

# The inner loop: the tests not marked slow (no servers, no subprocess pipelines), under a minute.
test-fast: $(BIN)/.installed
	$(BIN)/python -m pytest -m "not slow" -q

lint: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/mypy tweet_signals flows tasks deployments
