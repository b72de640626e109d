"""How many live-feed clients (websocket and SSE) this process serves, against
``api.max_live_clients``; the per-transport counts are the ``cidash_websocket_clients`` gauge."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from fastapi import FastAPI

from cidash import metrics
from cidash.config import Settings
from cidash.live.hub import FeedHub, LiveOptions, Transport

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


def _max_clients(app: FastAPI) -> int | None:
    settings: Settings | None = getattr(app.state, "settings", None)
    return settings.api.max_live_clients if settings is not None else None


def slots_full(app: FastAPI) -> bool:
    limit = _max_clients(app)
    return limit is not None and live_clients() >= limit


def take_slot(app: FastAPI, transport: Transport) -> bool:
    """Count one more live client unless the process serves api.max_live_clients already (the
    check and the count happen together, with no await between: the cap cannot be overshot)."""
    if slots_full(app):
        return False
    _count(transport, 1)
    return True


def full_reason(app: FastAPI) -> str:
    return f"too many live clients (api.max_live_clients = {_max_clients(app)}); try again later"


def options_of(app: FastAPI) -> LiveOptions:
    options = getattr(app.state, "live_options", None)
    return options if isinstance(options, LiveOptions) else LiveOptions()


async def hub_of(app: FastAPI) -> FeedHub:
    """The application's hub, started on first use (needs ``app.state.bus`` and ``.store``)."""
    hub: FeedHub | None = getattr(app.state, "live_hub", None)
    if hub is None:
        hub = FeedHub(app.state.bus, app.state.store, options_of(app))
        app.state.live_hub = hub
    await hub.start()
    return hub


async def close_live(app: FastAPI) -> None:
    """Stop the hub (the live routers' lifespan does it at shutdown)."""
    hub: FeedHub | None = getattr(app.state, "live_hub", None)
    if hub is not None:
        await hub.stop()


@contextlib.asynccontextmanager
async def close_live_at_shutdown(app: FastAPI) -> AsyncIterator[None]:
    yield
    await close_live(app)
