"""What a CI run's result means: the one classification every step uses.

A result is a :class:`Result` word (or a raw upper-case word a CI invented). Its class is one of
these: ``success``; ``failure``, a test failure (the change or the test is at
fault); ``infra``, an infra error (the CI itself is at fault); ``other`` (skipped, unknown words).
The parser, the rollups, the feed, the read queries, the health model and the alert rules all
classify through :func:`result_class` (or :data:`CLASS_CODES` in SQL), so they cannot disagree.
"""

from __future__ import annotations

import enum
from typing import Literal, get_args


class Result(enum.StrEnum):
    SUCCESS = "SUCCESS"
    # test failures: the change (or the test) is at fault
    FAILURE = "FAILURE"
    POST_FAILURE = "POST_FAILURE"
    TIMED_OUT = "TIMED_OUT"
    UNSTABLE = "UNSTABLE"
    # infra errors: the CI itself is at fault
    ERROR = "ERROR"
    NODE_FAILURE = "NODE_FAILURE"
    RETRY_LIMIT = "RETRY_LIMIT"
    MERGE_CONFLICT = "MERGE_CONFLICT"
    CONFIG_ERROR = "CONFIG_ERROR"
    DISK_FULL = "DISK_FULL"
    ABORTED = "ABORTED"
    LOST = "LOST"
    # neither
    SKIPPED = "SKIPPED"


INFRA_RESULTS = frozenset(
    {
        Result.ERROR,
        Result.NODE_FAILURE,
        Result.RETRY_LIMIT,
        Result.MERGE_CONFLICT,
        Result.CONFIG_ERROR,
        Result.DISK_FULL,
        Result.ABORTED,
        Result.LOST,
    }
)
TEST_FAILURE_RESULTS = frozenset({Result.FAILURE, Result.POST_FAILURE, Result.TIMED_OUT, Result.UNSTABLE})

ResultClass = Literal["success", "failure", "infra", "other"]
RESULT_CLASSES: frozenset[str] = frozenset(get_args(ResultClass))
FAILED_CLASSES: frozenset[ResultClass] = frozenset({"failure", "infra"})
"""The classes that count as a failed run (a test failure or an infra error)."""

# the same sets as plain strings, for comparing stored result columns
SUCCESS_RESULTS: frozenset[str] = frozenset({Result.SUCCESS.value})
TEST_FAILURES: frozenset[str] = frozenset(r.value for r in TEST_FAILURE_RESULTS)
INFRA_ERRORS: frozenset[str] = frozenset(r.value for r in INFRA_RESULTS)
CLASS_CODES: dict[ResultClass, int] = {"success": 0, "failure": 1, "infra": 2, "other": 3}
"""Class codes for SQL, ordered so that MIN/MAX over a patch set's runs tell whether they all agree."""


def result_class(result: str) -> ResultClass:
    """success (SUCCESS), failure (a test failure), infra (the CI's own fault) or other."""
    if result in SUCCESS_RESULTS:
        return "success"
    if result in TEST_FAILURES:
        return "failure"
    if result in INFRA_ERRORS:
        return "infra"
    return "other"
