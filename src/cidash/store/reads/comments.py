"""A CI's stored comments and how they were read: per CI and window, how many became results
(``ci_runs``), starts or nothing ("unread", both in ``ci_comments``), the latest unread ones, the
latest of every kind and their marks on a timeline; and a stored comment as the parser reads it
again (:func:`stored_observed`, :func:`stored_parser`: re-parsing and the rule tester).

:func:`comment_counts` is the read the ``unreadable`` alert rule and ``/api/v1/systems/{name}``
share; both count from the ``(ci_system_id, posted_at ...)`` indexes, one grouped statement per
table whatever the number of CIs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from cidash.config import CISystemConfig
from cidash.domain.comments import AccountRef, ObservedComment, ObservedPatchSet, Source
from cidash.parsing import CommentParser
from cidash.store import schema as m
from cidash.store.reads.systems import SystemRow
from cidash.store.types import to_aware_utc


@dataclass(frozen=True, slots=True)
class CommentCounts:
    """A CI's comments in one window by what they became."""

    results: int = 0
    starts: int = 0
    unread: int = 0

    @property
    def total(self) -> int:
        return self.results + self.starts + self.unread

    @property
    def unread_share(self) -> float | None:
        """Unread comments among all of them; None without any comment."""
        return self.unread / self.total if self.total else None


@dataclass(frozen=True, slots=True)
class UnreadComment:
    id: int
    ci_system_id: int
    project: str
    change_number: int
    patchset_number: int
    posted_at: datetime
    vote: int | None
    text: str
    why: str
    parsed_with: str


def _window(column: sa.Column[datetime], since: datetime, until: datetime | None) -> list[sa.ColumnElement[bool]]:
    where = [column >= to_aware_utc(since)]
    if until is not None:
        where.append(column < to_aware_utc(until))
    return where


async def comment_counts(
    conn: AsyncConnection,
    *,
    since: datetime,
    until: datetime | None = None,
    ci_system_ids: Sequence[int] | None = None,
) -> dict[int, CommentCounts]:
    """Per CI system id: its comments posted in ``[since, until)`` (``until`` None: up to now) that
    became results, starts, or nothing. CIs without any comment in the window are absent;
    ``ci_system_ids`` None means every CI."""
    runs, noted = m.runs_t, m.ci_comments_t
    found: dict[int, list[int]] = {}
    run_query = sa.select(runs.c.ci_system_id, sa.func.count()).where(*_window(runs.c.posted_at, since, until))
    noted_query = sa.select(noted.c.ci_system_id, noted.c.kind, sa.func.count()).where(
        *_window(noted.c.posted_at, since, until)
    )
    if ci_system_ids is not None:
        if not ci_system_ids:
            return {}
        run_query = run_query.where(runs.c.ci_system_id.in_(sorted(set(ci_system_ids))))
        noted_query = noted_query.where(noted.c.ci_system_id.in_(sorted(set(ci_system_ids))))
    for ci_id, count in await conn.execute(run_query.group_by(runs.c.ci_system_id)):
        found.setdefault(ci_id, [0, 0, 0])[0] = int(count)
    for ci_id, kind, count in await conn.execute(noted_query.group_by(noted.c.ci_system_id, noted.c.kind)):
        slot = 1 if kind == m.CommentKindStored.START.value else 2
        found.setdefault(ci_id, [0, 0, 0])[slot] += int(count)
    return {ci_id: CommentCounts(*counts) for ci_id, counts in found.items()}


async def unread_comments(conn: AsyncConnection, ci_system_id: int, *, limit: int = 10) -> list[UnreadComment]:
    """The CI's latest unread comments, newest first."""
    noted = m.ci_comments_t
    query = (
        sa.select(
            noted.c.id,
            noted.c.ci_system_id,
            noted.c.project,
            noted.c.change_number,
            noted.c.patchset_number,
            noted.c.posted_at,
            noted.c.vote,
            noted.c.raw_comment.label("text"),
            noted.c.why,
            noted.c.parsed_with,
        )
        .where(noted.c.ci_system_id == ci_system_id, noted.c.kind == m.CommentKindStored.UNREAD.value)
        .order_by(noted.c.posted_at.desc(), noted.c.id.desc())
        .limit(limit)
    )
    return [UnreadComment(**row._mapping) for row in await conn.execute(query)]


@dataclass(frozen=True, slots=True)
class StoredComment:
    """One of a CI's stored comments, whichever table holds it, as the parser read it then."""

    id: int
    stored_as: Literal["result", "start", "unread"]  # "result": ci_runs; the others: ci_comments
    project: str
    branch: str
    change_number: int
    patchset_number: int
    posted_at: datetime
    vote: int | None
    source: str
    raw_comment: str


async def latest_comments(conn: AsyncConnection, ci_system_id: int, *, limit: int) -> list[StoredComment]:
    """The CI's `limit` newest stored comments (runs, starts and unread ones), newest first."""
    found: list[StoredComment] = []
    for table in (m.runs_t, m.ci_comments_t):
        kind = table.c.kind if table is m.ci_comments_t else sa.literal("result")
        query = (
            sa.select(
                table.c.id,
                kind.label("stored_as"),
                table.c.project,
                table.c.branch,
                table.c.change_number,
                table.c.patchset_number,
                table.c.posted_at,
                table.c.vote,
                table.c.source,
                table.c.raw_comment,
            )
            .where(table.c.ci_system_id == ci_system_id)
            .order_by(table.c.posted_at.desc(), table.c.id.desc())
            .limit(limit)
        )
        found.extend(StoredComment(**row._mapping) for row in await conn.execute(query))
    found.sort(key=lambda comment: (comment.posted_at, comment.stored_as == "result", comment.id), reverse=True)
    return found[:limit]


@dataclass(frozen=True, slots=True)
class CommentMark:
    """One of a CI's comments, whichever table holds it: when, where, and whether it was read."""

    id: int
    posted_at: datetime
    project: str
    change_number: int
    patchset_number: int
    unread: bool


async def comment_marks(
    conn: AsyncConnection, ci_system_id: int, since: datetime, until: datetime
) -> list[CommentMark]:
    """The CI's comments posted in ``[since, until]`` (results, starts, unread ones), oldest first."""
    found: list[CommentMark] = []
    for table in (m.runs_t, m.ci_comments_t):
        unread = table.c.kind == m.CommentKindStored.UNREAD.value if table is m.ci_comments_t else sa.literal(False)
        query = sa.select(
            table.c.id,
            table.c.posted_at,
            table.c.project,
            table.c.change_number,
            table.c.patchset_number,
            unread.label("unread"),
        ).where(
            table.c.ci_system_id == ci_system_id,
            table.c.posted_at >= to_aware_utc(since),
            table.c.posted_at <= to_aware_utc(until),
        )
        for row in await conn.execute(query):
            values = row._mapping
            found.append(
                CommentMark(
                    **{**values, "posted_at": to_aware_utc(values["posted_at"]), "unread": bool(values["unread"])}
                )
            )
    found.sort(key=lambda mark: (mark.posted_at, mark.id))
    return found


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
