"""Writing down how complete collection was: stream sessions (connect, heartbeat, disconnect) and
backfill passes, for the Collection page (:mod:`cidash.store.collection` reads them).

The records go through one queue and one writer task, in order, so that the stream is never held
up by the database and a close never overtakes its open; a record whose write fails (a database
restarting) is retried until it is written or the collector stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from cidash.collector.backfill import BackfillResult
from cidash.store import HEARTBEAT_S, PassRecord, Store
from cidash.tasks import cancel_and_wait

log = logging.getLogger(__name__)

RETRY_S = 2.0
STOPPED = "collector stopped"

Record = Callable[[], Awaitable[None]]


def completed_pass(started_at: datetime, finished_at: datetime, result: BackfillResult) -> PassRecord:
    """The record of a pass that completed: the range it read and what it found."""
    return PassRecord(
        started_at,
        finished_at,
        "ok",
        since=result.since,
        until=result.until,
        changes=result.changes,
        comments=result.comments,
        runs_new=result.runs_inserted,
    )


class CompletenessRecorder:
    """One server's session and pass records; :meth:`start` and :meth:`stop` with the collector."""

    def __init__(self, store: Store, server: str, *, heartbeat_s: float = HEARTBEAT_S) -> None:
        self._store = store
        self._server = server
        self._heartbeat_s = heartbeat_s
        self._queue: asyncio.Queue[Record] = asyncio.Queue()
        self._session_id: int | None = None
        self._connected = False
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        """Close what a dead process left open first, then record from here on."""
        self._queue.put_nowait(self._close_abandoned)
        self._tasks = [
            asyncio.create_task(self._write_loop(), name=f"completeness:{self._server}"),
            asyncio.create_task(self._heartbeat_loop(), name=f"heartbeat:{self._server}"),
        ]

    async def stop(self, timeout_s: float = 1.0) -> None:
        """Close the open session ("collector stopped") and write what is queued, briefly: what is
        not written in time is closed by the next start at the last heartbeat."""
        if self._connected:
            self.disconnected(STOPPED)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._queue.join(), timeout=timeout_s)
        for task in self._tasks:
            await cancel_and_wait(task)

    # -- what the collector reports ---------------------------------------------------------------
    def connected(self) -> None:
        at = datetime.now(UTC)
        self._connected = True
        self._queue.put_nowait(lambda: self._open(at))

    def disconnected(self, reason: str) -> None:
        if not self._connected:
            return
        at = datetime.now(UTC)
        self._connected = False
        self._queue.put_nowait(lambda: self._close(at, reason))

    def backfill_pass(self, record: PassRecord) -> None:
        self._queue.put_nowait(lambda: self._pass(record))

    # -- the writes ---------------------------------------------------------------------------------
    async def _close_abandoned(self) -> None:
        closed = await self._store.close_abandoned_sessions(self._server)
        if closed:
            log.info("server %s: closed %d stream session(s) a previous process left open", self._server, closed)

    async def _open(self, at: datetime) -> None:
        self._session_id = await self._store.open_stream_session(self._server, at)

    async def _close(self, at: datetime, reason: str) -> None:
        if self._session_id is not None:
            await self._store.close_stream_session(self._session_id, at, reason)
            self._session_id = None

    async def _touch(self, at: datetime) -> None:
        if self._session_id is not None and self._connected:
            await self._store.touch_stream_session(self._session_id, at)

    async def _pass(self, record: PassRecord) -> None:
        await self._store.record_backfill_pass(self._server, record)

    async def _write_loop(self) -> None:
        while True:
            record = await self._queue.get()
            try:
                while True:
                    try:
                        await record()
                        break
                    except asyncio.CancelledError:
                        raise
                    except Exception as exc:  # the DB driver raises many types; all mean "try again"
                        log.warning(
                            "server %s: recording collection completeness failed, retrying in %.0f s: %s",
                            self._server,
                            RETRY_S,
                            exc,
                        )
                        await asyncio.sleep(RETRY_S)
            finally:
                self._queue.task_done()

    async def _heartbeat_loop(self) -> None:
        while True:
            await asyncio.sleep(self._heartbeat_s)
            if self._connected and self._queue.empty():  # a backlog means the database is behind: skip a beat
                self._queue.put_nowait(functools.partial(self._touch, datetime.now(UTC)))
