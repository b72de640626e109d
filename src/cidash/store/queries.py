"""Read queries behind ``/api/v1``: rows in, :mod:`cidash.domain.views` models out.

Every function takes an open :class:`AsyncConnection` (the API opens one per request) and runs a
bounded number of statements whatever the size of the history:

* CI systems: :func:`system_rows`, :func:`find_system` (their health is :mod:`cidash.health`'s);
* runs: :func:`runs_page` (keyset pagination on ``(posted_at, id)`` descending, served by the
  ``(ci_system_id, posted_at)``, ``(project, posted_at, id, ...)`` or ``(posted_at, id, ...)``
  index), :func:`run_by_id`;
* per system: :func:`series` (rollups), :func:`job_breakdown`;
* patch sets: :func:`grid` (recent patch sets of a project x CI systems, the cells of a patch set
  packed into one row), :func:`change_view`;
* :func:`project_names`, and the two writes the API offers: :func:`patch_system`, :func:`reparse`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from cidash.config import CISystemConfig
from cidash.domain.comments import AccountRef, ObservedComment, ObservedPatchSet, Source
from cidash.domain.results import result_class
from cidash.domain.urls import log_url as log_url_of
from cidash.domain.views import (
    ChangeView,
    Grid,
    GridCell,
    GridRow,
)
from cidash.parsing import CommentParser
from cidash.store import schema as m
from cidash.store.natural_keys import IN_CHUNK, chunks
from cidash.store.reads.systems import Names, SystemRow
from cidash.store.types import (
    allow_long_group_concat,
    group_concat_text,
    to_aware_utc,
    utc_param,
)

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


# -- patch sets: grid and change view -------------------------------------------------------------


@dataclass(slots=True)
class _PatchSetInfo:
    id: int
    server: str
    change: int
    patchset: int
    project: str
    branch: str
    subject: str | None
    url: str | None
    status: str | None
    created_at: datetime | None
    cells: dict[str, GridCell] = field(default_factory=dict)

    def row(self) -> GridRow:
        return GridRow(
            server=self.server,
            change=self.change,
            patchset=self.patchset,
            project=self.project,
            branch=self.branch,
            subject=self.subject,
            url=self.url,
            created_at=self.created_at,
            cells=self.cells,
        )


async def _server_names(conn: AsyncConnection) -> dict[int, str]:
    table = m.servers_t
    return {row[0]: row[1] for row in await conn.execute(sa.select(table.c.id, table.c.name))}


async def _patchset_infos(conn: AsyncConnection, ids: Sequence[int]) -> dict[int, _PatchSetInfo]:
    """Patch sets by id with their change (servers are mapped in Python: joining the one-row
    servers table makes MariaDB start from it and walk every change)."""
    p, c = m.patchsets_t, m.changes_t
    servers = await _server_names(conn)
    found: dict[int, _PatchSetInfo] = {}
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
                c.c.status,
                p.c.created_at,
            )
            .select_from(p)
            .join(c, c.c.id == p.c.change_db_id)
            .where(p.c.id.in_(part))
        )
        for row in await conn.execute(query):
            found[row[0]] = _PatchSetInfo(row[0], servers.get(row[1], ""), *row[2:])
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
    conn: AsyncConnection, infos: dict[int, _PatchSetInfo], project: str | None
) -> tuple[list[str], set[str]]:
    """Newest result of each CI on each patch set, with how many it posted there; returns the CI
    names in column order (reference first, then by name)."""
    if not infos:
        return [], set()
    created = [info.created_at for info in infos.values() if info.created_at is not None]
    bound = min(created) - timedelta(hours=1) if len(created) == len(infos) else None
    await allow_long_group_concat(conn)
    known = await Names.load(conn)
    references: set[str] = set()
    names: set[str] = set()
    for part in chunks(sorted(infos), IN_CHUNK):
        for patchset_id, packed in await conn.execute(_newest_cells_query(part, project, bound)):
            info = infos.get(patchset_id)
            if info is None or not packed:
                continue
            for ci_id, cell in _unpack_cells(group_concat_text(packed)):
                ci = known.ci(ci_id)
                names.add(ci)
                if known.is_reference(ci_id):
                    references.add(ci)
                info.cells[ci] = cell
    order = sorted(names, key=lambda name: (name not in references, name))
    return order, references


def _newest_first(info: _PatchSetInfo) -> tuple[float, int, int]:
    created = info.created_at.timestamp() if info.created_at is not None else float("-inf")
    return (-created, -info.change, -info.patchset)


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
    infos = await _patchset_infos(conn, ids)
    systems, _ = await _fill_cells(conn, infos, project)
    rows = sorted(infos.values(), key=_newest_first)
    return Grid(project=project, systems=systems, rows=[info.row() for info in rows])


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
    infos = await _patchset_infos(conn, ids)
    systems, _ = await _fill_cells(conn, infos, change.project)
    rows = sorted(infos.values(), key=lambda info: -info.patchset)
    return ChangeView(
        server=change.name,
        change=number,
        project=change.project,
        branch=change.branch,
        subject=change.subject,
        url=change.url,
        status=change.status,
        systems=systems,
        patchsets=[info.row() for info in rows],
    )


# -- stored comments as the parser reads them ------------------------------------------------


def stored_observed(system: SystemRow, row: Any) -> ObservedComment:
    """A stored comment (a ``ci_runs`` or ``ci_comments`` row) as the parser sees one: the CI's
    account, the stored text, and the stored Verified vote as the stream's approval (a stream
    copy's text may lack the ``Patch Set N: Verified+1`` header that carries it)."""
    if system.username or system.email or system.account_name:
        author = AccountRef(username=system.username, name=system.account_name, email=system.email)
    else:
        author = AccountRef(username=system.name)
    vote = row.vote
    return ObservedComment(
        server=system.server,
        project=row.project,
        branch=row.branch,
        change_number=row.change_number,
        change_id=None,
        patchset=ObservedPatchSet(number=row.patchset_number),
        author=author,
        posted_at=row.posted_at,
        message=row.raw_comment,
        source=Source(row.source),
        message_id=getattr(row, "message_id", None),
        approvals={"Verified": vote} if vote is not None else {},
        changed_labels=frozenset({"Verified"}) if vote is not None else frozenset(),
    )


def stored_parser(configs: Sequence[CISystemConfig], systems: Sequence[SystemRow]) -> CommentParser:
    """The parser for stored comments: every stored CI system counts as a CI (as if it were in
    its server's CI group), so only the text (and the stored vote) decides."""
    parser = CommentParser(configs, auto_detect=True)
    by_server: dict[str, list[str]] = {}
    for system in systems:
        by_server.setdefault(system.server, []).append(system.name)
    for server, names in by_server.items():
        parser.set_group_members(server, names)
    return parser
