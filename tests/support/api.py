"""The API over a store, in process: a simulated Gerrit's history stored the way the backfill does
(`load_history`), the settings that name its reference CI, an HTTP client on the ASGI app, and the
app served by uvicorn on loopback in the test's own event loop (`served`)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import uvicorn

from cidash.config import ApiConfig, CISystemConfig, Settings
from cidash.gerrit.normalize import comments_from_change
from cidash.parsing import CommentParser
from cidash.sim.rest_shapes import change_info
from cidash.sim.world import World
from cidash.store import Store
from cidash.store.rollups import rebuild_rollups
from tests.support.wait import until

REFERENCE = [CISystemConfig(account="zuul", display_name="Zuul", reference=True)]
OPTIONS = frozenset({"MESSAGES", "ALL_REVISIONS", "DETAILED_ACCOUNTS"})
SERVER = "review"
WRITE = "write-secret"


async def load_history(store: Store, *, hours: int = 4, seed: int = 3, rebuild: bool = True) -> World:
    """A simulated Gerrit's last `hours`, parsed from its REST messages and stored (the way the
    backfill does), with the rollups built (unless the store's writer keeps them, `rebuild` False)."""
    world = World(seed, start=datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1))
    world.generate_history(timedelta(hours=hours))
    await store.sync_ci_configs(REFERENCE, [SERVER])
    parser = CommentParser(REFERENCE)
    parser.set_group_members(SERVER, [ci.username for ci in world.third_party])
    items = [
        (comment, parser.parse(comment))
        for change in world.changes.values()
        for comment in comments_from_change(change_info(world, change, OPTIONS), SERVER)
    ]
    for start in range(0, len(items), 1000):
        await store.write_comments(items[start : start + 1000])
    if rebuild:
        async with store.engine.begin() as conn:
            await rebuild_rollups(conn)
    return world


def settings_for(store: Store, **api: Any) -> Settings:
    return Settings(database_url=str(store.engine.url), ci=REFERENCE, api=ApiConfig(**api))


def client_for(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://cidash.test")


@asynccontextmanager
async def served(app: Any) -> AsyncIterator[str]:
    """uvicorn serving `app` on a free loopback port in THIS event loop (where the store lives)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        await until(lambda: server.started or task.done(), 30, "uvicorn to start")
        assert not task.done(), "uvicorn died on start"
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)
        sock.close()
