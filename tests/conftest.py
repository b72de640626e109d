"""Shared fixtures: a database on each engine (tests/support/store_fixtures.py), a real Gerrit
(tests/support/real_gerrit_fixtures.py)."""

pytest_plugins = ["tests.support.store_fixtures", "tests.support.real_gerrit_fixtures"]
