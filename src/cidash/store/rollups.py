"""Hourly rollups of CI runs: what every health window sums instead of scanning ``ci_runs``.

Three tables (migrations 0002 and 0003, :mod:`cidash.store.schema`):

* ``ci_rollups``: per (CI system, project, hour): runs, successes, test failures, infra errors,
  and the count and sum of the known response latencies;
* ``ci_hour_totals``: the same sums per (hour, CI system) over every project, what the health
  windows without a project filter read (a row per CI and hour instead of one per project too);
* ``ci_latency``: per (CI system, hour, latency bucket): how many runs answered with a latency in
  that bucket (bucket ``b`` holds ``[2^(b-1), 2^b)`` seconds, ``b = 0`` holds under a second, the
  last bucket also holds everything longer), so p50/p95 come without raw rows.

The writer calls :func:`apply_rollups` in the transaction that inserts the runs, so the rollups
never disagree with ``ci_runs``; :func:`rebuild_rollups` recomputes them from scratch (after a
re-parse, or to repair). Both classify a result the same way
(:func:`cidash.domain.results.result_class`), bucket a latency the same way (negative latencies,
from clock skew, count as 0 s; non-finite ones are ignored) and floor ``posted_at`` to the UTC hour.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import mysql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from cidash.domain.health import LATENCY_BUCKETS, clean_latency, latency_bucket
from cidash.domain.results import CLASS_CODES, INFRA_ERRORS, SUCCESS_RESULTS, TEST_FAILURES, ResultClass, result_class
from cidash.domain.text import clip_required
from cidash.store import schema as m
from cidash.store.inserted_run import InsertedRun
from cidash.store.schema import hour_totals_t, latency_t, rollups_t
from cidash.store.types import is_mysql

_ROLLUP_KEY = ("ci_system_id", "project", "hour")
_ROLLUP_SUMS = ("runs", "successes", "test_failures", "infra_errors", "latency_n", "latency_sum")
_LATENCY_KEY = ("ci_system_id", "hour", "bucket")
_TOTALS_KEY = ("hour", "ci_system_id")


def hour_floor(moment: datetime) -> datetime:
    """The UTC hour `moment` falls in (aware)."""
    aware = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return aware.replace(minute=0, second=0, microsecond=0)


# -- SQL expressions shared with the read side --------------------------------------------------


def class_code_sql(result: sa.ColumnElement[str]) -> sa.ColumnElement[int]:
    """SQL for :data:`CLASS_CODES` of a result column."""
    return sa.case(
        (result.in_(sorted(SUCCESS_RESULTS)), CLASS_CODES["success"]),
        (result.in_(sorted(TEST_FAILURES)), CLASS_CODES["failure"]),
        (result.in_(sorted(INFRA_ERRORS)), CLASS_CODES["infra"]),
        else_=CLASS_CODES["other"],
    )


def clean_latency_sql(latency: sa.ColumnElement[float]) -> sa.ColumnElement[float]:
    return sa.case((latency < 0, 0.0), else_=latency)


def latency_bucket_sql(latency: sa.ColumnElement[float]) -> sa.ColumnElement[int]:
    """SQL for :func:`latency_bucket` (NULL latency gives the last bucket: filter NULLs out first)."""
    whens = [(latency < float(2**bucket), bucket) for bucket in range(LATENCY_BUCKETS - 1)]
    return sa.case(*whens, else_=LATENCY_BUCKETS - 1)


def hour_floor_sql(dialect_name: str, moment: sa.ColumnElement[datetime]) -> sa.ColumnElement[Any]:
    """SQL for :func:`hour_floor` on a UTCDateTime column, in the column's own storage form."""
    if dialect_name in ("mysql", "mariadb"):
        text = sa.func.date_format(moment, sa.literal_column("'%Y-%m-%d %H:00:00'"))
        return sa.cast(text, mysql.DATETIME(fsp=6))
    # SQLAlchemy stores SQLite datetimes as "YYYY-MM-DD HH:MM:SS.ffffff"
    return sa.func.strftime(sa.literal_column("'%Y-%m-%d %H:00:00.000000'"), moment)


# -- incremental updates ------------------------------------------------------------------------


def aggregate(
    runs: Iterable[InsertedRun], sign: int = 1
) -> tuple[dict[tuple[int, str, datetime], list[float]], dict[tuple[int, datetime, int], int]]:
    """The rollup increments of some runs: per (ci, project, hour) the six sums, per (ci, hour,
    bucket) the count; `sign` -1 gives the decrements that take them out again."""
    rollups: dict[tuple[int, str, datetime], list[float]] = {}
    latency: dict[tuple[int, datetime, int], int] = {}
    for run in runs:
        hour = hour_floor(run.posted_at)
        key = (run.ci_system_id, clip_required(run.project, m.NAME_LEN), hour)
        sums = rollups.get(key)
        if sums is None:
            sums = rollups[key] = [0, 0, 0, 0, 0, 0.0]
        sums[0] += sign
        cls = result_class(run.result)
        if cls == "success":
            sums[1] += sign
        elif cls == "failure":
            sums[2] += sign
        elif cls == "infra":
            sums[3] += sign
        value = clean_latency(run.latency_s)
        if value is not None:
            sums[4] += sign
            sums[5] += sign * value
            bucket_key = (run.ci_system_id, hour, latency_bucket(value))
            latency[bucket_key] = latency.get(bucket_key, 0) + sign
    return rollups, latency


@functools.cache
def _upsert(on_mysql: bool, table: sa.Table, keys: tuple[str, ...], sums: tuple[str, ...]) -> Any:
    """An INSERT that adds to the existing row on a key conflict, for MySQL or SQLite; executed
    with a list of rows (executemany: compiled once, not once per row like `.values()`). Built
    once per table: building it again for every batch (its `excluded` columns) cost 3 % of ingest."""
    if on_mysql:
        # VALUES(col), not the `inserted` row alias: MariaDB does not know the MySQL 8 alias syntax
        return mysql.insert(table).on_duplicate_key_update(
            {name: table.c[name] + sa.literal_column(f"VALUES({name})") for name in sums}
        )
    sqlite_stmt = sqlite.insert(table)
    return sqlite_stmt.on_conflict_do_update(
        index_elements=[table.c[name] for name in keys],
        set_={name: table.c[name] + sqlite_stmt.excluded[name] for name in sums},
    )


def hour_totals(rollups: dict[tuple[int, str, datetime], list[float]]) -> dict[tuple[datetime, int], list[float]]:
    """Per-project rollup sums added up per (hour, CI system)."""
    totals: dict[tuple[datetime, int], list[float]] = {}
    for (ci, _, hour), sums in rollups.items():
        total = totals.setdefault((hour, ci), [0, 0, 0, 0, 0, 0.0])
        for index, value in enumerate(sums):
            total[index] += value
    return totals


def _sum_row(sums: Sequence[float]) -> dict[str, Any]:
    values = zip(_ROLLUP_SUMS, sums, strict=True)
    return {name: float(value) if name == "latency_sum" else int(value) for name, value in values}


async def _write(
    conn: AsyncConnection,
    rollups: dict[tuple[int, str, datetime], list[float]],
    latency: dict[tuple[int, datetime, int], int],
) -> None:
    # sorted keys: concurrent writers lock rows in the same order (no deadlock between them)
    rollup_rows = [
        {"ci_system_id": ci, "project": project, "hour": hour, **_sum_row(sums)}
        for (ci, project, hour), sums in sorted(rollups.items())
    ]
    totals = sorted(hour_totals(rollups).items())
    total_rows = [{"hour": hour, "ci_system_id": ci, **_sum_row(sums)} for (hour, ci), sums in totals]
    latency_rows = [
        {"ci_system_id": ci, "hour": hour, "bucket": bucket, "n": n}
        for (ci, hour, bucket), n in sorted(latency.items())
        if n != 0
    ]
    for table, keys, sums, rows in (
        (rollups_t, _ROLLUP_KEY, _ROLLUP_SUMS, rollup_rows),
        (hour_totals_t, _TOTALS_KEY, _ROLLUP_SUMS, total_rows),
        (latency_t, _LATENCY_KEY, ("n",), latency_rows),
    ):
        if rows:
            await conn.execute(_upsert(is_mysql(conn.dialect), table, keys, sums), rows)


async def apply_rollups(conn: AsyncConnection, runs: Sequence[InsertedRun], *, sign: int = 1) -> None:
    """Add newly inserted runs to the hourly rollups (a few statements for the whole batch).

    ``sign=-1`` takes runs out again: a writer that changes a stored run's ``posted_at``, result
    or latency calls it with the old values, then calls it again with the new ones.
    """
    if not runs:
        return
    if sign not in (1, -1):
        raise ValueError("sign must be 1 or -1")
    rollups, latency = aggregate(runs, sign)
    await _write(conn, rollups, latency)


async def retract_rollups(conn: AsyncConnection, runs: Sequence[InsertedRun]) -> None:
    """Take runs (as they were counted) out of the rollups: ``apply_rollups(conn, runs, sign=-1)``."""
    await apply_rollups(conn, runs, sign=-1)


async def rebuild_rollups(conn: AsyncConnection, *, ci_system_ids: Sequence[int] | None = None) -> None:
    """Recompute the rollups (of every CI system, or of `ci_system_ids`) from ``ci_runs``: two
    ``DELETE`` and two ``INSERT ... SELECT ... GROUP BY`` statements, all inside the database."""
    runs = m.runs_t
    dialect = conn.dialect.name
    only_rollups: list[sa.ColumnElement[bool]] = []
    only_totals: list[sa.ColumnElement[bool]] = []
    only_latency: list[sa.ColumnElement[bool]] = []
    only_runs: list[sa.ColumnElement[bool]] = []
    if ci_system_ids is not None:
        ids = sorted(set(ci_system_ids))
        if not ids:
            return
        only_rollups = [rollups_t.c.ci_system_id.in_(ids)]
        only_totals = [hour_totals_t.c.ci_system_id.in_(ids)]
        only_latency = [latency_t.c.ci_system_id.in_(ids)]
        only_runs = [runs.c.ci_system_id.in_(ids)]
    await conn.execute(sa.delete(rollups_t).where(*only_rollups))
    await conn.execute(sa.delete(hour_totals_t).where(*only_totals))
    await conn.execute(sa.delete(latency_t).where(*only_latency))

    code = class_code_sql(runs.c.result)
    latency = clean_latency_sql(runs.c.latency_s)
    inner = sa.select(
        runs.c.ci_system_id.label("ci_system_id"),
        runs.c.project.label("project"),
        hour_floor_sql(dialect, runs.c.posted_at).label("hour"),
        code.label("code"),
        latency.label("latency"),
    ).where(*only_runs)
    sub = inner.subquery("r")
    known = sub.c.latency.is_not(None)

    def count_code(name: ResultClass) -> sa.ColumnElement[Any]:
        return sa.func.sum(sa.case((sub.c.code == CLASS_CODES[name], 1), else_=0))

    per_hour = sa.select(
        sub.c.ci_system_id,
        sub.c.project,
        sub.c.hour,
        sa.func.count(),
        count_code("success"),
        count_code("failure"),
        count_code("infra"),
        sa.func.sum(sa.case((known, 1), else_=0)),
        sa.func.coalesce(sa.func.sum(sub.c.latency), 0.0),
    ).group_by(sub.c.ci_system_id, sub.c.project, sub.c.hour)
    await conn.execute(sa.insert(rollups_t).from_select([*_ROLLUP_KEY, *_ROLLUP_SUMS], per_hour))
    await conn.execute(totals_from_rollups(only_rollups))

    buckets = sa.select(
        runs.c.ci_system_id.label("ci_system_id"),
        hour_floor_sql(dialect, runs.c.posted_at).label("hour"),
        latency_bucket_sql(latency).label("bucket"),
    ).where(runs.c.latency_s.is_not(None), *only_runs)
    bsub = buckets.subquery("b")
    per_bucket = sa.select(bsub.c.ci_system_id, bsub.c.hour, bsub.c.bucket, sa.func.count()).group_by(
        bsub.c.ci_system_id, bsub.c.hour, bsub.c.bucket
    )
    await conn.execute(sa.insert(latency_t).from_select([*_LATENCY_KEY, "n"], per_bucket))


def totals_from_rollups(where: Sequence[sa.ColumnElement[bool]] = ()) -> sa.Insert:
    """``INSERT INTO ci_hour_totals SELECT ... FROM ci_rollups GROUP BY hour, ci_system_id`` (of the
    rollup rows matching `where`; the matching totals must be gone first)."""
    t = rollups_t
    per_hour = (
        sa.select(t.c.hour, t.c.ci_system_id, *(sa.func.sum(t.c[name]) for name in _ROLLUP_SUMS))
        .where(*where)
        .group_by(t.c.hour, t.c.ci_system_id)
    )
    return sa.insert(hour_totals_t).from_select([*_TOTALS_KEY, *_ROLLUP_SUMS], per_hour)
