# `make demo` and `make test` are the whole set-up on a fresh machine: each creates .venv and
# installs what it needs when missing (idempotent: a stamp file makes the second run instant).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: test demo lint typecheck pytest services soak bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip setuptools wheel
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

services:
	@scripts/ensure-services

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks migrations
	$(BIN)/ruff format --check src tests benchmarks migrations

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP) services
	$(BIN)/pytest -q -m "not soak"

test: lint typecheck pytest

demo: $(STAMP)
	$(BIN)/cidash demo

soak: $(STAMP) services
	$(BIN)/pytest -q -m soak -s

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache cidash.db*
