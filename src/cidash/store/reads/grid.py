"""Patch sets x CI systems: :func:`grid` (the recent patch sets of a project, or of every project),
:func:`patchsets_grid` (given patch sets) and :func:`change_view` (every patch set of a change), each
cell the newest result of a CI on the patch set. The cells of a patch set come packed into one row
(:func:`_newest_cells_query`), which is most of a grid's decoding cost saved."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from cidash.domain.results import result_class
from cidash.domain.urls import log_url as log_url_of
from cidash.domain.views import ChangeView, Grid, GridCell, GridRow
from cidash.store import schema as m
from cidash.store.natural_keys import IN_CHUNK, chunks
from cidash.store.reads.systems import Names
from cidash.store.types import allow_long_group_concat, group_concat_text, to_aware_utc, utc_param

GRID_SCAN_PER_ROW = 40  # runs read per wanted grid row when looking for the most recent patch sets


def _log_url_sql(run_id: sa.ColumnElement[int]) -> sa.ColumnElement[str | None]:
    """The first job URL of a run that :func:`~cidash.domain.urls.looks_http`, as a correlated subquery walking
    its (run_id, position) key; :func:`~cidash.domain.urls.log_url` then decides whether it is a link."""
    j = m.jobs_t
    return (
        sa.select(j.c.url)
        .where(j.c.run_id == run_id, sa.or_(j.c.url.like("http://%"), j.c.url.like("https://%")))
        .order_by(j.c.position)
        .limit(1)
        .scalar_subquery()
        .label("log_url")
    )


async def _server_names(conn: AsyncConnection) -> dict[int, str]:
    table = m.servers_t
    return {row[0]: row[1] for row in await conn.execute(sa.select(table.c.id, table.c.name))}


async def _patchset_rows(conn: AsyncConnection, ids: Sequence[int]) -> dict[int, GridRow]:
    """Patch sets by id with their change, as grid rows without cells yet (servers are mapped in
    Python: joining the one-row servers table makes MariaDB start from it and walk every change)."""
    p, c = m.patchsets_t, m.changes_t
    servers = await _server_names(conn)
    found: dict[int, GridRow] = {}
    for part in chunks(sorted(set(ids)), IN_CHUNK):
        query = (
            sa.select(
                p.c.id,
                c.c.server_id,
                c.c.number,
                p.c.number,
                c.c.project,
                c.c.branch,
                c.c.subject,
                c.c.url,
                p.c.created_at,
            )
            .select_from(p)
            .join(c, c.c.id == p.c.change_db_id)
            .where(p.c.id.in_(part))
        )
        for ps_id, server_id, change, patchset, project, branch, subject, url, created_at in await conn.execute(query):
            found[ps_id] = GridRow(
                server=servers.get(server_id, ""),
                change=change,
                patchset=patchset,
                project=project,
                branch=branch,
                subject=subject,
                url=url,
                created_at=created_at,
                cells={},
            )
    return found


_FIELD_SEP = "\x1f"  # between the fields of a packed grid cell (cannot occur in them)
_CELL_SEP = "\x1e"  # between the cells of a patch set


def _newest_cells_query(part: Sequence[int], project: str | None, bound: datetime | None) -> sa.Select[Any]:
    """Per patch set, the newest run of each CI on it packed as text (see :func:`_unpack_cells`):
    one row per patch set instead of one per cell, which is most of a grid's decoding cost."""
    r = m.runs_t
    per_pair = (r.c.patchset_id, r.c.ci_system_id)
    inner = sa.select(
        r.c.id,
        r.c.ci_system_id,
        r.c.patchset_id,
        r.c.result,
        r.c.vote,
        r.c.posted_at,
        sa.func.row_number().over(partition_by=per_pair, order_by=(r.c.posted_at.desc(), r.c.id.desc())).label("rn"),
        sa.func.count().over(partition_by=per_pair).label("n"),
    ).where(r.c.patchset_id.in_(part))
    if project is not None:
        inner = inner.where(r.c.project == project)
    if bound is not None:
        inner = inner.where(r.c.posted_at >= utc_param(bound))
    x = inner.subquery("x")
    y = sa.select(x, _log_url_sql(x.c.id)).where(x.c.rn == 1).subquery("y")
    fields: list[sa.ColumnElement[Any]] = [
        sa.cast(y.c.ci_system_id, sa.String),
        sa.cast(y.c.id, sa.String),
        sa.cast(y.c.n, sa.String),
        sa.func.coalesce(sa.cast(y.c.vote, sa.String), ""),
        y.c.result,
        sa.cast(y.c.posted_at, sa.String),  # "YYYY-MM-DD HH:MM:SS.ffffff" on both engines
        _packable(y.c.log_url),
    ]
    packed = fields[0]
    for part_sql in fields[1:]:
        packed = packed + _FIELD_SEP + part_sql
    return sa.select(y.c.patchset_id, sa.func.aggregate_strings(packed, _CELL_SEP)).group_by(y.c.patchset_id)


def _packable(url: sa.ColumnElement[str | None]) -> sa.ColumnElement[str]:
    """A job URL as a packed field: empty when it holds a separator (it is no link then anyway:
    control characters are never safe), so that a comment cannot break its grid apart."""
    holds_separator = sa.or_(sa.func.instr(url, _CELL_SEP) > 0, sa.func.instr(url, _FIELD_SEP) > 0)
    return sa.case((url.is_(None), ""), (holds_separator, ""), else_=url)


def _unpack_cells(packed: str) -> Iterator[tuple[int, GridCell]]:
    """(CI system id, cell) of each cell :func:`_newest_cells_query` packed."""
    for text in packed.split(_CELL_SEP):
        ci_id, run_id, runs, vote, result, posted_at, log_url = text.split(_FIELD_SEP, 6)
        yield (
            int(ci_id),
            GridCell(
                run_id=int(run_id),
                result=result,
                result_class=result_class(result),
                vote=int(vote) if vote else None,
                posted_at=to_aware_utc(datetime.fromisoformat(posted_at)),
                log_url=log_url_of([log_url]),
                runs=int(runs),
            ),
        )


async def _fill_cells(
    conn: AsyncConnection, rows: dict[int, GridRow], project: str | None
) -> tuple[list[str], set[str]]:
    """Newest result of each CI on each patch set, with how many it posted there; returns the CI
    names in column order (reference first, then by name)."""
    if not rows:
        return [], set()
    created = [row.created_at for row in rows.values() if row.created_at is not None]
    bound = min(created) - timedelta(hours=1) if len(created) == len(rows) else None
    await allow_long_group_concat(conn)
    known = await Names.load(conn)
    references: set[str] = set()
    names: set[str] = set()
    for part in chunks(sorted(rows), IN_CHUNK):
        for patchset_id, packed in await conn.execute(_newest_cells_query(part, project, bound)):
            row = rows.get(patchset_id)
            if row is None or not packed:
                continue
            for ci_id, cell in _unpack_cells(group_concat_text(packed)):
                ci = known.ci(ci_id)
                names.add(ci)
                if known.is_reference(ci_id):
                    references.add(ci)
                row.cells[ci] = cell
    order = sorted(names, key=lambda name: (name not in references, name))
    return order, references


def _newest_first(row: GridRow) -> tuple[float, int, int]:
    created = row.created_at.timestamp() if row.created_at is not None else float("-inf")
    return (-created, -row.change, -row.patchset)


async def grid(
    conn: AsyncConnection, *, project: str | None = None, limit: int = 30, server: str | None = None
) -> Grid:
    """The `limit` patch sets of `project` (or of every project) with the most recent CI activity,
    newest first, with each CI's newest result on them."""
    r = m.runs_t
    recent = sa.select(r.c.patchset_id, r.c.posted_at).order_by(r.c.posted_at.desc()).limit(limit * GRID_SCAN_PER_ROW)
    if project is not None:
        recent = recent.where(r.c.project == project)
    if server is not None:
        recent = recent.where(r.c.server_id.in_(sa.select(m.servers_t.c.id).where(m.servers_t.c.name == server)))
    sub = recent.subquery("recent")
    query = (
        sa.select(sub.c.patchset_id, sa.func.max(sub.c.posted_at).label("last"))
        .group_by(sub.c.patchset_id)
        .order_by(sa.desc("last"), sub.c.patchset_id.desc())
        .limit(limit)
    )
    return await patchsets_grid(conn, [row[0] for row in await conn.execute(query)], project)


async def patchsets_grid(conn: AsyncConnection, ids: Sequence[int], project: str | None = None) -> Grid:
    """The patch sets `ids`, newest first, with each CI's newest result on them (of `project`'s CIs)."""
    rows = await _patchset_rows(conn, ids)
    systems, _ = await _fill_cells(conn, rows, project)
    return Grid(project=project, systems=systems, rows=sorted(rows.values(), key=_newest_first))


async def change_view(conn: AsyncConnection, number: int, *, server: str | None = None) -> ChangeView | None:
    """A change with every patch set and each CI's newest result on it (first server by name when
    the number exists on several and no `server` is given)."""
    c, s, p = m.changes_t, m.servers_t, m.patchsets_t
    query = (
        sa.select(c.c.id, s.c.name, c.c.project, c.c.branch, c.c.subject, c.c.url, c.c.status)
        .join(s, s.c.id == c.c.server_id)
        .where(c.c.number == number)
        .order_by(s.c.name)
        .limit(1)
    )
    if server is not None:
        query = query.where(s.c.name == server)
    change = (await conn.execute(query)).first()
    if change is None:
        return None
    ids = [row[0] for row in await conn.execute(sa.select(p.c.id).where(p.c.change_db_id == change.id))]
    rows = await _patchset_rows(conn, ids)
    systems, _ = await _fill_cells(conn, rows, change.project)
    return ChangeView(
        server=change.name,
        change=number,
        project=change.project,
        branch=change.branch,
        subject=change.subject,
        url=change.url,
        status=change.status,
        systems=systems,
        patchsets=sorted(rows.values(), key=lambda row: -row.patchset),
    )
