"""Runs, newest first: :func:`runs_page` (keyset pagination on ``(posted_at, id)`` descending, served by
the ``(ci_system_id, posted_at)``, ``(project, posted_at, id, ...)`` or ``(posted_at, id, ...)`` index, the
cursor of :mod:`cidash.store.reads.cursor`), :func:`iter_runs` (every matching run in keyset chunks:
the CSV export), :func:`run_by_id`, filtered by :class:`RunFilters`; and :func:`project_names`.
Each runs a bounded number of statements whatever the size of the history.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from cidash.domain.results import INFRA_ERRORS, RESULT_CLASSES, SUCCESS_RESULTS, TEST_FAILURES
from cidash.domain.views import RunOut, RunPage
from cidash.parsing import JobResult
from cidash.store import schema as m
from cidash.store.reads.cursor import decode_cursor, encode_cursor
from cidash.store.reads.params import QueryError
from cidash.store.reads.run_rows import job_results, run_out
from cidash.store.reads.systems import Names, system_rows
from cidash.store.types import utc_param

RESULT_WORD_RE = re.compile(r"^[A-Za-z][A-Za-z_ ]{0,63}$")
CSV_CHUNK = 1000  # runs per statement of iter_runs


@dataclass(frozen=True, slots=True)
class RunFilters:
    ci: str | None = None
    server: str | None = None
    project: str | None = None
    branch: str | None = None
    result: str | None = None  # a result class or a raw result word
    since: datetime | None = None  # posted_at >= since
    until: datetime | None = None  # posted_at < until


def check_result_filter(value: str | None) -> str | None:
    """A result class (success|failure|infra|other) as is, a result word upper-cased; else an error."""
    if value is None or value == "":
        return None
    if value.lower() in RESULT_CLASSES:
        return value.lower()
    if not RESULT_WORD_RE.fullmatch(value):
        raise QueryError(
            f"result: {value[:64]!r} is neither a result class (success, failure, infra, other) nor a result word"
        )
    return value.upper().replace(" ", "_")


def _result_condition(result: str) -> sa.ColumnElement[bool]:
    column = m.runs_t.c.result
    known = sorted(SUCCESS_RESULTS | TEST_FAILURES | INFRA_ERRORS)
    if result == "success":
        return column.in_(sorted(SUCCESS_RESULTS))
    if result == "failure":
        return column.in_(sorted(TEST_FAILURES))
    if result == "infra":
        return column.in_(sorted(INFRA_ERRORS))
    if result == "other":
        return column.not_in(known)
    return column == result


def _run_columns() -> list[sa.ColumnElement[Any]]:
    r = m.runs_t
    return [
        r.c.id,
        r.c.server_id,
        r.c.ci_system_id,
        r.c.patchset_id,
        r.c.project,
        r.c.branch,
        r.c.change_number,
        r.c.patchset_number,
        r.c.result,
        r.c.vote,
        r.c.pipeline,
        r.c.posted_at,
        r.c.latency_s,
        r.c.message_id,
        r.c.source,
    ]


def _run_select(*extra: sa.ColumnElement[Any]) -> sa.Select[Any]:
    """Runs alone, never joined: the planner then always walks one ``ci_runs`` index in order
    (names come from :class:`Names`, a map of the few CI systems)."""
    return sa.select(*_run_columns(), *extra).select_from(m.runs_t)


def _run_view(row: Any, names: Names, jobs: dict[int, list[JobResult]], comment: str | None = None) -> RunOut:
    return run_out(
        row,
        server=names.server(row.ci_system_id),
        ci=names.ci(row.ci_system_id),
        jobs=jobs.get(row.id, ()),
        comment=comment,
    )


async def _ci_ids(conn: AsyncConnection, name: str, server: str | None) -> list[int]:
    return [s.id for s in await system_rows(conn, name=name, server=server)]


@dataclass(frozen=True, slots=True)
class _RunQuery:
    """Filtered runs, newest first. With several CI systems (one name on several servers) each
    one's runs are read from its own ``(ci_system_id, posted_at)`` index range and merged."""

    base: sa.Select[Any]
    ci_ids: tuple[int, ...] = ()

    def page(self, cursor: tuple[datetime, int] | None, limit: int) -> sa.Select[Any]:
        r = m.runs_t
        order = (r.c.posted_at.desc(), r.c.id.desc())
        if len(self.ci_ids) <= 1:
            query = self.base.where(r.c.ci_system_id == self.ci_ids[0]) if self.ci_ids else self.base
            return _after(query, cursor).order_by(*order).limit(limit)
        parts = [
            sa.select(_after(self.base.where(r.c.ci_system_id == ci), cursor).order_by(*order).limit(limit).subquery())
            for ci in self.ci_ids
        ]
        merged = sa.union_all(*parts).subquery("merged")
        return sa.select(merged).order_by(merged.c.posted_at.desc(), merged.c.id.desc()).limit(limit)


async def _filtered(conn: AsyncConnection, filters: RunFilters) -> _RunQuery | None:
    """The filtered run query, or None when the filters match nothing for sure."""
    r = m.runs_t
    query = _run_select()
    ids: tuple[int, ...] = ()
    if filters.ci is not None:
        ids = tuple(await _ci_ids(conn, filters.ci, filters.server))
        if not ids:
            return None
    elif filters.server is not None:
        query = query.where(r.c.server_id.in_(sa.select(m.servers_t.c.id).where(m.servers_t.c.name == filters.server)))
    if filters.project is not None:
        query = query.where(r.c.project == filters.project)
    if filters.branch is not None:
        query = query.where(r.c.branch == filters.branch)
    if filters.result is not None:
        query = query.where(_result_condition(filters.result))
    if filters.since is not None:
        query = query.where(r.c.posted_at >= utc_param(filters.since))
    if filters.until is not None:
        query = query.where(r.c.posted_at < utc_param(filters.until))
    return _RunQuery(query, ids)


def _after(query: sa.Select[Any], cursor: tuple[datetime, int] | None) -> sa.Select[Any]:
    if cursor is None:
        return query
    r = m.runs_t
    moment, run_id = cursor
    at = utc_param(moment)
    # (posted_at, id) < (t, id), written so that the posted_at part is an index range
    return query.where(r.c.posted_at <= at, sa.or_(r.c.posted_at < at, r.c.id < run_id))


async def runs_page(
    conn: AsyncConnection, filters: RunFilters, *, limit: int = 50, cursor: str | None = None
) -> RunPage:
    """A page of runs, newest first; `next_cursor` resumes after its last run. Keyset pagination:
    runs inserted between pages never shift a page (each run is seen at most once)."""
    position = decode_cursor(cursor) if cursor else None
    query = await _filtered(conn, filters)
    if query is None:
        return RunPage(items=[], next_cursor=None)
    rows = (await conn.execute(query.page(position, limit + 1))).all()
    more = len(rows) > limit
    rows = rows[:limit]
    jobs = await job_results(conn, [row.id for row in rows])
    names = await Names.load(conn)
    items = [_run_view(row, names, jobs) for row in rows]
    last = rows[-1] if rows else None
    next_cursor = encode_cursor(last.posted_at, last.id) if more and last is not None else None
    return RunPage(items=items, next_cursor=next_cursor)


async def iter_runs(
    conn: AsyncConnection, filters: RunFilters, *, limit: int | None = None, cursor: str | None = None
) -> AsyncIterator[RunOut]:
    """Runs newest first (all of them without `limit`), fetched in keyset chunks (CSV export)."""
    position = decode_cursor(cursor) if cursor else None
    query = await _filtered(conn, filters)
    if query is None:
        return
    names = await Names.load(conn)
    left = limit
    while left is None or left > 0:
        size = CSV_CHUNK if left is None else min(CSV_CHUNK, left)
        rows = (await conn.execute(query.page(position, size))).all()
        if not rows:
            return
        jobs = await job_results(conn, [row.id for row in rows])
        for row in rows:
            yield _run_view(row, names, jobs)
        position = (rows[-1].posted_at, rows[-1].id)
        if left is not None:
            left -= len(rows)
        if len(rows) < size:
            return


async def run_by_id(conn: AsyncConnection, run_id: int) -> RunOut | None:
    """One run with its raw comment."""
    query = _run_select(m.runs_t.c.raw_comment).where(m.runs_t.c.id == run_id)
    row = (await conn.execute(query)).first()
    if row is None:
        return None
    jobs = await job_results(conn, [run_id])
    return _run_view(row, await Names.load(conn), jobs, comment=row.raw_comment)


async def project_names(conn: AsyncConnection) -> list[str]:
    """Every project with CI runs (a loose index scan of ``(project, posted_at, id, ...)`` on MariaDB)."""
    r = m.runs_t
    rows = await conn.execute(sa.select(r.c.project).group_by(r.c.project).order_by(r.c.project))
    return [row[0] for row in rows]
