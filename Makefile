# `make demo` and `make test` are the whole set-up on a fresh machine: each creates .venv and
# installs what it needs when missing (idempotent: a stamp file makes the second run instant).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: test test-fast test-shifted-clock demo lint typecheck pytest services browser gerrit frontend frontend-test soak clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip setuptools wheel
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

services:
	@scripts/ensure-services

browser:
	@scripts/ensure-browser

# The dashboard: rebuilt when its sources change (npm ci is skipped when node_modules is current).
FRONTEND_SRC := $(shell find frontend/src -type f 2>/dev/null) frontend/index.html frontend/vite.config.ts frontend/package.json
frontend/node_modules/.package-lock.json: frontend/package-lock.json
	cd frontend && npm ci --no-audit --no-fund

frontend/dist/index.html: frontend/node_modules/.package-lock.json $(FRONTEND_SRC)
	cd frontend && npm run build

frontend: frontend/dist/index.html

frontend-test: frontend/node_modules/.package-lock.json
	cd frontend && npm run check && npm test

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks migrations
	$(BIN)/ruff format --check src tests benchmarks migrations

typecheck: $(STAMP)
	$(BIN)/mypy

# The real-Gerrit tests (tests/realgerrit/test_real_gerrit.py) need Java 17 and Gerrit's jars (fetched once).
gerrit:
	@scripts/ensure-gerrit

pytest: $(STAMP) services browser frontend gerrit
	$(BIN)/pytest -q -m "not soak"

test: lint typecheck frontend-test pytest

# The inner loop: SQLite only, without the tests marked slow in tests/conftest.py (browser, real Gerrit,
# Alertmanager, processes, end-to-end runs); 611 tests, 79 s of CPU. `make test` runs everything.
test-fast: $(STAMP) services
	$(BIN)/pytest -q -m "not soak and not slow" -k "not mariadb"

# The suite again with the clock a year ahead and a month back (no test may depend on the date).
test-shifted-clock: $(STAMP) services browser frontend gerrit
	scripts/shifted-clock-tests

demo: $(STAMP)
	@if command -v npm >/dev/null; then $(MAKE) --no-print-directory frontend; else echo "npm not found: the API runs, the dashboard needs 'cd frontend && npm ci && npm run build'"; fi
	$(BIN)/cidash demo

# A real Gerrit on loopback, the simulator's world posted into it, cidash watching (needs Java 17 + Maven).
demo-gerrit: $(STAMP) gerrit
	@if command -v npm >/dev/null; then $(MAKE) --no-print-directory frontend; fi
	$(BIN)/python -m cidash.realgerrit.demo

soak: $(STAMP) services
	$(BIN)/pytest -q -m soak -s

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache cidash.db*
