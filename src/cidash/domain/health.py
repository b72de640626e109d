"""The health model: how each CI system is doing, per window, and the one-word state it is in.

What is measured (per CI system, per window 1h / 24h / 7d / 30d, optionally for one project):

* counts and rates: runs, success rate, test-failure rate, infra-error rate, from
  ``ci_hour_totals`` (``ci_rollups`` for one project; a window sums the hourly rows whose hour
  starts at or after ``now - window`` floored to the hour; the 1 h window is counted exactly from
  ``ci_runs``), with the sparkline in the same statement;
* latency p50 / p95: from the ``ci_latency`` log2 histograms, interpolated linearly inside the
  bucket (:func:`percentile`). They are per CI system, whatever the project filter;
* run-level metrics, from ``ci_runs``, for the windows in :data:`RUN_METRIC_WINDOWS` only (30 d
  would scan too many runs per request). One statement for every CI system at once
  (:func:`patchset_digests`: one row per patch set, each CI's part packed into integers), then
  plain Python (:func:`metrics_from_digests`):

  - coverage: of the *eligible* patch sets, the share it posted a result on (see
    :data:`COVERAGE_RULE`, which the API and the dashboard show as the definition). Eligible:
    in a project it follows (its configured ``projects``, else those it commented on in the
    last 30 d), on a branch it follows (its configured ``branches``, default every branch),
    created in the window at least its answer time before now, and neither superseded by the
    next patch set nor closed (merged / abandoned; closed at its last CI activity, the only time
    cidash knows) within that time. The answer time is the CI's own 24 h p95 latency, at least
    :data:`REASONABLE_MIN_S` and at most :data:`COVERAGE_MAX_WAIT_S`: a slow CI is not excused
    its misses by its own slowness;
  - agreement with the reference CI of its server: on the patch sets both answered in the
    window, the latest result of each, compared when both are a success or a test failure
    (infra errors and other results are neither agreement nor disagreement);
  - flakiness: of the patch sets where it posted two results or more, the share where they
    fell in different result classes (success / failure / infra / other).

  They change slowly and cost a scan of the window's runs, so the API keeps them in a
  :class:`TTLCache` (served stale while a background refresh runs); the 30 d ones
  (:data:`BACKGROUND_WINDOWS`) are only ever computed in the background.

* the state (:func:`decide_state`), from the 24 h window: ``silent``, ``unknown``, ``failing``,
  ``degraded`` or ``healthy``, with the reason in plain words.

Everything takes ``now`` so that tests can pin the clock.
"""

from __future__ import annotations

import asyncio
import fnmatch
import logging
import time
from collections.abc import Awaitable, Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Generic, TypeVar

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from cidash.domain.results import CLASS_CODES
from cidash.domain.views import HealthWindow, State, VoteQuality, Window
from cidash.store import schema as m
from cidash.store.rechecks import recheck_counts
from cidash.store.rollups import (
    bucket_bounds,
    class_code_sql,
    clean_latency_sql,
    hour_floor,
    latency_bucket_sql,
)
from cidash.store.schema import LATENCY_BUCKETS, hour_totals_t, latency_t, rollups_t
from cidash.store.types import UTCDateTime, is_mysql

log = logging.getLogger(__name__)

WINDOWS: tuple[Window, ...] = ("1h", "24h", "7d", "30d")
WINDOW_SPANS: dict[Window, timedelta] = {
    "1h": timedelta(hours=1),
    "24h": timedelta(hours=24),
    "7d": timedelta(days=7),
    "30d": timedelta(days=30),
}
RUN_METRIC_WINDOWS: frozenset[Window] = frozenset({"1h", "24h", "7d", "30d"})
"""Windows for which coverage, agreement and flakiness are computed (they scan ``ci_runs``)."""
BACKGROUND_WINDOWS: frozenset[Window] = frozenset({"30d"})
"""With a cache (the API), the run-level metrics of these windows are never computed inside a
request: they scan a month of runs (seconds on a big history), so a request gets the cached value
(however old; a refresh starts when it is past the TTL) or, before the first computation has
finished, none (``metrics_pending``)."""
BACKGROUND_REFRESH_S = 600.0
"""A :data:`BACKGROUND_WINDOWS` value older than this is recomputed (in the background): a month's
numbers move little in ten minutes, and the scan takes seconds (27 s at 1.5 M runs on a loaded
2-core machine)."""
STATE_WINDOW: Window = "24h"
"""The window the state is decided on, whatever window is displayed."""
FOLLOW_SPAN = timedelta(days=30)
"""A CI without configured projects follows the projects it commented on in this span."""

# -- thresholds of the state ---------------------------------------------------------------------

MIN_RUNS = 5
"""Fewer runs than this in 24 h (and not silent): ``unknown``, too few to judge."""
REASONABLE_MIN_S = 3600.0
"""A CI is never expected to answer a patch set faster than this (coverage, silence)."""
COVERAGE_MAX_WAIT_S = 4 * 3600.0
"""A patch set older than this counts for coverage (and silence) whatever the CI's own latency."""
COVERAGE_RULE = (
    "Coverage is the share of eligible patch sets the CI posted a result on. A patch set is eligible when it is "
    "in a project the CI follows (its configured projects, else those it commented on in the last 30 days) and on a "
    "branch it follows (its configured branches, default all); it was created in the window and at least the CI's "
    "answer time ago (its 24 h p95 latency, at least 1 h, at most 4 h); and no newer patch set was uploaded, and "
    "the change was not merged or abandoned, within that answer time. cidash does not record work-in-progress or "
    "private state: such patch sets count like any other. The patch sets are those cidash saw a comment on (the "
    "reference CI answers every one)."
)
"""The definition of coverage in words, as the API and the dashboard show it."""
MEASURES: dict[str, str] = {
    "coverage": COVERAGE_RULE,
    "agreement": (
        "On the patch sets both it and the reference CI answered in the window, the share where their latest results "
        "agree; only a success or a test failure on both sides is compared (infra errors are neither)."
    ),
    "flakiness": "Of the patch sets where it posted two results or more, the share where they differ in class.",
    "vote_quality": (
        "Its latest result on a patch set is its vote (a test failure a -1, a success a +1, whether or not it casts "
        "Verified). False -1 share: of its -1s, those on patch sets where the reference CI passed and the change was "
        "merged. False +1 share: of its +1s, those where the reference CI failed. The matrix counts the patch sets "
        "both answered with a success or a test failure (the latest result of each)."
    ),
    "latency": (
        "Run latency: from the patch set's upload to the result comment, p50 and p95 over the window's hourly "
        "histograms."
    ),
    "recheck_recovery": (
        "Of the patch sets where one of its results was a test failure or an infra error, the share where its latest "
        "result, after running again on the same patch set (a recheck), is a success."
    ),
    "rechecks": (
        "Recheck burden: the human comments in the window that asked it to run again. A CI-specific one "
        "(recheck-<name>, <name>: recheck, recheck <name>, or the CI's recheck_patterns) counts for the CI it "
        "names; a plain 'recheck' (or 'recheck <reason>') for every CI whose latest result on the patch set before "
        "the comment was a test failure or an infra error, and for nobody before any failure. Also per 100 of its "
        "runs in the window."
    ),
    "queue_latency": (
        "Time to first answer: for the patch sets created in the window that it answered, from the upload to its "
        "first comment on the patch set (a 'started' comment or a result), p50 and p95."
    ),
}
"""Every measure the API reports, defined in words (``GET /api/v1/measures``)."""
SILENT_MIN_S = 2 * 3600.0
"""``silent`` needs at least this long since its last comment of any kind ..."""
SILENT_MIN_PATCHSETS = 3
"""... and at least this many eligible patch sets created in its projects since that comment."""
MIN_COMPARED = 5
"""Patch sets where the reference passed needed before judging a CI against the reference."""
FAILING_VS_REFERENCE = 0.5
"""``failing`` when it fails at least this share of the patch sets where the reference passed."""
DEGRADED_VS_REFERENCE = 0.2
"""``degraded`` when it fails at least this share of the patch sets where the reference passed."""
FAILING_SUCCESS_RATE = 0.2
"""Without enough reference comparisons (the reference itself, or no shared patch sets):
``failing`` when fewer than this share of its runs succeed."""
FAILING_INFRA_RATE = 0.5
"""``failing`` when at least this share of its runs end in an infra error."""
DEGRADED_INFRA_RATE = 0.15
"""``degraded`` when at least this share of its runs end in an infra error."""
MIN_ELIGIBLE = 10
"""Eligible patch sets needed before judging coverage."""
DEGRADED_COVERAGE = 0.6
"""``degraded`` when it comments on less than this share of the eligible patch sets."""
DEGRADED_P50_S = 4 * 3600.0
"""``degraded`` when half of its answers take longer than this (it answers, but too late to help
reviewers). The median, not p95: a recheck hours later counts from the patch set's creation."""

_CLOSED = ("MERGED", "ABANDONED")
CASES_KEPT = 100
"""Patch sets kept per CI and kind of vote-quality case (the API lists them as links)."""
_SUCCESS, _FAILURE = CLASS_CODES["success"], CLASS_CODES["failure"]
_FAILED = (CLASS_CODES["failure"], CLASS_CODES["infra"])


# -- pure computations ---------------------------------------------------------------------------


@dataclass(slots=True)
class Counts:
    """Sums of rollup rows (or of runs) over a window."""

    runs: int = 0
    successes: int = 0
    test_failures: int = 0
    infra_errors: int = 0
    latency_n: int = 0
    latency_sum: float = 0.0

    def add(self, other: Counts) -> None:
        self.runs += other.runs
        self.successes += other.successes
        self.test_failures += other.test_failures
        self.infra_errors += other.infra_errors
        self.latency_n += other.latency_n
        self.latency_sum += other.latency_sum

    def rate(self, part: int) -> float | None:
        return part / self.runs if self.runs > 0 else None

    @property
    def success_rate(self) -> float | None:
        return self.rate(self.successes)

    @property
    def failure_rate(self) -> float | None:
        return self.rate(self.test_failures)

    @property
    def infra_error_rate(self) -> float | None:
        return self.rate(self.infra_errors)


def percentile(histogram: Sequence[int], q: float) -> float | None:
    """The `q` quantile (0..1) of a latency histogram (:func:`cidash.store.rollups.latency_bucket`
    buckets), interpolated linearly inside its bucket; None for an empty histogram.

    The rank is ``q * n``: with 4 values in bucket [4, 8), p50 is 6.0 and p25 is 5.0.
    """
    if not 0.0 <= q <= 1.0:
        raise ValueError("q must be within [0, 1]")
    total = sum(n for n in histogram if n > 0)
    if total == 0:
        return None
    target = q * total
    seen = 0
    last = 0
    for bucket, n in enumerate(histogram):
        if n <= 0:
            continue
        last = bucket
        if seen + n >= target:
            low, high = bucket_bounds(bucket)
            return low + (high - low) * max(0.0, target - seen) / n
        seen += n
    return bucket_bounds(last)[1]  # pragma: no cover - float rounding only


@dataclass(slots=True)
class RunMetrics:
    """Patch-set level counts of one CI over a window (see the module docstring)."""

    answered: int = 0  # patch sets it posted a result on
    rechecked: int = 0  # ... of which with two results or more
    flaky: int = 0  # ... of which with results in different classes
    compared: int = 0  # patch sets shared with the reference, both a success or a test failure
    agree: int = 0
    fail_when_reference_passed: int = 0
    pass_when_reference_failed: int = 0
    reference_passed: int = 0  # compared patch sets where the reference succeeded
    eligible: int = 0
    covered: int = 0
    missed_since_last_seen: int = 0  # eligible patch sets created after its last comment
    negatives: int = 0  # patch sets where its latest result is a test failure (its -1)
    positives: int = 0  # ... a success (its +1)
    false_negatives: int = 0  # a -1 where the reference passed and the change merged
    false_negative_cases: list[int] = field(default_factory=list)  # their patch set ids (the first CASES_KEPT)
    false_positive_cases: list[int] = field(default_factory=list)  # +1 where the reference failed
    failed_patchsets: int = 0  # patch sets where one of its results was a test failure or an infra error
    recovered: int = 0  # ... of which its latest result, after a rerun there (a recheck), is a success
    rechecks: int = 0  # human recheck comments aimed at it (cidash.store.rechecks)
    queue_p50_s: float | None = None  # from upload to its first comment on the patch set (queue latency)
    queue_p95_s: float | None = None

    @property
    def recheck_recovery(self) -> float | None:
        return self.recovered / self.failed_patchsets if self.failed_patchsets else None

    @property
    def false_negative_share(self) -> float | None:
        return self.false_negatives / self.negatives if self.negatives else None

    @property
    def false_positive_share(self) -> float | None:
        return self.pass_when_reference_failed / self.positives if self.positives else None

    @property
    def coverage(self) -> float | None:
        return self.covered / self.eligible if self.eligible else None

    @property
    def agreement(self) -> float | None:
        return self.agree / self.compared if self.compared else None

    @property
    def disagreements(self) -> int:
        return self.fail_when_reference_passed + self.pass_when_reference_failed

    @property
    def flakiness(self) -> float | None:
        return self.flaky / self.rechecked if self.rechecked else None


def health_window(
    window: Window,
    counts: Counts | None,
    histogram: Sequence[int] | None,
    metrics: RunMetrics | None,
    *,
    pending: bool = False,
) -> HealthWindow:
    counts = counts or Counts()
    histogram = histogram or ()
    return HealthWindow(
        window=window,
        runs=counts.runs,
        success_rate=counts.success_rate,
        failure_rate=counts.failure_rate,
        infra_error_rate=counts.infra_error_rate,
        latency_p50_s=percentile(histogram, 0.5),
        latency_p95_s=percentile(histogram, 0.95),
        coverage=metrics.coverage if metrics is not None else None,
        eligible=metrics.eligible if metrics is not None else 0,
        covered=metrics.covered if metrics is not None else 0,
        agreement=metrics.agreement if metrics is not None else None,
        disagreements=metrics.disagreements if metrics is not None else 0,
        flakiness=metrics.flakiness if metrics is not None else None,
        vote_quality=vote_quality(metrics) if metrics is not None else None,
        recheck_recovery=metrics.recheck_recovery if metrics is not None else None,
        failed_patchsets=metrics.failed_patchsets if metrics is not None else 0,
        recovered=metrics.recovered if metrics is not None else 0,
        rechecks=metrics.rechecks if metrics is not None else 0,
        rechecks_per_100_runs=(
            metrics.rechecks * 100 / counts.runs if metrics is not None and counts.runs > 0 else None
        ),
        queue_p50_s=metrics.queue_p50_s if metrics is not None else None,
        queue_p95_s=metrics.queue_p95_s if metrics is not None else None,
        metrics_pending=pending,
    )


def vote_quality(metrics: RunMetrics) -> VoteQuality:
    """The confusion matrix against the reference CI, and the false -1 / false +1 shares."""
    return VoteQuality(
        both_passed=metrics.reference_passed - metrics.fail_when_reference_passed,
        failed_reference_passed=metrics.fail_when_reference_passed,
        passed_reference_failed=metrics.pass_when_reference_failed,
        both_failed=metrics.compared - metrics.reference_passed - metrics.pass_when_reference_failed,
        negatives=metrics.negatives,
        positives=metrics.positives,
        false_negatives=metrics.false_negatives,
        false_negative_share=metrics.false_negative_share,
        false_positive_share=metrics.false_positive_share,
    )


def reasonable_answer_s(p95_s: float | None) -> float:
    """How long a CI may take before a patch set counts as one it should have answered: its p95
    latency within [:data:`REASONABLE_MIN_S`, :data:`COVERAGE_MAX_WAIT_S`]."""
    return min(COVERAGE_MAX_WAIT_S, max(REASONABLE_MIN_S, p95_s or 0.0))


def duration_text(seconds: float) -> str:
    """45 min, 6 h, 3 d: the coarse unit an operator reads at a glance."""
    if seconds < 3600:
        return f"{max(1, round(seconds / 60))} min"
    if seconds < 2 * 86400:
        return f"{round(seconds / 3600)} h"
    return f"{round(seconds / 86400)} d"


def _pct(value: float) -> str:
    return f"{round(value * 100)}%"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def decide_state(
    *,
    counts: Counts,
    metrics: RunMetrics | None,
    p50_s: float | None,
    last_seen: datetime | None,
    now: datetime,
    is_reference: bool,
    reference_name: str | None,
) -> tuple[State, str]:
    """The state of a CI from its 24 h numbers, and why, in words (first matching rule wins):

    1. ``silent``: no comment for :data:`SILENT_MIN_S` while at least :data:`SILENT_MIN_PATCHSETS`
       eligible patch sets arrived in its projects since its last comment;
    2. ``unknown``: fewer than :data:`MIN_RUNS` runs;
    3. ``failing``: infra errors on :data:`FAILING_INFRA_RATE` of runs or more; or failing at least
       :data:`FAILING_VS_REFERENCE` of the patch sets where the reference passed (with
       :data:`MIN_COMPARED` of them); or, without that comparison, a success rate under
       :data:`FAILING_SUCCESS_RATE`;
    4. ``degraded``: infra errors on :data:`DEGRADED_INFRA_RATE` or more; failing at least
       :data:`DEGRADED_VS_REFERENCE` where the reference passed; coverage under
       :data:`DEGRADED_COVERAGE` (with :data:`MIN_ELIGIBLE` eligible patch sets); median latency
       over :data:`DEGRADED_P50_S`;
    5. ``healthy``.
    """
    metrics = metrics or RunMetrics()
    reference = reference_name or "the reference CI"
    silent_for = (now - last_seen).total_seconds() if last_seen is not None else None
    arrived = metrics.missed_since_last_seen
    if silent_for is not None and silent_for >= SILENT_MIN_S and arrived >= SILENT_MIN_PATCHSETS:
        return "silent", (f"silent for {duration_text(silent_for)} while {arrived} patch sets arrived in its projects")
    if counts.runs < MIN_RUNS:
        if counts.runs == 0:
            seen = f"; last comment {duration_text(silent_for)} ago" if silent_for is not None else ""
            return "unknown", f"no runs in the last 24 h{seen}"
        return "unknown", f"only {_plural(counts.runs, 'run')} in the last 24 h: too few to judge"

    runs = counts.runs
    infra = counts.infra_errors / runs
    infra_text = f"infra errors on {_pct(infra)} of runs ({counts.infra_errors} of {runs})"
    compared = metrics.reference_passed if not is_reference else 0
    versus = metrics.fail_when_reference_passed / compared if compared else 0.0
    versus_text = (
        f"fails {_pct(versus)} of runs where {reference} passed ({metrics.fail_when_reference_passed} of {compared})"
    )
    judged_vs_reference = compared >= MIN_COMPARED
    if infra >= FAILING_INFRA_RATE:
        return "failing", infra_text
    if judged_vs_reference and versus >= FAILING_VS_REFERENCE:
        return "failing", versus_text
    success = counts.successes / runs
    if not judged_vs_reference and success < FAILING_SUCCESS_RATE:
        return "failing", f"only {_pct(success)} of runs succeed ({counts.successes} of {runs})"

    if infra >= DEGRADED_INFRA_RATE:
        return "degraded", infra_text
    if judged_vs_reference and versus >= DEGRADED_VS_REFERENCE:
        return "degraded", versus_text
    coverage = metrics.coverage
    if coverage is not None and metrics.eligible >= MIN_ELIGIBLE and coverage < DEGRADED_COVERAGE:
        return "degraded", (
            f"answered only {_pct(coverage)} of the patch sets in its projects "
            f"({metrics.covered} of {metrics.eligible})"
        )
    if p50_s is not None and p50_s > DEGRADED_P50_S:
        return "degraded", f"slow: half of its answers take more than {duration_text(p50_s)}"

    parts = [f"{_pct(success)} of {runs} runs succeed"]
    if judged_vs_reference:
        parts.append(f"agrees with {reference} on {_pct(metrics.agreement or 0.0)} of {metrics.compared} patch sets")
    elif coverage is not None and metrics.eligible:
        parts.append(f"answered {_pct(coverage)} of {metrics.eligible} patch sets")
    return "healthy", "; ".join(parts)


# -- SQL helpers ---------------------------------------------------------------------------------


def _at(moment: datetime) -> sa.BindParameter[datetime]:
    return sa.bindparam(None, moment, type_=UTCDateTime())


def _ids_filter(column: sa.ColumnElement[int], ids: Iterable[int] | None) -> list[sa.ColumnElement[bool]]:
    if ids is None:
        return []
    return [column.in_(sorted(set(ids)))]


def text_of(value: Any) -> str:
    """A ``group_concat`` result as text (some drivers hand it back as bytes)."""
    return value.decode() if isinstance(value, bytes | bytearray) else str(value)


_LONG_CONCAT = "cidash_long_group_concat"


async def allow_long_group_concat(conn: AsyncConnection) -> None:
    """MySQL cuts ``group_concat`` at 1024 bytes by default: raise it, once per pooled connection."""
    if is_mysql(conn.dialect) and not conn.info.get(_LONG_CONCAT):
        await conn.execute(sa.text("SET SESSION group_concat_max_len = 4194304"))
        conn.info[_LONG_CONCAT] = True


# -- queries: counts, latency, sparklines ----------------------------------------------------------


async def latency_histograms(
    conn: AsyncConnection, since: datetime, *, ci_ids: Iterable[int] | None = None, until: datetime | None = None
) -> dict[int, list[int]]:
    """Per CI system, the latency histogram of the hours starting at or after `since` (floored)
    and, with `until`, before it: one row per CI system (its buckets packed into a
    ``group_concat``)."""
    t = latency_t
    upper = [t.c.hour < _at(until)] if until is not None else []
    inner = (
        sa.select(t.c.ci_system_id.label("ci"), t.c.bucket.label("bucket"), sa.func.sum(t.c.n).label("n"))
        .where(t.c.hour >= _at(hour_floor(since)), *upper, *_ids_filter(t.c.ci_system_id, ci_ids))
        .group_by(t.c.ci_system_id, t.c.bucket)
        .subquery("l")
    )
    entry = sa.cast(inner.c.bucket, sa.String) + ":" + sa.cast(inner.c.n, sa.String)
    query = sa.select(inner.c.ci, sa.func.group_concat(entry)).group_by(inner.c.ci)
    await allow_long_group_concat(conn)
    found: dict[int, list[int]] = {}
    for ci, packed in await conn.execute(query):
        histogram = found.setdefault(ci, [0] * LATENCY_BUCKETS)
        for item in text_of(packed).split(",") if packed else ():
            bucket, n = item.split(":")
            position = int(bucket)
            if 0 <= position < LATENCY_BUCKETS:
                histogram[position] += int(float(n))
    return found


async def exact_counts(
    conn: AsyncConnection,
    since: datetime,
    until: datetime,
    *,
    project: str | None = None,
    ci_ids: Iterable[int] | None = None,
) -> tuple[dict[int, Counts], dict[int, list[int]]]:
    """Counts and latency histograms straight from ``ci_runs`` for runs posted in [since, until]
    (short windows; uses the ``posted_at`` indexes)."""
    r = m.runs_t
    code = class_code_sql(r.c.result).label("code")
    latency = clean_latency_sql(r.c.latency_s)
    bucket = sa.case((r.c.latency_s.is_(None), -1), else_=latency_bucket_sql(latency)).label("bucket")
    inner = sa.select(r.c.ci_system_id.label("ci"), code, bucket, latency.label("latency")).where(
        r.c.posted_at >= _at(since), r.c.posted_at <= _at(until), *_ids_filter(r.c.ci_system_id, ci_ids)
    )
    if project is not None:
        inner = inner.where(r.c.project == project)
    sub = inner.subquery("w")
    query = sa.select(
        sub.c.ci, sub.c.code, sub.c.bucket, sa.func.count(), sa.func.coalesce(sa.func.sum(sub.c.latency), 0.0)
    ).group_by(sub.c.ci, sub.c.code, sub.c.bucket)
    counts: dict[int, Counts] = {}
    histograms: dict[int, list[int]] = {}
    for ci, cls, bucket_no, n, latency_sum in await conn.execute(query):
        entry = counts.setdefault(ci, Counts())
        n = int(n)
        entry.runs += n
        if cls == CLASS_CODES["success"]:
            entry.successes += n
        elif cls == CLASS_CODES["failure"]:
            entry.test_failures += n
        elif cls == CLASS_CODES["infra"]:
            entry.infra_errors += n
        if bucket_no is not None and bucket_no >= 0:
            entry.latency_n += n
            entry.latency_sum += float(latency_sum or 0.0)
            histograms.setdefault(ci, [0] * LATENCY_BUCKETS)[int(bucket_no)] += n
    return counts, histograms


async def window_numbers(
    conn: AsyncConnection,
    window: Window,
    now: datetime,
    *,
    project: str | None = None,
    ci_ids: Iterable[int] | None = None,
    sparkline: bool = False,
) -> tuple[dict[int, Counts], dict[int, list[int]], dict[int, list[float | None]]]:
    """Counts, latency histograms and (with `sparkline`) sparklines of a window: counts exact
    from ``ci_runs`` for 1 h, from the rollups otherwise."""
    since = now - WINDOW_SPANS[window]
    ids = sorted(set(ci_ids)) if ci_ids is not None else None
    sparks: dict[int, list[float | None]] = {}
    if window == "1h":
        counts, histograms = await exact_counts(conn, since, now, project=project, ci_ids=ids)
        if sparkline:
            sparks = await sparklines(conn, window, now, project=project, ci_ids=ids)
        return counts, histograms, sparks
    counts, sparks = await rollup_window(conn, since, window if sparkline else None, now, project=project, ci_ids=ids)
    histograms = await latency_histograms(conn, since, ci_ids=ids if ids is not None else sorted(counts), until=now)
    return counts, histograms, sparks


def sparkline_buckets(window: Window, now: datetime) -> tuple[list[datetime], timedelta]:
    """Bucket starts (oldest first) of a window's sparkline: 24 hours for 1h/24h, 14 days otherwise."""
    if window in ("1h", "24h"):
        current = hour_floor(now)
        return [current - timedelta(hours=23 - i) for i in range(24)], timedelta(hours=1)
    today = hour_floor(now).replace(hour=0)
    return [today - timedelta(days=13 - i) for i in range(14)], timedelta(days=1)


async def rollup_window(
    conn: AsyncConnection,
    since: datetime | None,
    sparkline: Window | None,
    now: datetime,
    *,
    project: str | None = None,
    ci_ids: Iterable[int] | None = None,
) -> tuple[dict[int, Counts], dict[int, list[float | None]]]:
    """In one statement, one row per CI system: the rollup sums of the hours starting at or after
    `since` (floored to the hour; none when `since` is None) and before `now` (a window pinned
    in the past, e.g. a report's week ending at midnight, leaves out what came after it) and the
    success rate of each bucket of the `sparkline` window's sparkline (:func:`sparkline_buckets`;
    None where it had no runs).
    Without `project` it reads ``ci_hour_totals`` (one row per CI and hour), else ``ci_rollups``."""
    t = rollups_t if project is not None else hour_totals_t
    starts, step = sparkline_buckets(sparkline or "24h", now)
    hourly = step == timedelta(hours=1)
    bounds = []
    if since is not None:
        bounds.append(hour_floor(since))
    if sparkline is not None:
        bounds.append(starts[0])
    if not bounds:
        return {}, {}
    slot: sa.ColumnElement[Any] = t.c.hour if hourly else sa.func.date(t.c.hour)
    in_window: sa.ColumnElement[bool] = t.c.hour >= _at(hour_floor(since)) if since is not None else sa.false()
    in_spark: sa.ColumnElement[bool] = t.c.hour >= _at(starts[0]) if sparkline is not None else sa.false()

    def windowed(column: sa.ColumnElement[Any]) -> sa.ColumnElement[Any]:
        return sa.func.sum(sa.case((in_window, column), else_=0))

    inner = (
        sa.select(
            t.c.ci_system_id.label("ci"),
            slot.label("slot"),
            sa.func.sum(t.c.runs).label("r"),
            sa.func.sum(t.c.successes).label("s"),
            windowed(t.c.runs).label("wr"),
            windowed(t.c.successes).label("ws"),
            windowed(t.c.test_failures).label("wf"),
            windowed(t.c.infra_errors).label("wi"),
            windowed(t.c.latency_n).label("wn"),
            windowed(t.c.latency_sum).label("wl"),
            sa.func.max(sa.case((in_spark, 1), else_=0)).label("sp"),
        )
        .where(t.c.hour >= _at(min(bounds)), t.c.hour < _at(now), *_ids_filter(t.c.ci_system_id, ci_ids))
        .group_by(slot, t.c.ci_system_id)
    )
    if project is not None:
        inner = inner.where(t.c.project == project)
    sub = inner.subquery("h")
    entry = sa.cast(sub.c.slot, sa.String) + "|" + sa.cast(sub.c.r, sa.String) + "|" + sa.cast(sub.c.s, sa.String)
    query = sa.select(
        sub.c.ci,
        sa.func.sum(sub.c.wr),
        sa.func.sum(sub.c.ws),
        sa.func.sum(sub.c.wf),
        sa.func.sum(sub.c.wi),
        sa.func.sum(sub.c.wn),
        sa.func.sum(sub.c.wl),
        sa.func.group_concat(sa.case((sub.c.sp == 1, entry))),
    ).group_by(sub.c.ci)
    await allow_long_group_concat(conn)
    # slots come back as text ("2026-11-25 10:00:00[.000000]" or "2026-11-25"): match the prefix
    width = 13 if hourly else 10
    index = {start.strftime("%Y-%m-%d %H")[:width]: i for i, start in enumerate(starts)}
    counts: dict[int, Counts] = {}
    sparks: dict[int, list[float | None]] = {}
    for ci, runs, successes, failures, infra, latency_n, latency_sum, packed in await conn.execute(query):
        if since is not None and runs:
            counts[ci] = Counts(
                int(runs),
                int(successes or 0),
                int(failures or 0),
                int(infra or 0),
                int(latency_n or 0),
                float(latency_sum or 0.0),
            )
        if sparkline is None or packed is None:
            continue
        values: list[float | None] = [None] * len(starts)
        for item in text_of(packed).split(","):
            key, bucket_runs, bucket_successes = item.rsplit("|", 2)
            position = index.get(key[:width])
            total = int(float(bucket_runs))
            if position is not None and total > 0:
                values[position] = int(float(bucket_successes)) / total
        sparks[ci] = values
    return counts, sparks


async def sparklines(
    conn: AsyncConnection,
    window: Window,
    now: datetime,
    *,
    project: str | None = None,
    ci_ids: Iterable[int] | None = None,
) -> dict[int, list[float | None]]:
    """Per CI system, the success rate of each sparkline bucket (None where it had no runs)."""
    return (await rollup_window(conn, None, window, now, project=project, ci_ids=ci_ids))[1]


async def followed_projects(
    conn: AsyncConnection, configured: Mapping[int, Sequence[str]], now: datetime, ci_ids: Iterable[int] | None = None
) -> dict[int, list[str]]:
    """Per CI system: its configured projects, else the projects it commented on in the last 30 d
    (a range of the ``ci_rollups`` hour index, which holds ci_system_id and project too)."""
    t = rollups_t
    query = (
        sa.select(t.c.ci_system_id, t.c.project)
        .where(t.c.hour >= _at(hour_floor(now - FOLLOW_SPAN)))
        .group_by(t.c.ci_system_id, t.c.project)
    )
    wanted = sorted(set(ci_ids)) if ci_ids is not None else None
    if wanted is not None:
        query = query.where(t.c.ci_system_id.in_(wanted))
    found: dict[int, list[str]] = {}
    for ci, project in await conn.execute(query):
        found.setdefault(ci, []).append(project)
    for ci, projects in configured.items():
        if projects:
            found[ci] = list(projects)
    return {ci: sorted(set(projects)) for ci, projects in found.items()}


# -- queries: run-level metrics --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CoverageParams:
    """What coverage and silence need to know about one CI system."""

    ci_system_id: int
    projects: tuple[str, ...]
    reasonable_s: float
    last_seen: datetime | None
    branches: tuple[str, ...] = ()  # fnmatch patterns; empty: every branch

    def follows_branch(self, branch: str) -> bool:
        return not self.branches or any(fnmatch.fnmatchcase(branch, pattern) for pattern in self.branches)


@dataclass(frozen=True, slots=True)
class PatchSetDigest:
    """One patch set with CI activity in a window, and what each CI posted on it there."""

    patchset_id: int
    project: str
    branch: str
    created_at: datetime | None
    next_created_at: datetime | None  # creation of the first newer patch set, when known
    status: str | None  # the change's status
    last_activity: datetime | None  # latest CI result on it in the window
    entries: tuple[tuple[int, int, int, int, int], ...]  # (ci, class code of the latest run, runs, lowest, highest)


_PACK_N = 128  # runs per (CI, patch set) are packed as min(n, 127)


def _millis_sql(dialect_name: str, moment: sa.ColumnElement[datetime]) -> sa.ColumnElement[int]:
    """Milliseconds since 2000-01-01 of a UTCDateTime column (an order-preserving integer)."""
    if dialect_name in ("mysql", "mariadb"):
        micros = sa.func.timestampdiff(sa.literal_column("MICROSECOND"), sa.literal_column("'2000-01-01'"), moment)
        return sa.cast(sa.func.floor(micros / 1000), sa.BigInteger)
    days = sa.func.julianday(moment) - 2451544.5
    return sa.cast(sa.func.round(days * 86_400_000.0), sa.BigInteger)


def _per_pair(
    dialect_name: str, start: datetime, end: datetime, project: str | None, projects: Sequence[str] | None
) -> sa.Subquery:
    """One row per (CI, patch set) with runs posted in [start, end]: how many runs, the lowest and
    highest class, the class of the latest run (``latest % 4``) and when that run was posted.

    GROUP BY only, no window functions: MariaDB keeps it in memory much longer, and with a
    ``(posted_at, id, ci_system_id, patchset_id, result)`` index it never reads a run row."""
    r = m.runs_t
    base = sa.select(
        r.c.ci_system_id,
        r.c.patchset_id,
        r.c.posted_at,
        class_code_sql(r.c.result).label("code"),
    ).where(r.c.posted_at >= _at(start), r.c.posted_at <= _at(end))
    if project is not None:
        base = base.where(r.c.project == project)
    elif projects is not None:
        base = base.where(r.c.project.in_(sorted(set(projects))))
    b = base.subquery("b")
    return (
        sa.select(
            b.c.ci_system_id,
            b.c.patchset_id,
            sa.func.count().label("n"),
            sa.func.min(b.c.code).label("lo"),
            sa.func.max(b.c.code).label("hi"),
            sa.func.max(_millis_sql(dialect_name, b.c.posted_at) * 4 + b.c.code).label("latest"),
            sa.func.max(b.c.posted_at).label("last_at"),
        )
        .group_by(b.c.ci_system_id, b.c.patchset_id)
        .subquery("y")
    )


def _pack_sql(y: sa.Subquery) -> sa.ColumnElement[int]:
    """(CI, runs, lowest, highest, latest class) as one integer (see :func:`_unpack`)."""
    n = sa.case((y.c.n >= _PACK_N, _PACK_N - 1), else_=y.c.n)
    packed = (((y.c.ci_system_id * _PACK_N + n) * 4 + y.c.lo) * 4 + y.c.hi) * 4 + y.c.latest % 4
    return sa.cast(packed, sa.BigInteger)


def _unpack(text: Any) -> tuple[tuple[int, int, int, int, int], ...]:
    """``group_concat`` of :func:`_pack_sql` values -> ((ci, latest class, runs, lowest, highest), ...)."""
    if text is None:
        return ()
    entries = []
    for item in text_of(text).split(","):
        value, code = divmod(int(item), 4)
        value, hi = divmod(value, 4)
        value, lo = divmod(value, 4)
        ci, n = divmod(value, _PACK_N)
        entries.append((ci, code, n, lo, hi))
    return tuple(entries)


async def patchset_digests(
    conn: AsyncConnection,
    start: datetime,
    end: datetime,
    *,
    project: str | None = None,
    projects: Sequence[str] | None = None,
) -> list[PatchSetDigest]:
    """Every patch set with CI results posted in [start, end] (of `project`, or of `projects`),
    with each CI's latest result class, run count and class range on it: one statement, one row
    per patch set (the per-CI part packed into one ``group_concat`` of integers)."""
    await allow_long_group_concat(conn)
    y = _per_pair(conn.dialect.name, start, end, project, projects)
    per_ps = (
        sa.select(
            y.c.patchset_id.label("patchset_id"),
            sa.func.max(y.c.last_at).label("last_activity"),
            sa.func.group_concat(_pack_sql(y)).label("packed"),
        )
        .group_by(y.c.patchset_id)
        .subquery("d")
    )
    p, later, c = m.patchsets_t.alias("p"), m.patchsets_t.alias("later"), m.changes_t.alias("c")
    # when a newer patch set of the change appeared (a range of the (change_db_id, number) key)
    superseded = (
        sa.select(sa.func.min(later.c.created_at))
        .where(later.c.change_db_id == p.c.change_db_id, later.c.number > p.c.number)
        .scalar_subquery()
    )
    query = sa.select(
        per_ps.c.patchset_id,
        c.c.project,
        c.c.branch,
        sa.type_coerce(per_ps.c.last_activity, UTCDateTime()),
        per_ps.c.packed,
        p.c.created_at,
        sa.type_coerce(superseded, UTCDateTime()),
        c.c.status,
    ).select_from(per_ps.join(p, p.c.id == per_ps.c.patchset_id).join(c, c.c.id == p.c.change_db_id))
    return [
        PatchSetDigest(
            patchset_id=ps_id,
            project=name,
            branch=branch,
            created_at=created,
            next_created_at=next_created,
            status=status,
            last_activity=last,
            entries=_unpack(packed),
        )
        for ps_id, name, branch, last, packed, created, next_created, status in await conn.execute(query)
    ]


def metrics_from_digests(
    digests: Iterable[PatchSetDigest],
    start: datetime,
    end: datetime,
    params: Sequence[CoverageParams],
    reference_ids: Iterable[int],
) -> dict[int, RunMetrics]:
    """Coverage, agreement and flakiness of every CI in `params` (module docstring for the rules)."""
    found = {p.ci_system_id: RunMetrics() for p in params}
    references = set(reference_ids)
    followers: dict[str, list[tuple[CoverageParams, timedelta]]] = {}
    for p in params:
        for name in p.projects:
            followers.setdefault(name, []).append((p, timedelta(seconds=p.reasonable_s)))
    comparable = (_SUCCESS, _FAILURE)
    for digest in digests:
        ref_code: int | None = None
        answered: set[int] = set()
        for ci, code, _, _, _ in digest.entries:
            answered.add(ci)
            if ci in references and ref_code is None:
                ref_code = code
        for ci, code, n, lo, hi in digest.entries:
            entry = found.get(ci)
            if entry is None:
                continue
            entry.answered += 1
            if lo in _FAILED or hi in _FAILED:
                entry.failed_patchsets += 1
                if n >= 2 and code == _SUCCESS:
                    entry.recovered += 1
            if n >= 2:
                entry.rechecked += 1
                if lo != hi:
                    entry.flaky += 1
            if code == _FAILURE:
                entry.negatives += 1
            elif code == _SUCCESS:
                entry.positives += 1
            if ref_code in comparable and code in comparable and ci not in references:
                entry.compared += 1
                if ref_code == _SUCCESS:
                    entry.reference_passed += 1
                if code == ref_code:
                    entry.agree += 1
                elif code == _FAILURE:
                    entry.fail_when_reference_passed += 1
                    if digest.status == "MERGED":
                        entry.false_negatives += 1
                        if len(entry.false_negative_cases) < CASES_KEPT:
                            entry.false_negative_cases.append(digest.patchset_id)
                else:
                    entry.pass_when_reference_failed += 1
                    if len(entry.false_positive_cases) < CASES_KEPT:
                        entry.false_positive_cases.append(digest.patchset_id)
        created = digest.created_at
        if created is None or created < start:
            continue
        superseded = digest.next_created_at
        closed_at = digest.last_activity if digest.status in _CLOSED else None
        for follower, reasonable in followers.get(digest.project, ()):
            if not follower.follows_branch(digest.branch):
                continue
            ci, last_seen = follower.ci_system_id, follower.last_seen
            deadline = created + reasonable
            if deadline > end:
                continue  # too recent: it may still answer
            if superseded is not None and superseded < deadline:
                continue  # superseded before it could reasonably answer
            if digest.status in _CLOSED and (closed_at is None or closed_at < deadline):
                continue  # merged or abandoned before it could reasonably answer
            entry = found[ci]
            entry.eligible += 1
            if ci in answered:
                entry.covered += 1
            elif last_seen is None or created > last_seen:
                entry.missed_since_last_seen += 1
    return found


async def run_metrics(
    conn: AsyncConnection,
    start: datetime,
    end: datetime,
    params: Sequence[CoverageParams],
    reference_ids: Iterable[int],
    *,
    project: str | None = None,
    only_followed: bool = False,
) -> dict[int, RunMetrics]:
    """Coverage, agreement and flakiness of every CI in `params` over runs posted in [start, end]:
    one statement whatever the number of CI systems (:func:`patchset_digests`). With
    `only_followed`, only runs in the projects the given CI systems follow are read (one CI's
    detail page)."""
    projects = sorted({name for p in params for name in p.projects}) if only_followed else None
    if projects is not None and not projects and project is None:
        return {p.ci_system_id: RunMetrics() for p in params}
    digests = await patchset_digests(conn, start, end, project=project, projects=projects)
    found = metrics_from_digests(digests, start, end, params, reference_ids)
    waits = await first_answer_waits(conn, start, end, ci_ids=sorted(found), project=project, projects=projects)
    for ci, seconds in waits.items():
        seconds.sort()
        found[ci].queue_p50_s = exact_quantile(seconds, 0.5)
        found[ci].queue_p95_s = exact_quantile(seconds, 0.95)
    rechecks = await recheck_counts(conn, start, end, sorted(found), project=project, projects=projects)
    for ci, count in rechecks.items():
        found[ci].rechecks = count
    return found


def exact_quantile(ordered: Sequence[float], q: float) -> float | None:
    """The `q` quantile of sorted values, linear between the two nearest ranks; None when empty."""
    if not ordered:
        return None
    rank = q * (len(ordered) - 1)
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


async def first_answer_waits(
    conn: AsyncConnection,
    start: datetime,
    end: datetime,
    *,
    ci_ids: Sequence[int],
    project: str | None = None,
    projects: Sequence[str] | None = None,
) -> dict[int, list[float]]:
    """Queue latency: per CI, for each patch set created in [start, end] that it answered, the
    seconds from the upload to its first comment on it (a "started" comment or a result)."""
    if not ci_ids:
        return {}
    r, c, p = m.runs_t, m.ci_comments_t, m.patchsets_t

    def first_comments(table: sa.Table, *where: sa.ColumnElement[bool]) -> sa.Select[Any]:
        query = sa.select(table.c.ci_system_id, table.c.patchset_id, table.c.posted_at).where(
            table.c.posted_at >= _at(start), table.c.posted_at <= _at(end), table.c.ci_system_id.in_(ci_ids), *where
        )
        if project is not None:
            query = query.where(table.c.project == project)
        elif projects is not None:
            query = query.where(table.c.project.in_(sorted(set(projects))))
        return query

    both = sa.union_all(first_comments(r), first_comments(c, c.c.kind == "start")).subquery("a")
    first = (
        sa.select(both.c.ci_system_id, both.c.patchset_id, sa.func.min(both.c.posted_at).label("first_at"))
        .group_by(both.c.ci_system_id, both.c.patchset_id)
        .subquery("f")
    )
    query = (
        sa.select(first.c.ci_system_id, sa.type_coerce(first.c.first_at, UTCDateTime()), p.c.created_at)
        .join(p, p.c.id == first.c.patchset_id)
        .where(p.c.created_at >= _at(start), p.c.created_at <= _at(end))
    )
    waits: dict[int, list[float]] = {}
    for ci, first_at, created in await conn.execute(query):
        if first_at is not None and created is not None and first_at >= created:
            waits.setdefault(ci, []).append((first_at - created).total_seconds())
    return waits


# -- the assessment ------------------------------------------------------------------------------

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


@dataclass(slots=True)
class TTLCache(Generic[K, V]):
    """A small time-bounded memo for expensive, slowly changing results (run-level metrics).

    A value is fresh for `ttl_s`. For `stale_s` more, :meth:`get_or_compute` still returns it at
    once and recomputes it in the background (one refresh per key at a time), so a busy
    dashboard never waits for the expensive statement; older values are recomputed inline.
    """

    ttl_s: float
    stale_s: float = 0.0
    max_entries: int = 256
    clock: Callable[[], float] = time.monotonic
    entries: dict[K, tuple[float, V]] = field(default_factory=dict)
    refreshing: dict[K, asyncio.Task[None]] = field(default_factory=dict)

    def get(self, key: K) -> V | None:
        """The value when fresh, else None."""
        if self.ttl_s <= 0:
            return None
        entry = self.entries.get(key)
        if entry is None or self.clock() - entry[0] > self.ttl_s:
            return None
        return entry[1]

    def put(self, key: K, value: V) -> None:
        if self.ttl_s <= 0:
            return
        if len(self.entries) >= self.max_entries:
            self.entries.clear()
        self.entries[key] = (self.clock(), value)

    async def get_or_compute(self, key: K, compute: Callable[[], Awaitable[V]]) -> V:
        entry = self.entries.get(key) if self.ttl_s > 0 else None
        if entry is not None:
            age = self.clock() - entry[0]
            if age <= self.ttl_s:
                return entry[1]
            if age <= self.ttl_s + self.stale_s:
                if key not in self.refreshing:
                    self.refreshing[key] = asyncio.create_task(self._refresh(key, compute))
                return entry[1]
        value = await compute()
        self.put(key, value)
        return value

    def peek_or_start(self, key: K, compute: Callable[[], Awaitable[V]], refresh_after_s: float) -> V | None:
        """The cached value however old, else None; never waits. A refresh starts in the background
        when there is no value or it is older than `refresh_after_s` (one per key at a time)."""
        entry = self.entries.get(key) if self.ttl_s > 0 else None
        if (entry is None or self.clock() - entry[0] > refresh_after_s) and key not in self.refreshing:
            self.refreshing[key] = asyncio.create_task(self._refresh(key, compute))
        return entry[1] if entry is not None else None

    async def _refresh(self, key: K, compute: Callable[[], Awaitable[V]]) -> None:
        try:
            self.put(key, await compute())
        except Exception:
            log.exception("background refresh of %r failed", key)
        finally:
            self.refreshing.pop(key, None)

    def clear(self) -> None:
        self.entries.clear()

    async def close(self) -> None:
        """Cancel background refreshes (application shutdown)."""
        tasks = list(self.refreshing.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self.refreshing.clear()


HealthCache = TTLCache[Hashable, Any]


@dataclass(frozen=True, slots=True)
class SystemRef:
    """What the assessment needs to know about a CI system."""

    id: int
    server_id: int
    name: str
    display_name: str
    is_reference: bool
    last_seen: datetime | None
    configured_projects: tuple[str, ...] = ()
    configured_branches: tuple[str, ...] = ()  # fnmatch patterns; empty: every branch


@dataclass(slots=True)
class Assessment:
    state: State
    reason: str
    projects: list[str]
    windows: dict[Window, HealthWindow]
    sparkline: list[float | None] = field(default_factory=list)
    metrics: dict[Window, RunMetrics] = field(default_factory=dict)  # the counts behind the windows' rates


async def _cached_metrics(
    conn: AsyncConnection,
    cache: HealthCache | None,
    window: Window,
    pinned_now: datetime | None,
    params: Sequence[CoverageParams],
    reference_ids: Sequence[int],
    project: str | None,
    only_followed: bool,
) -> dict[int, RunMetrics] | None:
    """The run-level metrics of `window`; None while a :data:`BACKGROUND_WINDOWS` one is computed."""

    def span(now: datetime) -> tuple[datetime, datetime]:
        return now - WINDOW_SPANS[window], now

    if cache is None:
        start, end = span(pinned_now or datetime.now(UTC))
        return await run_metrics(conn, start, end, params, reference_ids, project=project, only_followed=only_followed)
    engine = conn.engine

    async def compute() -> dict[int, RunMetrics]:
        start, end = span(pinned_now or datetime.now(UTC))
        async with engine.connect() as own:  # may run in the background, after this request
            return await run_metrics(
                own, start, end, params, reference_ids, project=project, only_followed=only_followed
            )

    # last_seen and the answer times move all the time: they are not part of the key
    key = ("metrics", window, project, only_followed, tuple(sorted(p.ci_system_id for p in params)), pinned_now)
    if window in BACKGROUND_WINDOWS and cache.ttl_s > 0:
        waiting: dict[int, RunMetrics] | None = cache.peek_or_start(key, compute, BACKGROUND_REFRESH_S)
        return waiting
    found: dict[int, RunMetrics] = await cache.get_or_compute(key, compute)
    return found


async def _followed(
    conn: AsyncConnection,
    cache: HealthCache | None,
    systems: Sequence[SystemRef],
    now: datetime,
    pinned_now: datetime | None,
    single: bool,
) -> dict[int, list[str]]:
    configured = {s.id: s.configured_projects for s in systems if s.configured_projects}
    ids = [s.id for s in systems] if single else None
    if cache is None:
        return await followed_projects(conn, configured, now, ci_ids=ids)
    engine = conn.engine

    async def compute() -> dict[int, list[str]]:
        async with engine.connect() as own:
            return await followed_projects(own, configured, pinned_now or datetime.now(UTC), ci_ids=ids)

    key = ("followed", tuple(sorted(configured.items())), tuple(ids) if ids else None, pinned_now)
    found: dict[int, list[str]] = await cache.get_or_compute(key, compute)
    return found


async def assess(
    conn: AsyncConnection,
    systems: Sequence[SystemRef],
    windows: Sequence[Window],
    *,
    project: str | None = None,
    now: datetime | None = None,
    cache: HealthCache | None = None,
    references: Sequence[SystemRef] = (),
    sparkline: Window | None = None,
) -> dict[int, Assessment]:
    """Health windows, state and (with `sparkline`) the sparkline of `systems`, by CI system id.

    `references` are the reference CI systems of the servers involved (compared with; when
    empty, the references among `systems` are used). Statements run: a fixed handful per
    window, whatever the number of systems; with one system only its projects' runs are read.
    With a `cache`, the run-level metrics and the followed projects are reused (see
    :class:`TTLCache`); the counts and latencies always come fresh from the rollups.
    """
    pinned_now = now
    now = now or datetime.now(UTC)
    if not systems:
        return {}
    ids = [s.id for s in systems]
    refs = list(references) or [s for s in systems if s.is_reference]
    reference_ids = sorted({r.id for r in refs})
    reference_name = {r.server_id: r.display_name for r in refs}
    single = len(systems) == 1
    projects = await _followed(conn, cache, systems, now, pinned_now, single)

    wanted: list[Window] = list(dict.fromkeys([*windows, STATE_WINDOW]))
    numbers = {
        w: await window_numbers(conn, w, now, project=project, ci_ids=ids if single else None, sparkline=w == sparkline)
        for w in wanted
    }
    sparks = numbers[sparkline][2] if sparkline in numbers else {}
    if sparkline is not None and sparkline not in numbers:
        sparks = await sparklines(conn, sparkline, now, project=project, ci_ids=ids if single else None)
    # the CI's own answer time, for coverage and silence: its 24 h latency over all projects
    state_histograms = numbers[STATE_WINDOW][1]
    if project is not None:
        state_histograms = (await window_numbers(conn, STATE_WINDOW, now, ci_ids=ids if single else None))[1]
    p95 = {ci: percentile(hist, 0.95) for ci, hist in state_histograms.items()}
    p50 = {ci: percentile(hist, 0.5) for ci, hist in state_histograms.items()}
    params = [
        CoverageParams(
            s.id, tuple(projects.get(s.id, ())), reasonable_answer_s(p95.get(s.id)), s.last_seen, s.configured_branches
        )
        for s in systems
    ]
    metrics: dict[Window, dict[int, RunMetrics]] = {}
    pending: set[Window] = set()
    for window in wanted:
        if window in RUN_METRIC_WINDOWS:
            found = await _cached_metrics(
                conn, cache, window, pinned_now, params, reference_ids, project, only_followed=single
            )
            if found is None:
                pending.add(window)
            else:
                metrics[window] = found

    empty_spark: list[float | None] = [None] * len(sparkline_buckets(sparkline or "24h", now)[0])
    result: dict[int, Assessment] = {}
    for s in systems:
        counts = {w: numbers[w][0].get(s.id) for w in wanted}
        hists = {w: numbers[w][1].get(s.id) for w in wanted}
        state, reason = decide_state(
            counts=counts[STATE_WINDOW] or Counts(),
            metrics=metrics[STATE_WINDOW].get(s.id),
            p50_s=p50.get(s.id),
            last_seen=s.last_seen,
            now=now,
            is_reference=s.is_reference,
            reference_name=reference_name.get(s.server_id),
        )
        result[s.id] = Assessment(
            state=state,
            reason=reason,
            projects=projects.get(s.id, []),
            windows={
                w: health_window(
                    w, counts[w], hists[w], metrics[w].get(s.id) if w in metrics else None, pending=w in pending
                )
                for w in windows
            },
            sparkline=sparks.get(s.id, empty_spark) if sparkline is not None else [],
            metrics={w: metrics[w][s.id] for w in windows if w in metrics and s.id in metrics[w]},
        )
    return result
