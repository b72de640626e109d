"""The statements behind the health model (:mod:`cidash.domain.health`): counts, latency
histograms and sparklines from the rollups, the followed projects, and the per-patch-set digests
and queue waits the run-level metrics are computed from. Each runs a bounded number of statements
whatever the number of CI systems; :mod:`cidash.health` calls them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from cidash.domain.health import FOLLOW_SPAN, LATENCY_BUCKETS, WINDOW_SPANS, Counts, PatchSetDigest
from cidash.domain.results import CLASS_CODES
from cidash.domain.views import Window
from cidash.store import schema as m
from cidash.store.rollups import class_code_sql, clean_latency_sql, hour_floor, latency_bucket_sql
from cidash.store.schema import hour_totals_t, latency_t, rollups_t
from cidash.store.types import UTCDateTime, allow_long_group_concat, group_concat_text
from cidash.store.types import utc_param as _at

WindowNumbers = tuple[dict[int, Counts], dict[int, list[int]], dict[int, list[float | None]]]
"""A window's counts, latency histograms and sparklines, by CI system id."""


def posted_in(
    table: sa.Table,
    start: datetime,
    end: datetime,
    project: str | None = None,
    projects: Sequence[str] | None = None,
) -> list[sa.ColumnElement[bool]]:
    """Rows of `table` posted in [start, end], of `project` (or of any of `projects`) when given."""
    where = [table.c.posted_at >= _at(start), table.c.posted_at <= _at(end)]
    if project is not None:
        where.append(table.c.project == project)
    elif projects is not None:
        where.append(table.c.project.in_(sorted(set(projects))))
    return where


def _ids_filter(column: sa.ColumnElement[int], ids: Iterable[int] | None) -> list[sa.ColumnElement[bool]]:
    if ids is None:
        return []
    return [column.in_(sorted(set(ids)))]


# -- counts, latency, sparklines ----------------------------------------------------------


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
        for item in group_concat_text(packed).split(",") if packed else ():
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
) -> WindowNumbers:
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
    starts, step = sparkline_buckets(sparkline or "24h", now)
    hourly = step == timedelta(hours=1)
    window_start = hour_floor(since) if since is not None else None
    spark_start = starts[0] if sparkline is not None else None
    if window_start is None and spark_start is None:
        return {}, {}
    query = _rollup_query(window_start, spark_start, hourly, now, project, ci_ids)
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
        if sparkline is not None and packed is not None:
            sparks[ci] = _spark_values(group_concat_text(packed), index, width)
    return counts, sparks


def _rollup_query(
    window_start: datetime | None,
    spark_start: datetime | None,
    hourly: bool,
    now: datetime,
    project: str | None,
    ci_ids: Iterable[int] | None,
) -> sa.Select[Any]:
    """The statement of :func:`rollup_window`: per CI, the sums of the hours from `window_start`
    and the packed ``slot|runs|successes`` of each sparkline slot from `spark_start`."""
    t = rollups_t if project is not None else hour_totals_t
    slot: sa.ColumnElement[Any] = t.c.hour if hourly else sa.func.date(t.c.hour)
    in_window: sa.ColumnElement[bool] = t.c.hour >= _at(window_start) if window_start is not None else sa.false()
    in_spark: sa.ColumnElement[bool] = t.c.hour >= _at(spark_start) if spark_start is not None else sa.false()

    def windowed(column: sa.ColumnElement[Any]) -> sa.ColumnElement[Any]:
        return sa.func.sum(sa.case((in_window, column), else_=0))

    first = min(moment for moment in (window_start, spark_start) if moment is not None)
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
        .where(t.c.hour >= _at(first), t.c.hour < _at(now), *_ids_filter(t.c.ci_system_id, ci_ids))
        .group_by(slot, t.c.ci_system_id)
    )
    if project is not None:
        inner = inner.where(t.c.project == project)
    sub = inner.subquery("h")
    entry = sa.cast(sub.c.slot, sa.String) + "|" + sa.cast(sub.c.r, sa.String) + "|" + sa.cast(sub.c.s, sa.String)
    return sa.select(
        sub.c.ci,
        sa.func.sum(sub.c.wr),
        sa.func.sum(sub.c.ws),
        sa.func.sum(sub.c.wf),
        sa.func.sum(sub.c.wi),
        sa.func.sum(sub.c.wn),
        sa.func.sum(sub.c.wl),
        sa.func.group_concat(sa.case((sub.c.sp == 1, entry))),
    ).group_by(sub.c.ci)


def _spark_values(packed: str, index: dict[str, int], width: int) -> list[float | None]:
    """The success rate of each sparkline slot from the packed ``slot|runs|successes`` entries
    (None where the slot had no runs); `index` maps a slot's text prefix of `width` to its position."""
    values: list[float | None] = [None] * len(index)
    for item in packed.split(","):
        key, bucket_runs, bucket_successes = item.rsplit("|", 2)
        position = index.get(key[:width])
        total = int(float(bucket_runs))
        if position is not None and total > 0:
            values[position] = int(float(bucket_successes)) / total
    return values


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


# -- run-level digests ----------------------------------------------------------------------------


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
    ).where(*posted_in(r, start, end, project, projects))
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
    for item in group_concat_text(text).split(","):
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
        return sa.select(table.c.ci_system_id, table.c.patchset_id, table.c.posted_at).where(
            *posted_in(table, start, end, project, projects), table.c.ci_system_id.in_(ci_ids), *where
        )

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
