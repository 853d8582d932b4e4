# campusgate: one command each for run, test, lint, bench.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

.PHONY: run test lint typecheck pytest bench install clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# Reinstall when pyproject.toml or the access log's C helper changes.
$(INSTALLED): pyproject.toml $(wildcard src/campusgate/observe/_rowpack*.[ch]) | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(INSTALLED)

install: $(INSTALLED)

## make run: create the venv, install, start campusgate with the built-in demo config.
run: install
	$(BIN)/campusgate serve $(if $(CONFIG),-c $(CONFIG))

## make test: install what tests need, then lint, type check and every test.
test: install lint typecheck pytest

lint: install
	$(BIN)/ruff check src tests benchmarks

typecheck: install
	$(BIN)/mypy

pytest: install
	$(BIN)/pytest $(PYTEST_ARGS)

## make bench: campusgate vs nginx vs a direct call, same machine, same run.
bench: install
	$(BIN)/python benchmarks/run.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) campusgate-data .mypy_cache .ruff_cache .pytest_cache
