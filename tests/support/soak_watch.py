"""A websocket subscriber to the alert feed that survives replica kills and database restarts:
after every disconnect it reconnects (to the next live replica) with ``since=<last id>``, and it
records every alert it is sent, so that gaps and duplicates can be counted afterwards.

PYTEST_DONT_REWRITE
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections import Counter
from collections.abc import Sequence

import orjson
import websockets
from websockets.asyncio.client import ClientConnection, connect

from tests.support.soak_replicas import Replica

RETRY_S = 0.3


class AlertWatcher:
    def __init__(self, replicas: Sequence[Replica]) -> None:
        self._replicas = replicas
        self._turn = itertools.cycle(range(len(replicas)))
        self._ws: ClientConnection | None = None
        self._task: asyncio.Task[None] | None = None
        self.last = 0  # the feed id to resume after
        self.alerts: list[tuple[int, int]] = []  # (feed id, alert id) in arrival order
        self.connections = 0

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="alert-watcher")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def bounce(self) -> None:
        """Drop the connection now (it reconnects, elsewhere, with `since`)."""
        if self._ws is not None:
            with contextlib.suppress(Exception):
                await self._ws.close()

    def duplicates(self) -> int:
        return sum(count - 1 for count in Counter(self.alerts).values())

    def _next(self) -> Replica | None:
        for _ in self._replicas:
            replica = self._replicas[next(self._turn)]
            if replica.running:
                return replica
        return None

    async def _run(self) -> None:
        while True:
            replica = self._next()
            if replica is not None:
                with contextlib.suppress(OSError, TimeoutError, websockets.WebSocketException):
                    await self._listen(f"{replica.ws_url}?kinds=alert&since={self.last}")
            await asyncio.sleep(RETRY_S)

    async def _listen(self, url: str) -> None:
        async with connect(url, open_timeout=5, max_size=None, compression=None) as ws:
            self._ws = ws
            self.connections += 1
            try:
                async for raw in ws:
                    await self._handle(ws, orjson.loads(raw))
            finally:
                self._ws = None

    async def _handle(self, ws: ClientConnection, message: dict[str, object]) -> None:
        kind = message.get("type")
        if kind == "ping":  # the server closes subscribers it has not heard from
            await ws.send('{"type":"pong"}')
        elif kind == "alert":
            feed_id, data = message["id"], message["data"]
            assert isinstance(feed_id, int) and isinstance(data, dict)
            self.alerts.append((feed_id, int(data["id"])))
            self.last = max(self.last, feed_id)
