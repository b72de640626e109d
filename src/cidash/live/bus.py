"""The message bus: how feed messages reach every process that serves live subscribers.

The feed table is the truth; the bus only makes delivery fast. A message is published after the
transaction that stored it committed, so a subscriber that misses one (a full queue, a Redis
reconnect) can always read it back from the feed: :meth:`Subscription.next` reports such a
possible loss as ``None`` and the live hub (:mod:`cidash.live.hub`) then catches up from the
database.

* :class:`LocalBus`: in-process broadcast; each subscription has a bounded queue.
* :class:`RedisBus`: Redis pub/sub on ``<prefix>:feed`` (default ``cidash:feed``), orjson payloads
  (a JSON array of messages per PUBLISH). Each process keeps one subscriber connection and fans
  out locally; lost connections are re-established with exponential backoff and jitter. A Redis
  that cannot be reached at :meth:`Bus.start` is a :class:`~cidash.errors.CidashError`; a publish
  that fails later is logged and counted, never raised (subscribers recover from the feed).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections import deque
from collections.abc import Sequence
from types import TracebackType
from typing import Any

import orjson
from pydantic import ValidationError

from cidash.domain.urls import redact_url
from cidash.domain.views import FeedMessage
from cidash.errors import CidashError
from cidash.tasks import cancel_and_wait

log = logging.getLogger(__name__)

DEFAULT_QUEUE = 10_000
PUBLISH_CHUNK = 200  # messages per PUBLISH (a run message is ~1 KB)


class Subscription:
    """Messages published after :meth:`__aenter__` returned, in publish order.

    ``async with bus.subscribe() as sub: async for message in sub: ...``. A full queue drops the
    newest messages (counted in :attr:`dropped`) and reports a gap to :meth:`next`.
    """

    __slots__ = ("_bus", "_closed", "_gap", "_items", "_ready", "dropped", "gaps", "maxsize")

    def __init__(self, bus: Bus, maxsize: int = DEFAULT_QUEUE) -> None:
        self._bus = bus
        self.maxsize = maxsize
        self._items: deque[FeedMessage] = deque()
        self._ready = asyncio.Event()
        self._closed = False
        self._gap = False
        self.dropped = 0
        self.gaps = 0

    async def __aenter__(self) -> Subscription:
        await self._bus._attach(self)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._bus._detach(self)
        self._close()

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> FeedMessage:
        while True:
            try:
                message = await self.next()
            except BusClosedError:
                raise StopAsyncIteration from None
            if message is not None:
                return message

    async def next(self) -> FeedMessage | None:
        """The next message, or None once after messages may have been lost (catch up from the
        feed). Raises :class:`BusClosedError` when the bus or the subscription was closed."""
        while True:
            if self._gap:
                self._gap = False
                return None
            if self._items:
                return self._items.popleft()
            if self._closed:
                raise BusClosedError("the subscription is closed")
            self._ready.clear()
            await self._ready.wait()

    def pending(self) -> int:
        return len(self._items)

    # -- called by the bus ---------------------------------------------------------------------
    def _offer(self, message: FeedMessage) -> None:
        if len(self._items) >= self.maxsize:
            self.dropped += 1
            if not self._gap:
                log.warning("bus subscriber queue full (%d): dropping messages", self.maxsize)
                self._flag_gap()
            return
        self._items.append(message)
        self._ready.set()

    def _flag_gap(self) -> None:
        self._gap = True
        self.gaps += 1
        self._ready.set()

    def _close(self) -> None:
        self._closed = True
        self._ready.set()


class BusClosedError(CidashError):
    """The bus (or this subscription) was closed."""


class Bus:
    """Publish feed messages to every subscriber of every process sharing the bus."""

    def __init__(self) -> None:
        self._subscriptions: set[Subscription] = set()
        self._closed = False

    async def start(self) -> None:
        """Connect (idempotent); raises CidashError when the backend cannot be reached."""

    async def publish(self, messages: Sequence[FeedMessage]) -> None:
        raise NotImplementedError

    def subscribe(self, maxsize: int = DEFAULT_QUEUE) -> Subscription:
        return Subscription(self, maxsize)

    @property
    def subscribers(self) -> int:
        return len(self._subscriptions)

    async def close(self) -> None:
        self._closed = True
        for subscription in list(self._subscriptions):
            subscription._close()
        self._subscriptions.clear()

    async def __aenter__(self) -> Bus:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    # -- subscriptions -------------------------------------------------------------------------
    async def _attach(self, subscription: Subscription) -> None:
        if self._closed:
            raise BusClosedError("the bus is closed")
        self._subscriptions.add(subscription)

    def _detach(self, subscription: Subscription) -> None:
        self._subscriptions.discard(subscription)

    def _fan_out(self, messages: Sequence[FeedMessage]) -> None:
        for subscription in list(self._subscriptions):
            for message in messages:
                subscription._offer(message)

    def _flag_gap(self) -> None:
        for subscription in list(self._subscriptions):
            subscription._flag_gap()


class LocalBus(Bus):
    """In-process broadcast (one process serves the API and runs the collector)."""

    async def publish(self, messages: Sequence[FeedMessage]) -> None:
        if self._closed:
            raise BusClosedError("the bus is closed")
        if messages:
            self._fan_out(messages)


def encode(messages: Sequence[FeedMessage]) -> bytes:
    return orjson.dumps([{"type": m.type, "id": m.id, "data": m.data} for m in messages])


def decode(payload: bytes | str) -> list[FeedMessage]:
    """Messages from a bus payload; malformed entries are logged and skipped."""
    try:
        items = orjson.loads(payload)
    except orjson.JSONDecodeError:
        log.warning("ignoring a bus payload that is not JSON (%d bytes)", len(payload))
        return []
    if not isinstance(items, list):
        items = [items]
    messages: list[FeedMessage] = []
    for item in items:
        try:
            messages.append(FeedMessage.model_validate(item))
        except ValidationError:
            log.warning("ignoring a malformed bus message")
    return messages


class RedisBus(Bus):
    """Redis pub/sub on channel ``<prefix>:feed``: every replica receives every message."""

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "cidash",
        connect_timeout_s: float = 5.0,
        max_backoff_s: float = 10.0,
        health_check_interval_s: int = 15,
    ) -> None:
        super().__init__()
        self.url = url
        self.channel = f"{prefix}:feed"
        self.client_name = f"cidash-bus:{prefix}"  # CLIENT LIST shows which connections are ours
        self._connect_timeout = connect_timeout_s
        self._max_backoff = max_backoff_s
        self._health_check = health_check_interval_s
        self._client: Any = None
        self._start_lock = asyncio.Lock()
        self._listener: asyncio.Task[None] | None = None
        self._listening = asyncio.Event()
        self.publish_failures = 0
        self.reconnects = 0

    async def start(self) -> None:
        async with self._start_lock:
            if self._closed:
                raise BusClosedError("the bus is closed")
            if self._client is not None:
                return
            import redis.asyncio as aioredis
            from redis.exceptions import RedisError

            client: Any = None
            try:
                client = aioredis.Redis.from_url(
                    self.url,
                    socket_connect_timeout=self._connect_timeout,
                    socket_timeout=self._connect_timeout,
                    socket_keepalive=True,
                    health_check_interval=self._health_check,
                    client_name=self.client_name,
                )
                await client.ping()
            except (RedisError, OSError, ValueError) as exc:  # ValueError: a port out of range
                if client is not None:
                    await client.aclose()
                raise CidashError(
                    f"Redis at {redact_url(self.url)} is unreachable ({type(exc).__name__}: {exc}); "
                    "start it or fix redis_url"
                ) from None
            self._client = client

    async def publish(self, messages: Sequence[FeedMessage]) -> None:
        if self._closed:
            raise BusClosedError("the bus is closed")
        if not messages:
            return
        await self.start()
        from redis.exceptions import RedisError

        try:
            async with self._client.pipeline(transaction=False) as pipe:
                for start in range(0, len(messages), PUBLISH_CHUNK):
                    pipe.publish(self.channel, encode(messages[start : start + PUBLISH_CHUNK]))
                await pipe.execute()
        except (RedisError, OSError) as exc:
            self.publish_failures += 1
            log.warning(
                "could not publish %d feed messages to Redis (%s); subscribers will catch up from the database",
                len(messages),
                type(exc).__name__,
            )

    async def _attach(self, subscription: Subscription) -> None:
        await self.start()
        await super()._attach(subscription)
        if self._listener is None:
            self._listener = asyncio.create_task(self._listen(), name=f"redis-bus {self.channel}")
        if not self._listening.is_set():
            # wait for SUBSCRIBE to be confirmed: messages published after this returns reach us
            try:
                async with asyncio.timeout(self._connect_timeout):
                    await self._listening.wait()
            except TimeoutError:
                log.warning("Redis subscription to %s not confirmed yet; continuing", self.channel)

    async def _listen(self) -> None:
        from redis.exceptions import RedisError

        backoff = 0.1
        first = True
        while not self._closed:
            pubsub = self._client.pubsub()
            try:
                await pubsub.subscribe(self.channel)
                while True:
                    message = await pubsub.get_message(timeout=1.0)
                    if message is None:
                        continue
                    kind = message.get("type")
                    if kind == "subscribe":
                        backoff = 0.1
                        if not first:
                            self.reconnects += 1
                            log.info("Redis subscription to %s re-established", self.channel)
                            self._flag_gap()
                        first = False
                        self._listening.set()
                    elif kind == "message":
                        self._fan_out(decode(message["data"]))
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError) as exc:
                self._listening.clear()
                if self._closed:
                    return
                delay = backoff * random.uniform(0.5, 1.0)
                log.warning(
                    "Redis subscription to %s lost (%s: %s); retrying in %.1f s",
                    self.channel,
                    type(exc).__name__,
                    exc,
                    delay,
                )
                self._flag_gap()
                await asyncio.sleep(delay)
                backoff = min(self._max_backoff, backoff * 2)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()

    async def close(self) -> None:
        await super().close()
        listener, self._listener = self._listener, None
        await cancel_and_wait(listener)
        client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(Exception):
                await client.aclose()


def make_bus(redis_url: str | None, prefix: str = "cidash") -> Bus:
    """A RedisBus when `redis_url` is set (several replicas), else a LocalBus. Call
    ``await bus.start()`` at start-up to fail fast on an unreachable Redis. Replicas that serve
    the same database share one `prefix`; another prefix keeps deployments on one Redis apart."""
    if redis_url:
        return RedisBus(redis_url, prefix=prefix)
    return LocalBus()
