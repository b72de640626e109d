"""Shared fixtures: a database on each engine (tests/store_fixtures.py)."""

pytest_plugins = ["tests.store_fixtures"]
