"""The :class:`Store`: the one object everything in cidash writes through.

Writes are serialised inside a Store (one ``asyncio.Lock``): the dedup of a stream copy against
a REST copy of the same comment is only sound if two batches never look for each other's rows
concurrently, and the id caches must only see committed rows. Use one Store per process, and
one writing process per Gerrit server. Each write is one transaction with one retry policy
(:meth:`Store.write`): an ``IntegrityError`` (another writer got there first), a MySQL deadlock
or lock wait timeout clears the caches and runs the work again, up to :data:`WRITE_ATTEMPTS`
times. The collector's batches, the incident engine, webhook records, operators' edits and
re-parsing all go through it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker

from cidash.config import CISystemConfig
from cidash.domain.comments import AccountRef, ObservedComment
from cidash.domain.views import SystemPatch
from cidash.errors import ConfigError
from cidash.parsing import PARSER_VERSION, ParsedComment
from cidash.store import ci_sync, collection, journal, reparse
from cidash.store import schema as m
from cidash.store.bulk_io import insert_rows, update_rows
from cidash.store.comment_writer import AfterInsert, AfterMove, CommentWriter, WriteStats
from cidash.store.engine import create_engine, writer_engine
from cidash.store.journal import DeadLetter, JournalEvent, StoredDeadLetter
from cidash.store.migrate import current_revision, head_revision
from cidash.store.natural_keys import IN_CHUNK, chunks
from cidash.store.reparse import Progress, ReparseCounts
from cidash.store.types import to_aware_utc

if TYPE_CHECKING:
    from cidash.store.reads.systems import SystemRow

log = logging.getLogger(__name__)
T = TypeVar("T")
_MYSQL_RETRYABLE = {1205, 1213}  # lock wait timeout, deadlock
WRITE_ATTEMPTS = 3  # a deadlock between replicas' incident engines can repeat once


def _retryable(exc: BaseException) -> bool:
    if isinstance(exc, IntegrityError):
        return True
    if isinstance(exc, DBAPIError):
        args: tuple[Any, ...] = tuple(getattr(exc.orig, "args", ()))
        return len(args) > 0 and args[0] in _MYSQL_RETRYABLE
    return False


class Store:
    """Everything cidash persists. Create with :meth:`open`, finish with :meth:`close`."""

    def __init__(
        self, engine: AsyncEngine, *, after_insert: AfterInsert | None = None, after_move: AfterMove | None = None
    ) -> None:
        self.engine = engine
        self.sessionmaker: async_sessionmaker[AsyncSession] = async_sessionmaker(engine, expire_on_commit=False)
        self._writes = writer_engine(engine)
        self._lock = asyncio.Lock()
        self._writer = CommentWriter(after_insert=after_insert, after_move=after_move)

    @property
    def after_insert(self) -> AfterInsert | None:
        """``async (conn, runs: Sequence[InsertedRun]) -> object``, awaited inside the transaction of
        every write_comments call that inserted runs (derived tables stay consistent with ci_runs;
        if it raises, the whole batch rolls back). Its result is ``WriteStats.after_insert``."""
        return self._writer.after_insert

    @after_insert.setter
    def after_insert(self, hook: AfterInsert | None) -> None:
        self._writer.after_insert = hook

    @property
    def after_move(self) -> AfterMove | None:
        """``async (conn, before: Sequence[InsertedRun], after: Sequence[InsertedRun]) -> object``,
        awaited inside the transaction that changed stored runs' ``posted_at`` or latency (a REST
        copy merged into a stream run, a latency filled in once the patch set's creation time is
        known), with the runs as they were and as they are now. Whatever the after_insert hook
        derives from a run's time or latency (rollups) must be moved here, or it drifts."""
        return self._writer.after_move

    @after_move.setter
    def after_move(self, hook: AfterMove | None) -> None:
        self._writer.after_move = hook

    @classmethod
    async def open(
        cls,
        database_url: str,
        *,
        check_schema: bool = True,
        after_insert: AfterInsert | None = None,
        after_move: AfterMove | None = None,
        **engine_options: Any,
    ) -> Store:
        """Connect; with `check_schema`, refuse a database the migrations have not brought to head."""
        engine = create_engine(database_url, **engine_options)
        try:
            if check_schema:
                async with engine.connect() as conn:
                    revision = await conn.run_sync(current_revision)
                head = head_revision()
                if revision is None or revision != head:
                    raise ConfigError(
                        f"database schema is at revision {revision or 'none'}, expected {head}; "
                        "run the migrations first (cidash.store.migrate.upgrade)"
                    )
        except BaseException:
            await engine.dispose()
            raise
        return cls(engine, after_insert=after_insert, after_move=after_move)

    async def close(self) -> None:
        await self.engine.dispose()

    async def __aenter__(self) -> Store:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    def invalidate_caches(self) -> None:
        """Forget cached ids (call after another process changed servers/accounts/CI systems)."""
        self._writer.clear()

    async def write(self, work: Callable[[AsyncConnection], Awaitable[T]]) -> T:
        """Run `work` in one write transaction, serialised with every other write of this Store;
        on a conflict (see the module docstring) it runs again on a fresh transaction, so `work`
        must not keep state between calls. Do not call back into the Store from `work`."""
        async with self._lock:
            for attempt in range(1, WRITE_ATTEMPTS + 1):
                try:
                    async with self._writes.begin() as conn:
                        return await work(conn)
                except BaseException as exc:
                    self._writer.clear()
                    if attempt == WRITE_ATTEMPTS or not _retryable(exc):
                        raise
                    log.warning("store write conflicted (%s); retrying with fresh caches", type(exc).__name__)
        raise AssertionError("unreachable")  # pragma: no cover

    # -- comments ------------------------------------------------------------------------------
    async def write_comments(
        self, items: Sequence[tuple[ObservedComment, ParsedComment]], *, parsed_with: str | None = None
    ) -> WriteStats:
        """Store a batch idempotently (one transaction); see :class:`WriteStats` for the counts."""
        if not items:
            return WriteStats()
        version = parsed_with or PARSER_VERSION
        return await self.write(lambda conn: self._writer.write(conn, items, version))

    async def promote_comments(
        self,
        promoted: Sequence[tuple[int, ObservedComment, ParsedComment]],
        rekinded: Sequence[tuple[int, tuple[str, str, str]]] = (),
    ) -> WriteStats:
        """Re-parsing's write, one transaction: stored starts/unread comments (``ci_comments``
        ids) now read as results become runs (the writer's dedup, entities and hooks) and leave
        ``ci_comments``; `rekinded` rows get a new (kind, why, parsed_with)."""

        async def work(conn: AsyncConnection) -> WriteStats:
            table = m.ci_comments_t
            await update_rows(conn, table, ("kind", "why", "parsed_with"), rekinded)
            if not promoted:
                return WriteStats()
            stats = await self._writer.write(
                conn, [(comment, parsed) for _, comment, parsed in promoted], PARSER_VERSION
            )
            for part in chunks([row_id for row_id, _, _ in promoted], IN_CHUNK):
                await conn.execute(sa.delete(table).where(table.c.id.in_(part)))
            return stats

        return await self.write(work)

    async def reparse(
        self, configs: Sequence[CISystemConfig], *, ci: str | None = None, progress: Progress | None = None
    ) -> ReparseCounts:
        """Re-read the stored comments with the rules of `configs` (see :mod:`cidash.store.reparse`)."""
        return await reparse.reparse(self, configs, ci=ci, progress=progress)

    async def sync_ci_configs(self, configs: Sequence[CISystemConfig], servers: Sequence[str]) -> None:
        await self.write(lambda conn: ci_sync.sync_ci_configs(conn, self._writer, configs, servers))

    async def sync_group_members(self, server: str, members: Sequence[AccountRef]) -> None:
        await self.write(lambda conn: ci_sync.sync_group_members(conn, self._writer, server, members))

    async def patch_system(self, system: SystemRow, patch: SystemPatch) -> None:
        """An operator's edit of a CI system (see :func:`cidash.store.ci_sync.patch_system`)."""
        await self.write(lambda conn: ci_sync.patch_system(conn, system, patch))

    # -- journal and dead letters -------------------------------------------------------------
    async def journal_events(self, server: str, events: Sequence[JournalEvent]) -> None:
        """Append raw stream lines: (received_at, event type, eventCreatedOn, raw line)."""
        await self.write_batch(server, lines=events)

    async def write_batch(
        self,
        server: str,
        *,
        lines: Sequence[JournalEvent] = (),
        dead_letters: Sequence[DeadLetter] = (),
        comments: Sequence[tuple[ObservedComment, ParsedComment]] = (),
        parsed_with: str | None = None,
    ) -> WriteStats:
        """What one ingest flush holds, in one transaction (one commit, and nothing half written
        when it fails): journal `lines` of `server`, dead letters, and comments as in
        :meth:`write_comments`."""
        if not (lines or dead_letters or comments):
            return WriteStats()
        version = parsed_with or PARSER_VERSION
        received_at = datetime.now(UTC)

        async def work(conn: AsyncConnection) -> WriteStats:
            if lines:
                server_id = (await self._writer.server_ids(conn, [server]))[server]
                await insert_rows(conn, m.journal_t, journal.JOURNAL_COLUMNS, journal.journal_rows(server_id, lines))
            if dead_letters:
                await self._insert_dead_letters(conn, dead_letters, received_at)
            return await self._writer.write(conn, comments, version)

        return await self.write(work)

    async def _purge(self, table: sa.Table, where: sa.ColumnElement[bool]) -> int:
        total = 0
        while True:  # chunked, one short transaction each, so the collector is never held up long
            removed = await self.write(lambda conn: journal.purge_ids(conn, table, where))
            total += removed
            if removed < journal.PURGE_CHUNK:
                return total

    async def purge_journal(self, older_than: datetime) -> int:
        """Delete journal entries received before `older_than`; how many went."""
        table = m.journal_t
        return await self._purge(table, table.c.received_at < to_aware_utc(older_than))

    async def purge_dead_letters(self, older_than: datetime, *, resolved_only: bool = False) -> int:
        table = m.dead_letters_t
        where = table.c.received_at < to_aware_utc(older_than)
        if resolved_only:
            where = sa.and_(where, table.c.resolved.is_(True))
        return await self._purge(table, where)

    async def dead_letters(self, letters: Sequence[DeadLetter]) -> None:
        """Keep inputs that could not be used: (server or None, source, reason, raw bytes/text)."""
        if not letters:
            return
        received_at = datetime.now(UTC)
        await self.write(lambda conn: self._insert_dead_letters(conn, letters, received_at))

    async def _insert_dead_letters(
        self, conn: AsyncConnection, letters: Sequence[DeadLetter], received_at: datetime
    ) -> None:
        names = [server for server, *_ in letters if server is not None]
        server_ids = await self._writer.server_ids(conn, names) if names else {}
        rows = journal.dead_letter_rows(server_ids, letters, received_at)
        await conn.execute(sa.insert(m.dead_letters_t), rows)

    async def dead_letter(self, server: str | None, source: str, reason: str, raw: bytes | str) -> None:
        await self.dead_letters([(server, source, reason, raw)])

    async def dead_letter_count(self, *, unresolved_only: bool = False) -> int:
        table = m.dead_letters_t
        query = sa.select(sa.func.count()).select_from(table)
        if unresolved_only:
            query = query.where(table.c.resolved.is_(False))
        async with self.engine.connect() as conn:
            return int((await conn.execute(query)).scalar_one())

    async def recent_dead_letters(self, limit: int = 100) -> list[StoredDeadLetter]:
        letters, servers = m.dead_letters_t, m.servers_t
        query = (
            sa.select(letters, servers.c.name.label("server_name"))
            .outerjoin(servers, servers.c.id == letters.c.server_id)
            .order_by(letters.c.id.desc())
            .limit(limit)
        )
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [
            StoredDeadLetter(
                row.id, row.server_name, row.received_at, row.source, row.reason, row.raw, row.raw_length, row.resolved
            )
            for row in rows
        ]

    # -- watermarks ----------------------------------------------------------------------------
    async def get_watermark(self, server: str, name: str) -> datetime | None:
        async with self.engine.connect() as conn:
            return await journal.get_watermark(conn, server, name)

    async def set_watermark(self, server: str, name: str, value: datetime) -> None:
        """Move a watermark forward; an older `value` is ignored (it never moves backwards)."""

        async def work(conn: AsyncConnection) -> bool:
            server_id = (await self._writer.server_ids(conn, [server]))[server]
            return await journal.set_watermark(conn, server_id, name, value)

        await self.write(work)

    # -- collector completeness (stream sessions, backfill passes) ---------------------------------
    async def open_stream_session(self, server: str, connected_at: datetime) -> int:
        """A stream-events connection began; its id for :meth:`touch_stream_session` and the close."""

        async def work(conn: AsyncConnection) -> int:
            server_id = (await self._writer.server_ids(conn, [server]))[server]
            return await collection.open_session(conn, server_id, connected_at)

        return await self.write(work)

    async def touch_stream_session(self, session_id: int, seen_at: datetime) -> None:
        """The collector's heartbeat: the session was still connected at `seen_at`."""
        await self.write(lambda conn: collection.touch_session(conn, session_id, seen_at))

    async def close_stream_session(self, session_id: int, at: datetime, reason: str) -> None:
        await self.write(lambda conn: collection.close_session(conn, session_id, at, reason))

    async def close_abandoned_sessions(self, server: str) -> int:
        """At start: end the sessions a dead process left open, at their last heartbeat."""

        async def work(conn: AsyncConnection) -> int:
            server_id = (await self._writer.server_ids(conn, [server]))[server]
            return await collection.close_abandoned(conn, server_id)

        return await self.write(work)

    async def record_backfill_pass(self, server: str, record: collection.PassRecord) -> int:
        async def work(conn: AsyncConnection) -> int:
            server_id = (await self._writer.server_ids(conn, [server]))[server]
            return await collection.insert_pass(conn, server_id, record)

        return await self.write(work)

    async def purge_collection(self, older_than: datetime) -> int:
        """Delete stream sessions and backfill passes that ended before `older_than`."""
        moment = to_aware_utc(older_than)
        removed = 0
        for table in (m.sessions_t, m.passes_t):
            removed += await self._purge(table, collection.purge_where(table, moment))
        return removed

    # -- reads -----------------------------------------------------------------------------------
    async def run_count(self) -> int:
        async with self.engine.connect() as conn:
            return int((await conn.execute(sa.select(sa.func.count()).select_from(m.runs_t))).scalar_one())
