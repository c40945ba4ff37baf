# Two commands matter: `make chaos` (the example chaos suite, the main job) and
# `make test` (lint, types and the test suite). Both create .venv on first use.
# `make chaos` runs with --chaos-strict (an experiment that could not run fails it) on two
# xdist workers (each with its own Redis and PostgreSQL).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?=

.PHONY: chaos test lint type unit docs bench hooks clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

chaos: $(BIN)/.installed
	$(BIN)/python -m pytest example_suite -m chaos --chaos-strict -n 2 -p no:cacheprovider $(PYTEST_ARGS)

lint: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

type: $(BIN)/.installed
	$(BIN)/mypy

# The suite under coverage ([tool.coverage.*] in pyproject.toml): every process it starts
# is measured, `coverage report` fails below fail_under. For a subset without the floor:
# .venv/bin/python -m pytest tests/... (PYTEST_ARGS subsets would fail the floor).
unit: $(BIN)/.installed
	$(BIN)/coverage erase
	$(BIN)/coverage run -m pytest tests -n 2 $(PYTEST_ARGS)
	$(BIN)/coverage combine --quiet
	$(BIN)/coverage report

# The reference (docs/, mkdocs.yml), built offline; its examples run in tests/docs.
docs: $(BIN)/.installed
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet -d site

test: lint type unit docs

bench: $(BIN)/.installed
	$(BIN)/python bench/run.py

# Git pre-commit hooks (.pre-commit-config.yaml): ruff, ruff-format and mypy from .venv.
hooks: $(BIN)/.installed
	$(BIN)/pre-commit install

clean:
	rm -rf $(VENV) build *.egg-info .mypy_cache .ruff_cache .pytest_cache
