"""Assemble a running collector from settings: store, parser, scheduler, one ServerCollector per server."""

from __future__ import annotations

import logging
from types import TracebackType

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from cidash.collector.service import ServerCollector
from cidash.config import Settings
from cidash.parsing import CommentParser
from cidash.store.migrate import upgrade
from cidash.store.writer import Store

log = logging.getLogger(__name__)


class Runtime:
    """`async with Runtime(settings) as runtime:` collects until the block exits."""

    def __init__(self, settings: Settings, *, migrate: bool = True, collect: bool = True) -> None:
        self.settings = settings
        self._migrate = migrate
        self._collect = collect
        self.store: Store | None = None
        self.parser = CommentParser(settings.ci, auto_detect=settings.auto_detect_ci)
        self.scheduler = AsyncIOScheduler(timezone="UTC")
        self.collectors: list[ServerCollector] = []

    async def __aenter__(self) -> Runtime:
        if self._migrate:
            await upgrade(self.settings.database_url)
        self.store = await Store.open(self.settings.database_url)
        await self.store.sync_ci_configs(self.settings.ci, [server.name for server in self.settings.servers])
        if self._collect:
            self.scheduler.start()
            for server in self.settings.servers:
                collector = ServerCollector(server, self.store, self.parser, self.scheduler)
                self.collectors.append(collector)
                await collector.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        for collector in self.collectors:
            await collector.stop()
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        if self.store is not None:
            await self.store.close()
