"""What one application serves from, typed: settings, store, health cache, and what the service
gives it (collector status, the bus of the live feed, the incident engine). Stored once on
``app.state`` by `create_app` and read through `state_of` / `request_state`, so no route reads an
untyped attribute or defends itself with ``getattr``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from fastapi import Request
from starlette.applications import Starlette

from cidash.alerts.engine import AlertEngine
from cidash.config import Settings
from cidash.domain.views import ServerStatus
from cidash.health import HealthCache
from cidash.live.bus import Bus
from cidash.live.hub import FeedHub, LiveOptions
from cidash.store import Store


class LiveFeedUnavailableError(RuntimeError):
    """This application has no bus, so no live feed (an app built without one: tests, tools)."""


@dataclass(eq=False)
class AppState:
    settings: Settings
    store: Store
    health_cache: HealthCache
    status: Callable[[], list[ServerStatus]] | None = None  # each Gerrit server's collector (/readyz)
    bus: Bus | None = None  # the live feed's messages; None: /api/v1/ws and /events answer unavailable
    alerts: AlertEngine | None = None  # None on an API replica without the engine: default rules listed
    live_options: LiveOptions = field(default_factory=LiveOptions)
    live_hub: FeedHub | None = None  # made on the first live client

    def hub(self) -> FeedHub:
        """The application's hub, made on first use (not started: `live_slots.hub_of` starts it)."""
        if self.live_hub is None:
            if self.bus is None:
                raise LiveFeedUnavailableError("this application was built without a bus")
            self.live_hub = FeedHub(self.bus, self.store, self.live_options)
        return self.live_hub


def attach_state(app: Starlette, state: AppState) -> None:
    app.state.cidash = state


def state_of(app: Starlette) -> AppState:
    state: AppState = app.state.cidash
    return state


def request_state(request: Request) -> AppState:
    return state_of(request.app)
