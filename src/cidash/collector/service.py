"""Run collection for one Gerrit server: the live stream, its ingest loop and the backfill schedule.

Loss-freeness comes from the combination: the stream gives real time, and the backfill, run
every `backfill_interval_s`, at start, after every reconnect and after every `dropped-output`,
re-reads everything since the committed watermark. The dedup key makes the overlap harmless.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from cidash import metrics
from cidash.collector.backfill import BackfillResult, run_backfill
from cidash.collector.completeness import STOPPED, CompletenessRecorder, completed_pass
from cidash.collector.ingest import Ingestor, OnWritten
from cidash.config import GerritServer
from cidash.errors import GerritAuthError, GerritUnavailableError
from cidash.gerrit.rest import GerritRestClient
from cidash.gerrit.stream import StreamClient
from cidash.parsing import CommentParser
from cidash.store import PassOutcome, PassRecord, Store, WriteStats
from cidash.tasks import cancel_and_wait

log = logging.getLogger(__name__)

LINE_QUEUE_SIZE = 100_000
DB_RETRY_S = 2.0


@dataclass
class CollectorHealth:
    stream_connected: bool = False
    last_backfill_at: float | None = None
    last_backfill: BackfillResult | None = None
    backfills: int = 0
    backfill_errors: int = 0
    last_error: str | None = None
    fatal: str | None = None  # e.g. credentials refused: needs an operator
    backfill_stalled: bool = False  # the last pass was cut at backfill_deadline_s


class _CollectorMeters:
    """This server's children of the process-wide Prometheus metrics (labels resolved once)."""

    def __init__(self, server: str) -> None:
        self.stream_events = metrics.EVENTS_RECEIVED.labels(server=server, source="stream")
        self.rest_comments = metrics.EVENTS_RECEIVED.labels(server=server, source="rest")
        self.runs_stored = metrics.RUNS_STORED.labels(server=server)
        self.dead_lettered = metrics.DEAD_LETTERED.labels(server=server)
        self.reconnects = metrics.RECONNECTS.labels(server=server)
        self.backfill_duration = metrics.BACKFILL_DURATION.labels(server=server)
        self.backfill_stalled = metrics.BACKFILL_STALLED.labels(server=server)
        self.line_queue = metrics.QUEUE_DEPTH.labels(queue=f"ingest:{server}")
        self._dead_reported = 0

    def count_dead_letters(self, total: int) -> None:
        """Dead letters are counted by the ingestor; add what it wrote since the last call."""
        if total > self._dead_reported:
            self.dead_lettered.inc(total - self._dead_reported)
            self._dead_reported = total


class ServerCollector:
    def __init__(
        self,
        server: GerritServer,
        store: Store,
        parser: CommentParser,
        scheduler: AsyncIOScheduler,
        *,
        batch_size: int = 1000,
        on_written: OnWritten | None = None,
    ) -> None:
        self.server = server
        self._on_written = on_written
        self._meters = _CollectorMeters(server.name)
        self._store = store
        self._parser = parser
        self._scheduler = scheduler
        self.rest = GerritRestClient.for_server(server)
        self.ingestor = Ingestor(store, parser, server.name, batch_size=batch_size, on_written=self._written)
        self.health = CollectorHealth()
        self.backfilled = asyncio.Event()  # set after the first successful backfill
        self._lines: asyncio.Queue[tuple[bytes, float] | tuple[bytes, float, int]] = asyncio.Queue(LINE_QUEUE_SIZE)
        self.completeness = CompletenessRecorder(store, server.name)
        self.stream = StreamClient(
            server,
            self._on_line,
            on_connected=self._on_connected,
            on_disconnected=self._on_disconnected,
            on_oversized=self._on_oversized,
        )
        self._tasks: list[asyncio.Task[None]] = []
        self._backfill_lock = asyncio.Lock()
        self._backfill_task: asyncio.Task[BackfillResult | None] | None = None  # the pass under way
        self._stopping = False
        self._job_id = f"backfill:{server.name}"

    # -- lifecycle ------------------------------------------------------------------------
    async def start(self) -> None:
        self._scheduler.add_job(
            self._scheduled_backfill,
            "interval",
            seconds=self.server.backfill_interval_s,
            id=self._job_id,
            max_instances=1,
            coalesce=True,
            next_run_time=None,
        )
        self.completeness.start()
        self._tasks.append(asyncio.create_task(self._ingest_loop(), name=f"ingest:{self.server.name}"))
        if self.server.stream:
            self._tasks.append(asyncio.create_task(self.stream.run(), name=f"stream:{self.server.name}"))
        self.request_backfill("start")

    async def stop(self) -> None:
        self._stopping = True
        with contextlib.suppress(Exception):
            self._scheduler.remove_job(self._job_id)
        await self.stream.stop()
        await self.completeness.stop()
        # a pass under way is redone by the next start: its watermark moves only after a commit
        await cancel_and_wait(self._backfill_task)
        # let the ingest loop write what it holds, then stop it
        await self._drain()
        for task in self._tasks:
            await cancel_and_wait(task)
        await self.rest.aclose()

    async def _drain(self, timeout_s: float = 10.0) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._lines.join(), timeout=timeout_s)

    # -- stream side ----------------------------------------------------------------------
    async def _on_line(self, line: bytes, received_at: float) -> None:
        self._meters.stream_events.inc()
        await self._lines.put((line, received_at))

    async def _on_oversized(self, head: bytes, size: int, received_at: float) -> None:
        await self._lines.put((head, received_at, size))

    async def _on_connected(self, first: bool) -> None:
        self.health.stream_connected = True
        self.completeness.connected()
        if not first:
            self._meters.reconnects.inc()
            self.request_backfill("reconnect")

    async def _on_disconnected(self, reason: str) -> None:
        self.health.stream_connected = False
        self.completeness.disconnected(STOPPED if self._stopping else reason)

    async def _ingest_loop(self) -> None:
        """Drain the line queue in batches: large under load, immediate when traffic is light."""
        while True:
            item = await self._lines.get()
            self._meters.line_queue.set(self._lines.qsize() + 1)
            batch = [item]
            while len(batch) < self.ingestor.batch_size:
                try:
                    batch.append(self._lines.get_nowait())
                except asyncio.QueueEmpty:
                    break
            dropped = False
            for entry in batch:
                if len(entry) == 3:
                    self.ingestor.add_oversized(entry[0], entry[2])
                    continue
                event = self.ingestor.add_line(entry[0], entry[1])
                dropped = dropped or (event is not None and event.type == "dropped-output")
            if dropped:
                self.request_backfill("dropped-output")
            await self._flush_until_done()
            self._meters.count_dead_letters(self.ingestor.stats.dead_lettered)
            self._meters.line_queue.set(self._lines.qsize())
            for _ in batch:
                self._lines.task_done()
            self.health.stream_connected = self.stream.stats.connected

    async def _flush_until_done(self) -> None:
        """The database may be restarting: keep what we hold and retry; never drop it."""
        while True:
            try:
                await self.ingestor.flush()
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the DB driver raises many types; all mean "try again"
                self.health.last_error = f"store: {type(exc).__name__}: {exc}"
                log.warning("server %s: write failed, retrying in %.0f s: %s", self.server.name, DB_RETRY_S, exc)
                await asyncio.sleep(DB_RETRY_S)

    # -- backfill side --------------------------------------------------------------------
    def request_backfill(self, reason: str) -> None:
        log.info("server %s: backfill requested (%s)", self.server.name, reason)
        job = self._scheduler.get_job(self._job_id)
        if job is not None:
            job.modify(next_run_time=_now_for(self._scheduler))

    async def _scheduled_backfill(self) -> None:
        try:
            await self.backfill_now()
        except asyncio.CancelledError:
            if not self._stopping:
                raise
            # shutting down mid-backfill is normal: the watermark did not move, the next run redoes it
            log.info("server %s: backfill interrupted by shutdown", self.server.name)

    async def backfill_now(self) -> BackfillResult | None:
        """One backfill pass (after the one under way, if any); None when it failed."""
        async with self._backfill_lock:
            # its own task, so that stop() can cancel the pass without cancelling whoever awaits it
            task = asyncio.create_task(self._backfill_pass(), name=f"backfill:{self.server.name}")
            self._backfill_task = task
            try:
                return await task
            except asyncio.CancelledError:
                caller = asyncio.current_task()
                if task.cancelled() and caller is not None and not caller.cancelling():
                    log.info("server %s: backfill pass ended by stop()", self.server.name)
                    return None  # stop() ended the pass, not our caller's cancellation
                raise
            finally:
                self._backfill_task = None

    async def _backfill_pass(self) -> BackfillResult | None:
        started_at = datetime.now(UTC)
        result = await self._timed_backfill_pass()
        finished_at = datetime.now(UTC)
        if isinstance(result, tuple):
            outcome, error = result
            self.completeness.backfill_pass(PassRecord(started_at, finished_at, outcome, error=error))
            return None
        self.completeness.backfill_pass(completed_pass(started_at, finished_at, result))
        return result

    async def _timed_backfill_pass(self) -> BackfillResult | tuple[PassOutcome, str]:
        """The pass's result, or how it ended otherwise (stalled or failed) and why."""
        deadline = self.server.backfill_deadline_s
        try:
            async with asyncio.timeout(deadline):
                result = await run_backfill(self.server, self.rest, self._store, self._parser, on_written=self._written)
        except TimeoutError:
            # what was committed stays; the watermark did not move, so the next pass redoes the rest
            self.health.backfill_errors += 1
            self.health.backfill_stalled = True
            self.health.last_error = f"backfill pass cut at its deadline of {deadline:g} s (backfill_deadline_s)"
            self._meters.backfill_stalled.set(1)
            log.warning("server %s: %s; will retry", self.server.name, self.health.last_error)
            self._retry_soon()
            return "stalled", self.health.last_error
        except GerritAuthError as exc:
            self.health.fatal = str(exc)
            self.health.backfill_errors += 1
            log.error("server %s: %s: backfill stopped until the configuration is fixed", self.server.name, exc)
            return "failed", self.health.fatal
        except (GerritUnavailableError, OSError) as exc:
            self.health.backfill_errors += 1
            self.health.last_error = str(exc)
            log.warning("server %s: backfill failed, will retry: %s", self.server.name, exc)
            self._retry_soon()
            return "failed", self.health.last_error
        except Exception as exc:  # DB trouble: the watermark did not move, retry soon
            self.health.backfill_errors += 1
            self.health.last_error = f"{type(exc).__name__}: {exc}"
            log.warning("server %s: backfill failed, will retry: %s", self.server.name, exc)
            self._retry_soon()
            return "failed", self.health.last_error
        self._meters.backfill_duration.observe(result.duration_s)
        self._meters.rest_comments.inc(result.comments)
        self.health.backfills += 1
        self.health.last_backfill = result
        self.health.last_backfill_at = time.time()
        self.health.fatal = None
        self.health.backfill_stalled = False
        self._meters.backfill_stalled.set(0)
        self.backfilled.set()
        return result

    async def _written(self, stats: WriteStats) -> None:
        self._meters.runs_stored.inc(stats.runs_inserted)
        if self._on_written is not None:
            await self._on_written(stats)

    def _retry_soon(self, delay_s: float = 15.0) -> None:
        job = self._scheduler.get_job(self._job_id)
        if job is not None:
            job.modify(next_run_time=_now_for(self._scheduler, delay_s))


def _now_for(scheduler: AsyncIOScheduler, delay_s: float = 0.0) -> datetime:
    return datetime.now(scheduler.timezone) + timedelta(seconds=delay_s)
