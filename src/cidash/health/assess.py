"""The health service: :func:`assess` gathers a window's numbers through
:mod:`cidash.store.reads.health`, judges them with :mod:`cidash.domain.health`, and reuses the
slow run-level metrics through a :class:`~cidash.health.cache.HealthCache`.

Everything takes ``now`` so that tests can pin the clock.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncConnection

from cidash.domain.health import (
    RUN_METRIC_WINDOWS,
    STATE_WINDOW,
    WINDOW_SPANS,
    Assessment,
    Counts,
    CoverageParams,
    RunMetrics,
    SystemRef,
    decide_state,
    exact_quantile,
    health_window,
    metrics_from_digests,
    percentile,
    reasonable_answer_s,
)
from cidash.domain.views import Window
from cidash.health.cache import FollowedKey, HealthCache, MetricsKey
from cidash.store import reads, rechecks

BACKGROUND_WINDOWS: frozenset[Window] = frozenset({"30d"})
"""With a cache (the API), the run-level metrics of these windows are never computed inside a
request: they scan a month of runs (seconds on a big history), so a request gets the cached value
(however old; a refresh starts when it is past the TTL) or, before the first computation has
finished, none (``metrics_pending``)."""
BACKGROUND_REFRESH_S = 600.0
"""A :data:`BACKGROUND_WINDOWS` value older than this is recomputed (in the background): a month's
numbers move little in ten minutes, and the scan takes seconds (27 s at 1.5 M runs on a loaded
2-core machine)."""


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
    one statement whatever the number of CI systems (:func:`~cidash.store.reads.health.patchset_digests`). With
    `only_followed`, only runs in the projects the given CI systems follow are read (one CI's
    detail page)."""
    projects = sorted({name for p in params for name in p.projects}) if only_followed else None
    if projects is not None and not projects and project is None:
        return {p.ci_system_id: RunMetrics() for p in params}
    digests = await reads.health.patchset_digests(conn, start, end, project=project, projects=projects)
    found = metrics_from_digests(digests, start, end, params, reference_ids)
    waits = await reads.health.first_answer_waits(
        conn, start, end, ci_ids=sorted(found), project=project, projects=projects
    )
    for ci, seconds in waits.items():
        seconds.sort()
        found[ci].queue_p50_s = exact_quantile(seconds, 0.5)
        found[ci].queue_p95_s = exact_quantile(seconds, 0.95)
    aimed = await rechecks.recheck_counts(conn, start, end, sorted(found), project=project, projects=projects)
    for ci, count in aimed.items():
        found[ci].rechecks = count
    return found


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
    key: MetricsKey = (window, project, only_followed, tuple(sorted(p.ci_system_id for p in params)), pinned_now)
    if window in BACKGROUND_WINDOWS and cache.metrics.ttl_s > 0:
        return cache.metrics.peek_or_start(key, compute, BACKGROUND_REFRESH_S)
    return await cache.metrics.get_or_compute(key, compute)


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
        return await reads.health.followed_projects(conn, configured, now, ci_ids=ids)
    engine = conn.engine

    async def compute() -> dict[int, list[str]]:
        async with engine.connect() as own:
            return await reads.health.followed_projects(own, configured, pinned_now or datetime.now(UTC), ci_ids=ids)

    key: FollowedKey = (tuple(sorted(configured.items())), tuple(ids) if ids else None, pinned_now)
    return await cache.followed.get_or_compute(key, compute)


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
    :class:`~cidash.health.cache.HealthCache`); the counts and latencies always come fresh from the rollups.
    """
    pinned_now = now
    now = now or datetime.now(UTC)
    if not systems:
        return {}
    ids = [s.id for s in systems] if len(systems) == 1 else None  # one system: only its own rows
    refs = list(references) or [s for s in systems if s.is_reference]
    projects = await _followed(conn, cache, systems, now, pinned_now, ids is not None)

    wanted: list[Window] = list(dict.fromkeys([*windows, STATE_WINDOW]))
    numbers = {
        w: await reads.health.window_numbers(conn, w, now, project=project, ci_ids=ids, sparkline=w == sparkline)
        for w in wanted
    }
    sparks = numbers[sparkline][2] if sparkline in numbers else {}
    if sparkline is not None and sparkline not in numbers:
        sparks = await reads.health.sparklines(conn, sparkline, now, project=project, ci_ids=ids)
    # the CI's own answer time, for coverage and silence: its 24 h latency over all projects
    state_histograms = numbers[STATE_WINDOW][1]
    if project is not None:
        state_histograms = (await reads.health.window_numbers(conn, STATE_WINDOW, now, ci_ids=ids))[1]
    p95 = {ci: percentile(hist, 0.95) for ci, hist in state_histograms.items()}
    params = [
        CoverageParams(
            s.id, tuple(projects.get(s.id, ())), reasonable_answer_s(p95.get(s.id)), s.last_seen, s.configured_branches
        )
        for s in systems
    ]
    gathered = _Gathered(now, projects, numbers, {ci: percentile(h, 0.5) for ci, h in state_histograms.items()})
    gathered.reference_name = {r.server_id: r.display_name for r in refs}
    reference_ids = sorted({r.id for r in refs})
    for window in wanted:
        if window in RUN_METRIC_WINDOWS:
            found = await _cached_metrics(
                conn, cache, window, pinned_now, params, reference_ids, project, only_followed=ids is not None
            )
            if found is None:
                gathered.pending.add(window)
            else:
                gathered.metrics[window] = found

    empty_spark: list[float | None] = [None] * len(reads.health.sparkline_buckets(sparkline or "24h", now)[0])
    return {
        s.id: gathered.assessment(s, windows, sparks.get(s.id, empty_spark) if sparkline is not None else [])
        for s in systems
    }


@dataclass(slots=True)
class _Gathered:
    """What :func:`assess` read for every system at once, from which each system's assessment is made."""

    now: datetime
    projects: dict[int, list[str]]
    numbers: dict[Window, reads.health.WindowNumbers]
    p50: dict[int, float | None]
    reference_name: dict[int, str] = field(default_factory=dict)
    metrics: dict[Window, dict[int, RunMetrics]] = field(default_factory=dict)
    pending: set[Window] = field(default_factory=set)

    def assessment(self, system: SystemRef, windows: Sequence[Window], sparkline: list[float | None]) -> Assessment:
        ci = system.id
        counts = {w: numbers[0].get(ci) for w, numbers in self.numbers.items()}
        state, reason = decide_state(
            counts=counts[STATE_WINDOW] or Counts(),
            metrics=self.metrics[STATE_WINDOW].get(ci),
            p50_s=self.p50.get(ci),
            last_seen=system.last_seen,
            now=self.now,
            is_reference=system.is_reference,
            reference_name=self.reference_name.get(system.server_id),
        )
        return Assessment(
            state=state,
            reason=reason,
            projects=self.projects.get(ci, []),
            windows={
                w: health_window(
                    w,
                    counts[w],
                    self.numbers[w][1].get(ci),
                    self.metrics[w].get(ci) if w in self.metrics else None,
                    pending=w in self.pending,
                )
                for w in windows
            },
            sparkline=sparkline,
            metrics={w: self.metrics[w][ci] for w in windows if w in self.metrics and ci in self.metrics[w]},
        )
