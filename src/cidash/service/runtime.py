"""Assemble a running cidash from settings: store, bus, alert engine, collectors, and the API server.

The flow is one way: each collector writes a batch; the store's insert hook returns the `run`
feed messages; they go to the bus (websocket/SSE subscribers of every replica) and to the alert
engine, which evaluates them in a task of its own (the collector never waits for it) and whose
`incident`/`alert`/`state` messages go to the bus too; with ``[alertmanager]`` configured, the
notifying incidents are pushed there.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any

import uvicorn
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from fastapi import FastAPI

from cidash.alerts.alertmanager import AlertmanagerPusher
from cidash.alerts.engine import AlertEngine
from cidash.alerts.webhooks import WebhookSender
from cidash.api.app import close_app, create_app
from cidash.api.live_slots import close_live
from cidash.collector.election import Leadership
from cidash.collector.service import ServerCollector
from cidash.config import ApiConfig, GerritServer, Settings
from cidash.domain.views import FeedMessage, ServerStatus
from cidash.live.bus import Bus, make_bus
from cidash.parsing import CommentParser
from cidash.serving import QuietServer
from cidash.store import Store, WriteStats, open_store, upgrade, wait_for_schema
from cidash.tasks import cancel_and_wait

log = logging.getLogger(__name__)

STOP_DEADLINE_S = 4.0  # for the whole graceful stop; cli arms a hard exit a little after it
ALERT_TICK_S = 60.0
ALERT_RETRY_S = 2.0
START_UP_HOLD_S = 120.0  # the longest the incident engine waits for the start-up backfills
PURGE_EVERY_S = 3600.0


class Runtime:
    """`async with Runtime(settings) as runtime:` collects (and serves the API) until the block exits."""

    def __init__(
        self,
        settings: Settings,
        *,
        migrate: bool = True,
        collect: bool = True,
        serve_api: bool = False,
        frontend_dir: Path | None = None,
    ) -> None:
        self.settings = settings
        self._migrate = migrate
        self._collect = collect
        self._serve_api = serve_api
        self._frontend_dir = frontend_dir
        self._store: Store | None = None
        self._bus: Bus | None = None
        self._alerts: AlertEngine | None = None
        self._evaluator: asyncio.Task[None] | None = None
        self._pusher: AlertmanagerPusher | None = None
        self._pusher_task: asyncio.Task[None] | None = None
        self.parser = CommentParser(settings.ci, auto_detect=settings.auto_detect_ci)
        self.scheduler = AsyncIOScheduler(timezone="UTC")
        self._slots: list[_CollectorSlot] = []
        self.app: FastAPI | None = None
        self._http: QuietServer | None = None
        self._http_task: asyncio.Task[None] | None = None

    @property
    def store(self) -> Store:
        assert self._store is not None, "Runtime not started"
        return self._store

    @property
    def bus(self) -> Bus:
        assert self._bus is not None, "Runtime not started"
        return self._bus

    @property
    def alerts(self) -> AlertEngine:
        assert self._alerts is not None, "Runtime not started"
        return self._alerts

    @property
    def collectors(self) -> list[ServerCollector]:
        """The collectors this replica runs now (those whose leadership it holds)."""
        return [slot.collector for slot in self._slots if slot.collector is not None]

    @property
    def api_port(self) -> int | None:
        if self._http is None or not self._http.servers:
            return None
        sockets = self._http.servers[0].sockets
        return int(sockets[0].getsockname()[1]) if sockets else None

    async def __aenter__(self) -> Runtime:
        if self._migrate:
            await upgrade(self.settings.database_url)
        else:
            await wait_for_schema(self.settings.database_url)
        self._store = await open_store(self.settings.database_url)
        await self._store.sync_ci_configs(self.settings.ci, [server.name for server in self.settings.servers])
        self._bus = make_bus(self.settings.redis_url, self.settings.redis_prefix)
        await self._bus.start()
        # each CI is evaluated by the replica collecting its server (time-based rules included)
        self._alerts = AlertEngine.from_settings(
            self._store,
            self.settings,
            servers=lambda: [c.server.name for c in self.collectors],
            webhooks=WebhookSender.from_config(self._store, self.settings.webhook_delivery),
        )
        if self.settings.alertmanager is not None:
            self._pusher = AlertmanagerPusher(self._store, self.settings.alertmanager)
            self.alerts.edge_listeners.append(self._pusher.on_edges)
            self._pusher_task = asyncio.create_task(self._pusher.run(), name="alertmanager")
        self.scheduler.start()
        if self._collect:
            self.alerts.hold()  # until the start-up backfills are in (see _start_up_backfills)
            await self._start_collectors()
        first = self._start_up_backfills if self._collect else None
        self._evaluator = asyncio.create_task(
            self.alerts.run_deferred(self.bus.publish, ALERT_RETRY_S, first=first), name="incidents"
        )
        if self._serve_api:
            await self._start_api()
        return self

    async def _start_collectors(self) -> None:
        for server in self.settings.servers:
            slot = _CollectorSlot(self, server)
            self._slots.append(slot)
            slot.task = asyncio.create_task(slot.leadership.run(slot.elected, slot.deposed), name=f"lead:{server.name}")
        # give each election its first decision, so a lone replica starts collecting right away
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.gather(*(slot.leadership.tried.wait() for slot in self._slots)), 10)
        self.scheduler.add_job(self._alert_tick, "interval", seconds=ALERT_TICK_S, id="alerts:tick", coalesce=True)
        self.scheduler.add_job(self._purge, "interval", seconds=PURGE_EVERY_S, id="purge", coalesce=True)

    async def _start_up_backfills(self) -> None:
        """Until the first backfill of every collector this replica started with is in (at most
        :data:`START_UP_HOLD_S`: a Gerrit whose REST fails must not keep the stream's runs from
        being evaluated): incidents are evaluated once over the import, after the dashboard is up."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(START_UP_HOLD_S):
                for collector in self.collectors:
                    await collector.backfilled.wait()

    async def _start_api(self) -> None:
        app = create_app(
            self.settings,
            self.store,
            status=self.server_status,
            bus=self.bus,
            alerts=self.alerts,
            frontend_dir=self._frontend_dir,
        )
        self.app = app
        api = self.settings.api
        self._http = QuietServer(api_server_config(app, api))
        self._http_task = asyncio.create_task(self._http.serve(), name="api")
        while not self._http.started:
            if self._http_task.done():
                self._http_task.result()  # raises the start-up error (port in use...)
                raise OSError(f"the API server could not listen on {api.host}:{api.port}")
            await asyncio.sleep(0.02)

    async def publish_written(self, stats: WriteStats) -> None:
        """After a committed batch: push its runs, then the alerts they caused. Never raises: the
        runs are safely stored, and subscribers can always catch up from the feed with `since`."""
        derived = stats.after_insert
        messages = [item for item in derived if isinstance(item, FeedMessage)] if isinstance(derived, list) else []
        if not messages:
            return
        try:
            await self.bus.publish(messages)
            self.alerts.defer(messages)
        except Exception:
            log.exception("publishing %d feed messages failed (they stay replayable from the feed)", len(messages))

    async def catch_up_alerts(self, server: str) -> None:
        """At takeover: the alerts a killed collector owed (see :meth:`AlertEngine.catch_up`)."""
        try:
            await self.bus.publish(await self.alerts.catch_up(server))
        except Exception:
            log.exception("server %s: evaluating the alerts of recent runs failed", server)

    async def _alert_tick(self) -> None:
        try:
            await self.bus.publish(await self.alerts.tick(datetime.now(UTC)))
        except Exception:
            log.exception("time-based alert evaluation failed")

    async def _purge(self) -> None:
        now = datetime.now(UTC)
        try:
            await self.store.purge_journal(now - timedelta(days=self.settings.journal_retention_days))
            await self.store.purge_dead_letters(now - timedelta(days=self.settings.dead_letter_retention_days))
            await self.store.purge_collection(now - timedelta(days=self.settings.collection_retention_days))
        except Exception:
            log.exception("retention purge failed; will retry")

    def server_status(self) -> list[ServerStatus]:
        statuses = []
        for collector in self.collectors:
            health = collector.health
            last = health.last_backfill_at
            statuses.append(
                ServerStatus(
                    name=collector.server.name,
                    stream_connected=collector.stream.stats.connected,
                    last_backfill_at=datetime.fromtimestamp(last, UTC) if last else None,
                    last_error=health.last_error,
                    fatal=health.fatal,
                    backfill_stalled=health.backfill_stalled,
                )
            )
        return statuses

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    async def stop(self, deadline_s: float = STOP_DEADLINE_S) -> None:
        """Stop everything within `deadline_s` in all: each step gets what is left of it, and a step
        that overruns (a database that stopped answering, a peer that trickles) is cut and logged,
        never waited for. What is cut loses nothing: the watermark only moves after a commit."""
        loop = asyncio.get_running_loop()
        ends_at = loop.time() + deadline_s

        async def step(what: str, work: Callable[[], Awaitable[object]]) -> None:
            try:
                async with asyncio.timeout(max(0.1, ends_at - loop.time())):
                    await work()
            except TimeoutError:
                log.warning(
                    "stopping: %s did not finish within the %.0f s shutdown deadline; going on", what, deadline_s
                )
            except Exception as exc:
                log.warning("stopping: %s failed (%s: %s); going on", what, type(exc).__name__, exc)

        if self.app is not None:
            app = self.app
            await step("the live feed", lambda: close_live(app))
            await step("the API's background work", lambda: close_app(app))
        if self._http is not None and self._http_task is not None:
            self._http.should_exit = True
            http_task = self._http_task
            await step("the API server", lambda: asyncio.wait([http_task]))
        for slot in self._slots:
            await step(f"the collector of {slot.server.name}", slot.deposed)
            await step(f"the leadership of {slot.server.name}", slot.resign)
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        for task in (self._evaluator, self._pusher_task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        if self._pusher is not None:
            await self._pusher.close()
        if self._alerts is not None:
            alerts = self._alerts
            await step("webhook deliveries", lambda: alerts.webhooks.close(grace_s=min(2.0, deadline_s / 3)))
        if self._bus is not None:
            await step("the bus", self._bus.close)
        if self._store is not None:
            await step("the database connections", self._store.close)


class _CollectorSlot:
    """One configured server: collected by this replica only while it holds the server's leadership."""

    def __init__(self, runtime: Runtime, server: GerritServer) -> None:
        self._runtime = runtime
        self.server = server
        self.leadership = Leadership(runtime.settings.database_url, f"collector:{server.name}")
        self.collector: ServerCollector | None = None
        self.task: asyncio.Task[None] | None = None

    async def elected(self) -> None:
        runtime = self._runtime
        collector = ServerCollector(
            self.server, runtime.store, runtime.parser, runtime.scheduler, on_written=runtime.publish_written
        )
        self.collector = collector
        await collector.start()  # starts with a backfill from the committed watermark: the gap is covered
        await runtime.catch_up_alerts(self.server.name)

    async def resign(self) -> None:
        """End the leadership loop (it releases the lock or lease on its way out)."""
        await cancel_and_wait(self.task, timeout_s=STOP_DEADLINE_S)

    async def deposed(self) -> None:
        collector, self.collector = self.collector, None
        if collector is not None:
            await collector.stop()


def api_server_config(app: Any, api: ApiConfig) -> uvicorn.Config:
    """uvicorn's settings for the API from `api`: its address and the server-side limits."""
    return uvicorn.Config(
        app,
        host=api.host,
        port=api.port,
        log_level="warning",
        access_log=False,
        lifespan="off",
        ws_max_size=api.max_body_bytes,  # a bigger websocket message closes the socket (1009)
        # past it uvicorn answers 503 before the app runs; uvicorn counts the asking connection among
        # the open ones (it refuses at >= limit), so N connections served is a limit of N + 1
        limit_concurrency=api.max_connections + 1,
    )
