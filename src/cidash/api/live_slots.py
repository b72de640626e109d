"""How many live-feed clients (websocket and SSE) this process serves, against
``api.max_live_clients``; the per-transport counts are the ``cidash_websocket_clients`` gauge."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from fastapi import FastAPI

from cidash import metrics
from cidash.api.state import state_of
from cidash.live.hub import FeedHub, Transport

CLOSE_TRY_AGAIN = 1013  # the websocket close code (and the SSE close event's) of a client beyond the cap

_counts: dict[Transport, int] = {"websocket": 0, "sse": 0}


def live_clients() -> int:
    """Live-feed subscribers connected to this process (websocket and SSE)."""
    return _counts["websocket"] + _counts["sse"]


def release_slot(transport: Transport) -> None:
    _count(transport, -1)


def _count(transport: Transport, delta: int) -> None:
    _counts[transport] += delta
    metrics.WEBSOCKET_CLIENTS.labels(transport=transport).set(_counts[transport])


def _max_clients(app: FastAPI) -> int:
    return state_of(app).settings.api.max_live_clients


def slots_full(app: FastAPI) -> bool:
    return live_clients() >= _max_clients(app)


def take_slot(app: FastAPI, transport: Transport) -> bool:
    """Count one more live client unless the process serves api.max_live_clients already (the
    check and the count happen together, with no await between: the cap cannot be overshot)."""
    if slots_full(app):
        return False
    _count(transport, 1)
    return True


def full_reason(app: FastAPI) -> str:
    return f"too many live clients (api.max_live_clients = {_max_clients(app)}); try again later"


async def hub_of(app: FastAPI) -> FeedHub:
    """The application's hub, started on first use (LiveFeedUnavailableError without a bus)."""
    hub = state_of(app).hub()
    await hub.start()
    return hub


async def close_live(app: FastAPI) -> None:
    """Stop the hub (the live routers' lifespan does it at shutdown)."""
    hub = state_of(app).live_hub
    if hub is not None:
        await hub.stop()


@contextlib.asynccontextmanager
async def close_live_at_shutdown(app: FastAPI) -> AsyncIterator[None]:
    yield
    await close_live(app)
