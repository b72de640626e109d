"""The health service's cache: run-level metrics, followed projects and the project list,
each a :class:`TTLCache` typed by what it holds. The API keeps one :class:`HealthCache` (on its
app state) and hands it to :func:`cidash.health.assess`; nothing else keeps health state.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar

from cidash.domain.health import RunMetrics
from cidash.domain.views import Window

log = logging.getLogger(__name__)

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


@dataclass(slots=True)
class TTLCache(Generic[K, V]):
    """A small time-bounded memo for expensive, slowly changing results (run-level metrics).

    A value is fresh for `ttl_s`. For `stale_s` more, :meth:`get_or_compute` still returns it at
    once and recomputes it in the background (one refresh per key at a time), so a busy
    dashboard never waits for the expensive statement; older values are recomputed inline.
    """

    ttl_s: float
    stale_s: float = 0.0
    max_entries: int = 256
    clock: Callable[[], float] = time.monotonic
    entries: dict[K, tuple[float, V]] = field(default_factory=dict)
    refreshing: dict[K, asyncio.Task[None]] = field(default_factory=dict)

    def get(self, key: K) -> V | None:
        """The value when fresh, else None."""
        if self.ttl_s <= 0:
            return None
        entry = self.entries.get(key)
        if entry is None or self.clock() - entry[0] > self.ttl_s:
            return None
        return entry[1]

    def put(self, key: K, value: V) -> None:
        if self.ttl_s <= 0:
            return
        if len(self.entries) >= self.max_entries:
            self.entries.clear()
        self.entries[key] = (self.clock(), value)

    async def get_or_compute(self, key: K, compute: Callable[[], Awaitable[V]]) -> V:
        entry = self.entries.get(key) if self.ttl_s > 0 else None
        if entry is not None:
            age = self.clock() - entry[0]
            if age <= self.ttl_s:
                return entry[1]
            if age <= self.ttl_s + self.stale_s:
                if key not in self.refreshing:
                    self.refreshing[key] = asyncio.create_task(self._refresh(key, compute))
                return entry[1]
        value = await compute()
        self.put(key, value)
        return value

    def peek_or_start(self, key: K, compute: Callable[[], Awaitable[V]], refresh_after_s: float) -> V | None:
        """The cached value however old, else None; never waits. A refresh starts in the background
        when there is no value or it is older than `refresh_after_s` (one per key at a time)."""
        entry = self.entries.get(key) if self.ttl_s > 0 else None
        if (entry is None or self.clock() - entry[0] > refresh_after_s) and key not in self.refreshing:
            self.refreshing[key] = asyncio.create_task(self._refresh(key, compute))
        return entry[1] if entry is not None else None

    async def _refresh(self, key: K, compute: Callable[[], Awaitable[V]]) -> None:
        try:
            self.put(key, await compute())
        except Exception:
            log.exception("background refresh of %r failed", key)
        finally:
            self.refreshing.pop(key, None)

    def clear(self) -> None:
        self.entries.clear()

    async def close(self) -> None:
        """Cancel background refreshes (application shutdown)."""
        tasks = list(self.refreshing.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self.refreshing.clear()


MetricsKey = tuple[Window, str | None, bool, tuple[int, ...], datetime | None]
"""(window, project, only its followed projects, CI ids, pinned clock) of a run-level metrics value."""
FollowedKey = tuple[tuple[tuple[int, tuple[str, ...]], ...], tuple[int, ...] | None, datetime | None]
"""(configured projects by CI, the CI ids when one is asked, pinned clock) of a followed-projects value."""


class HealthCache:
    """What the health service reuses between requests, one typed cache per kind of value."""

    def __init__(self, ttl_s: float, stale_s: float = 0.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.metrics: TTLCache[MetricsKey, dict[int, RunMetrics]] = TTLCache(ttl_s, stale_s, clock=clock)
        self.followed: TTLCache[FollowedKey, dict[int, list[str]]] = TTLCache(ttl_s, stale_s, clock=clock)
        self.projects: TTLCache[str, list[str]] = TTLCache(ttl_s, stale_s, clock=clock)

    def _parts(self) -> tuple[TTLCache[MetricsKey, Any], TTLCache[FollowedKey, Any], TTLCache[str, Any]]:
        return self.metrics, self.followed, self.projects

    @property
    def stale_s(self) -> float:
        return self.metrics.stale_s

    @stale_s.setter
    def stale_s(self, value: float) -> None:
        for part in self._parts():
            part.stale_s = value

    def clear(self) -> None:
        """Forget every value (after an edit or a re-parse changed what they were computed from)."""
        for part in self._parts():
            part.clear()

    async def close(self) -> None:
        """Cancel background refreshes (application shutdown)."""
        for part in self._parts():
            await part.close()
