"""Per CI system over time: :func:`series`, one point per hour or day (every bucket, empty ones
with 0 runs) of counts and latency percentiles, from the rollups (``ci_rollups`` and the latency
histograms), one statement each whatever the span."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Literal

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from cidash.domain import health
from cidash.domain.health import LATENCY_BUCKETS
from cidash.domain.views import SeriesPoint
from cidash.store.reads.params import QueryError
from cidash.store.reads.systems import SystemRow
from cidash.store.rollups import hour_floor
from cidash.store.schema import latency_t, rollups_t
from cidash.store.types import utc_param

MAX_SERIES_POINTS = 24 * 92  # a quarter of hourly points
Bucket = Literal["hour", "day"]
_STEP = {"hour": timedelta(hours=1), "day": timedelta(days=1)}
_DEFAULT_SPAN = {"hour": timedelta(hours=24), "day": timedelta(days=30)}


class _Buckets:
    """The buckets of [since, until): `starts[i]` begins point i (the first at `first`, `since`'s
    hour or day); `position` maps a rollup hour to its point."""

    def __init__(self, bucket: Bucket, since: datetime, until: datetime) -> None:
        self.bucket = bucket
        self.until = until
        self.first = self.floor(since)
        self.starts: list[datetime] = []
        current = self.first
        while current < until:
            self.starts.append(current)
            if len(self.starts) > MAX_SERIES_POINTS:
                raise QueryError(f"from..to spans more than {MAX_SERIES_POINTS} {bucket}s; use a larger bucket")
            current += _STEP[bucket]
        self._index = {start: i for i, start in enumerate(self.starts)}

    def floor(self, moment: datetime) -> datetime:
        hour = hour_floor(moment)
        return hour if self.bucket == "hour" else hour.replace(hour=0)

    def position(self, hour: datetime) -> int | None:
        return self._index.get(self.floor(hour))


async def _counts(
    conn: AsyncConnection, system: SystemRow, buckets: _Buckets, project: str | None
) -> list[health.Counts]:
    """Runs by result class in each bucket."""
    counts = [health.Counts() for _ in buckets.starts]
    t = rollups_t
    query = sa.select(
        t.c.hour,
        sa.func.sum(t.c.runs),
        sa.func.sum(t.c.successes),
        sa.func.sum(t.c.test_failures),
        sa.func.sum(t.c.infra_errors),
    ).where(t.c.ci_system_id == system.id, t.c.hour >= utc_param(buckets.first), t.c.hour < utc_param(buckets.until))
    if project is not None:
        query = query.where(t.c.project == project)
    for hour, runs, successes, failures, infra in await conn.execute(query.group_by(t.c.hour)):
        position = buckets.position(hour)
        if position is not None:
            counts[position].add(health.Counts(int(runs), int(successes), int(failures), int(infra)))
    return counts


async def _latency_histograms(conn: AsyncConnection, system: SystemRow, buckets: _Buckets) -> list[list[int]]:
    """The latency histogram of each bucket."""
    hists = [[0] * LATENCY_BUCKETS for _ in buckets.starts]
    lat = latency_t
    query = (
        sa.select(lat.c.hour, lat.c.bucket, lat.c.n)
        .where(
            lat.c.ci_system_id == system.id,
            lat.c.hour >= utc_param(buckets.first),
            lat.c.hour < utc_param(buckets.until),
        )
        .order_by(lat.c.hour)
    )
    for hour, bucket_no, n in await conn.execute(query):
        position = buckets.position(hour)
        if position is not None and 0 <= bucket_no < LATENCY_BUCKETS:
            hists[position][bucket_no] += int(n)
    return hists


def _points(
    starts: Sequence[datetime], counts: Sequence[health.Counts], hists: Sequence[list[int]]
) -> list[SeriesPoint]:
    return [
        SeriesPoint(
            t=start,
            runs=c.runs,
            successes=c.successes,
            failures=c.test_failures,
            infra_errors=c.infra_errors,
            success_rate=c.success_rate,
            latency_p50_s=health.percentile(hist, 0.5),
            latency_p95_s=health.percentile(hist, 0.95),
        )
        for start, c, hist in zip(starts, counts, hists, strict=True)
    ]


async def series(
    conn: AsyncConnection,
    system: SystemRow,
    *,
    bucket: Bucket = "hour",
    since: datetime | None = None,
    until: datetime | None = None,
    project: str | None = None,
    now: datetime | None = None,
) -> list[SeriesPoint]:
    """One point per hour or day in [since, until) (every bucket, empty ones with 0 runs), from
    the rollups. Defaults: until now, since 24 h (hour) or 30 d (day) before."""
    until = until or now or datetime.now(UTC)
    since = since or until - _DEFAULT_SPAN[bucket]
    if since >= until:
        raise QueryError("from must be before to")
    buckets = _Buckets(bucket, since, until)
    counts = await _counts(conn, system, buckets, project)
    hists = await _latency_histograms(conn, system, buckets)
    return _points(buckets.starts, counts, hists)
