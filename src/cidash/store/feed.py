"""The feed: every message pushed to live subscribers (run, alert, state), in the ``feed`` table.

A message's ``id`` is its row id. Subscribers resume with ``since`` (every message with a larger
id), so ids must appear in commit order: a subscriber that saw id N must never later miss a
smaller id committed after it. Every feed insert therefore first takes the *feed lock*, held
until its transaction ends:

* SQLite: the database's write lock (writers use ``BEGIN IMMEDIATE``, and a deferred transaction
  that writes after another writer committed fails rather than interleaving);
* MySQL/MariaDB: an exclusive row lock on the ``leases`` row ``cidash:feed``
  (``INSERT ... ON DUPLICATE KEY UPDATE``, which creates the row on first use).

Under that lock nobody else inserts feed rows, so the new ids are exactly the rows above the
largest id read just before the insert, ascending in insertion order (auto-increment values of
one multi-row ``INSERT`` follow the order of its rows): one multi-row insert plus two small
selects per batch, whatever the batch size, exact on both engines.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from cidash.domain.views import FeedKind, FeedMessage
from cidash.store import schema as m
from cidash.store.bulk_io import insert_rows
from cidash.store.inserted_run import InsertedRun
from cidash.store.reads.run_rows import run_out
from cidash.store.schema import feed_t, leases_t
from cidash.store.types import is_mysql

FEED_KINDS: tuple[FeedKind, ...] = ("run", "alert", "state", "incident")
FEED_LOCK = "cidash:feed"  # the leases row every feed insert locks on MySQL/MariaDB
REPLAY_PAGE = 500

_COLUMNS = ("kind", "created_at", "ci_system_id", "project", "payload")
_LOCK_FOREVER = datetime(9999, 12, 31, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class FeedEntry:
    """One feed row to append; `data` must already be JSON-safe (``model_dump(mode="json")``)."""

    kind: FeedKind
    data: dict[str, object]
    ci_system_id: int | None
    project: str | None
    created_at: datetime | None = None  # when the message was made (default: now); retention purges by it


async def lock_feed(conn: AsyncConnection) -> None:
    """Take the feed lock for the rest of the transaction (see the module docstring)."""
    if not is_mysql(conn.dialect):
        return
    target = conn.dialect.identifier_preparer.quote(leases_t.name)
    await conn.execute(
        sa.text(
            f"INSERT INTO {target} (name, holder, expires_at) VALUES (:name, :holder, :expires) "
            "ON DUPLICATE KEY UPDATE holder = VALUES(holder)"
        ),
        {"name": FEED_LOCK, "holder": "feed-order", "expires": _LOCK_FOREVER.replace(tzinfo=None)},
    )


async def newest_id(conn: AsyncConnection) -> int:
    """The largest feed id (0 for an empty feed)."""
    return int((await conn.execute(sa.select(sa.func.coalesce(sa.func.max(feed_t.c.id), 0)))).scalar_one())


async def append(conn: AsyncConnection, entries: Sequence[FeedEntry]) -> list[FeedMessage]:
    """Insert `entries` in order inside the caller's transaction; their messages with the new ids."""
    if not entries:
        return []
    await lock_feed(conn)
    before = await newest_id(conn)
    now = datetime.now(UTC)
    rows: list[tuple[Any, ...]] = [
        (
            entry.kind,
            entry.created_at or now,
            entry.ci_system_id,
            entry.project,
            orjson.dumps(entry.data).decode(),
        )
        for entry in entries
    ]
    await insert_rows(conn, feed_t, _COLUMNS, rows)
    query = sa.select(feed_t.c.id).where(feed_t.c.id > before).order_by(feed_t.c.id)
    ids = [int(row_id) for row_id in (await conn.execute(query)).scalars()]
    if len(ids) != len(entries):  # only possible if something inserted feed rows without the lock
        raise RuntimeError(f"feed insert: expected {len(entries)} new ids above {before}, found {len(ids)}")
    return [
        FeedMessage(type=entry.kind, id=row_id, data=entry.data) for entry, row_id in zip(entries, ids, strict=True)
    ]


async def append_run_messages(conn: AsyncConnection, runs: Sequence[InsertedRun]) -> list[FeedMessage]:
    """One `run` feed row per new run (payload: RunOut), in the writer's transaction; the messages
    to publish once it has committed, ids ascending."""
    entries = [
        FeedEntry(
            "run",
            run_out(run, server=run.server, ci=run.ci, jobs=run.jobs).model_dump(mode="json"),
            run.ci_system_id,
            run.project,
        )
        for run in runs
    ]
    return await append(conn, entries)


# -- reading -----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FeedFilter:
    """Which messages a subscriber wants; None means no restriction. Messages without a project
    (state changes, CI-wide alerts) pass a `projects` filter."""

    kinds: frozenset[str] | None = None
    ci: frozenset[str] | None = None
    projects: frozenset[str] | None = None

    @classmethod
    def of(
        cls,
        kinds: Iterable[str] | None = None,
        ci: Iterable[str] | None = None,
        projects: Iterable[str] | None = None,
    ) -> FeedFilter:
        def norm(values: Iterable[str] | None) -> frozenset[str] | None:
            cleaned = frozenset(v.strip() for v in values or () if v and v.strip())
            return cleaned or None

        wanted = norm(kinds)
        if wanted is not None:
            wanted = frozenset(kind for kind in wanted if kind in FEED_KINDS)  # only unknown kinds: nothing
        return cls(wanted, norm(ci), norm(projects))

    def matches(self, kind: str, ci: object, project: object) -> bool:
        if self.kinds is not None and kind not in self.kinds:
            return False
        if self.ci is not None and ci not in self.ci:
            return False
        return self.projects is None or project is None or project in self.projects

    def matches_message(self, message: FeedMessage) -> bool:
        return self.matches(message.type, message.data.get("ci"), message.data.get("project"))


@dataclass(frozen=True, slots=True)
class StoredFeedRow:
    id: int
    kind: FeedKind
    payload: str  # the JSON text of the message's `data`

    def message_text(self) -> str:
        """The message as the websocket sends it, without re-encoding the payload."""
        return f'{{"type":"{self.kind}","id":{self.id},"data":{self.payload}}}'

    def message(self) -> FeedMessage:
        return FeedMessage(type=self.kind, id=self.id, data=orjson.loads(self.payload))


def _filtered(query: sa.Select[Any], flt: FeedFilter) -> sa.Select[Any]:
    if flt.kinds is not None:
        query = query.where(feed_t.c.kind.in_(sorted(flt.kinds)))
    if flt.ci is not None:
        ci, accounts = m.ci_systems_t, m.accounts_t
        ids = sa.select(ci.c.id).join(accounts, accounts.c.id == ci.c.account_id)
        query = query.where(feed_t.c.ci_system_id.in_(ids.where(accounts.c.account_key.in_(sorted(flt.ci)))))
    if flt.projects is not None:
        query = query.where(sa.or_(feed_t.c.project.is_(None), feed_t.c.project.in_(sorted(flt.projects))))
    return query


async def read_since(
    conn: AsyncConnection,
    since: int,
    flt: FeedFilter | None = None,
    limit: int = REPLAY_PAGE,
    *,
    before: int | None = None,
) -> list[StoredFeedRow]:
    """Up to `limit` stored messages with ``since < id`` (``< before`` too when given) matching
    `flt`, in id order. Page by passing the last id back as `since`."""
    query = sa.select(feed_t.c.id, feed_t.c.kind, feed_t.c.payload).where(feed_t.c.id > since)
    if before is not None:
        query = query.where(feed_t.c.id < before)
    if flt is not None:
        query = _filtered(query, flt)
    query = query.order_by(feed_t.c.id).limit(limit)
    return [StoredFeedRow(int(row[0]), row[1], row[2]) for row in await conn.execute(query)]


async def run_messages_created_since(conn: AsyncConnection, since: datetime) -> list[FeedMessage]:
    """The `run` messages stored at or after `since` (commit time, not posted time), in id order."""
    query = (
        sa.select(feed_t.c.id, feed_t.c.kind, feed_t.c.payload)
        .where(feed_t.c.created_at >= since, feed_t.c.kind == "run")
        .order_by(feed_t.c.id)
    )
    return [StoredFeedRow(int(row[0]), row[1], row[2]).message() for row in await conn.execute(query)]


async def messages_since(
    conn: AsyncConnection, since: int, flt: FeedFilter | None = None, limit: int = REPLAY_PAGE
) -> list[FeedMessage]:
    return [row.message() for row in await read_since(conn, since, flt, limit)]
