"""Shared fixtures: a database on each engine (tests/support/store_fixtures.py), a real Gerrit
(tests/support/real_gerrit_fixtures.py); and the `slow` mark that `make test-fast` leaves out."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["tests.support.store_fixtures", "tests.support.real_gerrit_fixtures"]

TESTS = Path(__file__).resolve().parent
# What the inner loop (`make test-fast`) leaves to `make test`, by test id below tests/: a browser, a
# real Gerrit or Alertmanager, processes started and killed, the simulator run end to end, a simulated
# week, a hostile Gerrit trickling on purpose, every module imported in a fresh interpreter.
SLOW = (
    "browser/",
    "realgerrit/",
    "soak/",
    "service/",
    "alerts/test_alertmanager.py",
    "alerts/test_incidents_week.py",
    "api/test_api_schema.py",
    "api/test_live.py::test_a_burst_during_the_replay_is_neither_lost_nor_doubled",
    "collector/test_collector_e2e.py",
    "collector/test_collector_completeness.py",
    "collector/test_failover.py",
    "gerrit/test_gerrit_rest_limits.py",
    "test_imports.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        _, separator, name = item.nodeid.partition("::")
        if f"{item.path.relative_to(TESTS).as_posix()}{separator}{name}".startswith(SLOW):
            item.add_marker(pytest.mark.slow)
