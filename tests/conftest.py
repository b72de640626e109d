"""Shared fixtures: a database on each engine (tests/store_fixtures.py), a real Gerrit
(tests/real_gerrit_fixtures.py)."""

pytest_plugins = ["tests.store_fixtures", "tests.real_gerrit_fixtures"]
