"""`api.max_connections` is uvicorn's `limit_concurrency` in the API server's config: past it a
request is refused with 503 before the app runs, and a freed connection lets the next one in."""

from __future__ import annotations

import asyncio
import socket

import httpx
import uvicorn
from fastapi import FastAPI

from cidash.config import ApiConfig
from cidash.service.runtime import api_server_config
from tests.support.wait import until


def _held_app(release: asyncio.Event, entered: list[int]) -> FastAPI:
    """An app whose /hold answers only once `release` is set (a stand-in for a live stream)."""
    app = FastAPI()

    @app.get("/hold")
    async def hold() -> dict[str, bool]:
        entered.append(1)
        await release.wait()
        return {"held": True}

    @app.get("/ping")
    async def ping() -> dict[str, bool]:
        return {"ok": True}

    return app


async def test_a_connection_past_max_connections_gets_503_until_one_is_released() -> None:
    release, entered = asyncio.Event(), list[int]()
    config = api_server_config(_held_app(release, entered), ApiConfig(max_connections=2))
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    try:
        await until(lambda: server.started or task.done(), 30, "uvicorn to start")
        # one client per connection, so the two held requests are two open connections
        async with httpx.AsyncClient(base_url=base) as a, httpx.AsyncClient(base_url=base) as b:
            held = [asyncio.create_task(a.get("/hold")), asyncio.create_task(b.get("/hold"))]
            await until(lambda: len(entered) == 2, 30, "both held requests to reach the app")
            async with httpx.AsyncClient(base_url=base) as c:
                refused = await c.get("/ping")
                assert refused.status_code == 503
            release.set()
            assert [r.status_code for r in await asyncio.gather(*held)] == [200, 200]
        async with httpx.AsyncClient(base_url=base) as d:
            assert (await d.get("/ping")).json() == {"ok": True}
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)
        sock.close()
