"""The health model, pure: how each CI system is doing, per window, and the one-word state it is in.

The rules and numbers live here, without I/O; the statements that gather the numbers are in
:mod:`cidash.store.reads.health`, and :func:`cidash.health.assess` puts the two together (with
its cache).

What is measured (per CI system, per window 1h / 24h / 7d / 30d, optionally for one project):

* counts and rates: runs, success rate, test-failure rate, infra-error rate, from
  ``ci_hour_totals`` (``ci_rollups`` for one project; a window sums the hourly rows whose hour
  starts at or after ``now - window`` floored to the hour; the 1 h window is counted exactly from
  ``ci_runs``), with the sparkline in the same statement;
* latency p50 / p95: from the ``ci_latency`` log2 histograms, interpolated linearly inside the
  bucket (:func:`percentile`). They are per CI system, whatever the project filter;
* run-level metrics, from ``ci_runs``, for the windows in :data:`RUN_METRIC_WINDOWS` only (30 d
  would scan too many runs per request). One statement for every CI system at once
  (:func:`cidash.store.reads.health.patchset_digests`: one row per patch set, each CI's part
  packed into integers), then plain Python (:func:`metrics_from_digests`):

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
  :class:`cidash.health.HealthCache` (served stale while a background refresh runs); the 30 d
  ones (:data:`cidash.health.assess.BACKGROUND_WINDOWS`) are only ever computed in the background.

* the state (:func:`decide_state`), from the 24 h window: ``silent``, ``unknown``, ``failing``,
  ``degraded`` or ``healthy``, with the reason in plain words.

Everything takes ``now`` so that tests can pin the clock.
"""

from __future__ import annotations

import fnmatch
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from cidash.domain.results import CLASS_CODES
from cidash.domain.spans import duration_text
from cidash.domain.views import HealthWindow, State, VoteQuality, Window

WINDOWS: tuple[Window, ...] = ("1h", "24h", "7d", "30d")
WINDOW_SPANS: dict[Window, timedelta] = {
    "1h": timedelta(hours=1),
    "24h": timedelta(hours=24),
    "7d": timedelta(days=7),
    "30d": timedelta(days=30),
}
RUN_METRIC_WINDOWS: frozenset[Window] = frozenset({"1h", "24h", "7d", "30d"})
"""Windows for which coverage, agreement and flakiness are computed (they scan ``ci_runs``)."""
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
        "result, after running again on the same patch set (a recheck), is a success. Every failed patch set counts, "
        "the change's failures too: a share of its own runs, not a charge against it, so it is not judged against "
        "other CIs as the recheck burden is."
    ),
    "rechecks": (
        "Recheck burden: the human comments in the window that asked it to run again. A CI-specific one "
        "(recheck-<name>, <name>: recheck, recheck <name>, or the CI's recheck_patterns) counts for the CI it "
        "names, whatever its results; a plain 'recheck' (or 'recheck <reason>') for a CI whose latest result on the "
        "patch set before the comment was a test failure or an infra error of its own: judged as incidents judge a "
        "failure, the reference CI passed the patch set (or, with no reference result, most other CIs that reported "
        "on it passed; the reference CI is judged by the others). A plain recheck after a change broke every CI "
        "counts for none of them, one before any failure for nobody. Also per 100 of its runs in the window."
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


# -- latency histograms ----------------------------------------------------------------------------

LATENCY_BUCKETS = 24  # bucket b holds latencies in [2^(b-1), 2^b) seconds; b = 0 holds < 1 s


def clean_latency(latency_s: float | None) -> float | None:
    """The latency the rollups count: None when unknown or not finite, 0 when negative (clock skew)."""
    if latency_s is None or not math.isfinite(latency_s):
        return None
    return max(0.0, float(latency_s))


def latency_bucket(latency_s: float) -> int:
    """Histogram bucket of a (clean, non-negative) latency: 0 for < 1 s, b for [2^(b-1), 2^b)."""
    if latency_s < 1.0:
        return 0
    exponent = math.frexp(latency_s)[1]  # latency = mantissa * 2^exponent, mantissa in [0.5, 1)
    return min(exponent, LATENCY_BUCKETS - 1)


def bucket_bounds(bucket: int) -> tuple[float, float]:
    """The latency range ``[low, high)`` of a bucket, in seconds."""
    if bucket <= 0:
        return 0.0, 1.0
    return float(2 ** (bucket - 1)), float(2**bucket)


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


# -- run-level metrics -----------------------------------------------------------------------------


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
    for digest in digests:
        _count_results(found, digest, references)
        _count_coverage(found, digest, followers.get(digest.project, ()), start, end)
    return found


_COMPARABLE = (_SUCCESS, _FAILURE)


def _count_results(found: dict[int, RunMetrics], digest: PatchSetDigest, references: set[int]) -> None:
    """What each CI posted on one patch set: answers, rechecks, votes, and how it compares with the
    reference CI's latest result there."""
    ref_code = next((code for ci, code, _, _, _ in digest.entries if ci in references), None)
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
        if ref_code in _COMPARABLE and code in _COMPARABLE and ci not in references:
            _compare_with_reference(entry, code, ref_code, digest)


def _compare_with_reference(entry: RunMetrics, code: int, ref_code: int | None, digest: PatchSetDigest) -> None:
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


def _count_coverage(
    found: dict[int, RunMetrics],
    digest: PatchSetDigest,
    followers: Iterable[tuple[CoverageParams, timedelta]],
    start: datetime,
    end: datetime,
) -> None:
    """One patch set's part in the coverage (and silence) of the CIs following its project."""
    created = digest.created_at
    if created is None or created < start:
        return
    answered = {ci for ci, _, _, _, _ in digest.entries}
    superseded = digest.next_created_at
    closed_at = digest.last_activity if digest.status in _CLOSED else None
    for follower, reasonable in followers:
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


def exact_quantile(ordered: Sequence[float], q: float) -> float | None:
    """The `q` quantile of sorted values, linear between the two nearest ranks; None when empty."""
    if not ordered:
        return None
    rank = q * (len(ordered) - 1)
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


# -- what the assessment works on ------------------------------------------------------------------


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
