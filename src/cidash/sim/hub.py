"""Fan-out of simulated events to `gerrit stream-events` sessions, with Gerrit's semantics.

Mirrors `StreamEvents.java`: each session has a bounded queue of MAX_EVENTS (128) events; when it
is full the event is lost for that session only and a flag is set, and the next thing the session
writes is `{"type":"dropped-output","eventCreatedOn":<now>}`. Writers drain at most BATCH_SIZE (32)
events per write. Nothing is kept for sessions that connect later: an event published while nobody
listens is gone (that is why collectors backfill over REST).

Each event is serialised once (`StreamEvent.to_line`) and the same bytes are offered to every
subscriber whose `-s` filter admits its type. In backpressure mode (`--rate max`) `publish` waits
for room instead of dropping, so the stream's throughput can be measured.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Sequence

import orjson

from cidash.gerrit.events import MAX_LINE_BYTES, StreamEvent, dropped_output
from cidash.sim.faults import Faults

MAX_EVENTS = 128  # StreamEvents.MAX_EVENTS
BATCH_SIZE = 32  # StreamEvents.BATCH_SIZE
OVERSIZED_LINE_BYTES = 2 * MAX_LINE_BYTES  # 2 MiB: over any sane client's line limit
_YIELD_EVERY = 64  # backpressure mode: let writers run at least this often

# Non-JSON lines a proxy, a buggy plugin or a half-written buffer could put on the wire.
GARBAGE_LINES = (
    b"<html><body><h1>502 Bad Gateway</h1></body></html>\n",
    b'{"type":"comment-added",,"eventCreatedOn":}\n',
    b"\xff\xfe\x00garbage \x01\x02 not json\n",
    b"fatal: internal server error\n",
    b"]}{\n",
)
_oversized: bytes | None = None
# Gson's HTML-safe escapes, applied to orjson's UTF-8 output (see `event_line`).
_GSON_ESCAPES = (
    (b"'", b"\\u0027"),
    (b"<", b"\\u003c"),
    (b">", b"\\u003e"),
    (b"&", b"\\u0026"),
    (b"=", b"\\u003d"),
    ("\u2028".encode(), b"\\u2028"),
    ("\u2029".encode(), b"\\u2029"),
)
_HTML_CHARS = b"'<>&="


def event_line(event: StreamEvent) -> bytes:
    """`event.to_line()`, byte for byte, about eight times faster.

    orjson writes the same compact, raw-UTF-8 JSON as `json.dumps(ensure_ascii=False)` for
    everything an event holds (str, int, bool, list, dict); the few things it refuses (lone
    surrogates, integers over 64 bits, non-str keys) fall back to `to_line`.
    """
    try:
        data = orjson.dumps(event.raw, option=orjson.OPT_APPEND_NEWLINE)
    except TypeError:
        return event.to_line()
    if len(data.translate(None, _HTML_CHARS)) != len(data) or b"\xe2\x80" in data:
        for raw, escaped in _GSON_ESCAPES:
            if raw in data:
                data = data.replace(raw, escaped)
    return data


class _Injected(bytes):
    """An event line with injected broken lines before it, and their fault kinds: when it never
    reaches a session (full queue, closed connection), the loss is counted as `<kind>_lost`."""

    kinds: tuple[str, ...] = ()


def _count_lost(faults: Faults | None, item: bytes) -> None:
    if faults is not None and isinstance(item, _Injected):
        for kind in item.kinds:
            faults.count(f"{kind}_lost")


def oversized_line() -> bytes:
    """A syntactically valid event line of 2 MiB (built once)."""
    global _oversized
    if _oversized is None:
        head = b'{"author":{"name":"Flood"},"comment":"'
        tail = b'","type":"comment-added","eventCreatedOn":0}\n'
        _oversized = head + b"x" * (OVERSIZED_LINE_BYTES - len(head) - len(tail)) + tail
    return _oversized


class Subscription:
    """One `stream-events` session's view of the hub: a bounded queue plus the dropped flag."""

    __slots__ = (
        "_closed",
        "_dropped",
        "_hub",
        "_inflight",
        "_queue",
        "_ready",
        "_space",
        "delivered",
        "lost",
        "types",
    )

    def __init__(self, hub: EventHub, types: frozenset[str] | None) -> None:
        self._hub = hub
        self.types = types  # None: every type (no -s)
        self._queue: deque[bytes] = deque()
        self._dropped = False
        self._closed = False
        self._inflight = False
        self._ready = asyncio.Event()
        self._space = asyncio.Event()
        self._space.set()
        self.delivered = 0  # events handed to the writer
        self.lost = 0  # events dropped because the queue was full (or a dropped-output fault)

    def admits(self, event_type: str) -> bool:
        return self.types is None or event_type in self.types

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def queued(self) -> int:
        return len(self._queue)

    @property
    def idle(self) -> bool:
        """Nothing queued, no pending dropped-output and the last batch was fully written."""
        return self._closed or (not self._queue and not self._dropped and not self._inflight)

    # -- hub side ---------------------------------------------------------------------------
    def _offer(self, item: bytes, limit: int) -> bool:
        if self._closed:
            return False
        queue = self._queue
        if len(queue) >= limit:
            self._drop()
            return False
        queue.append(item)
        if len(queue) >= limit:
            self._space.clear()
        self._ready.set()
        return True

    def _drop(self) -> None:
        self._dropped = True
        self.lost += 1
        self._ready.set()

    def _close(self) -> None:
        self._closed = True
        for item in self._queue:
            _count_lost(self._hub.faults, item)
        self._queue.clear()
        self._ready.set()
        self._space.set()

    async def _wait_space(self, limit: int) -> None:
        while len(self._queue) >= limit and not self._closed:
            self._space.clear()
            await self._space.wait()

    # -- writer side ------------------------------------------------------------------------
    async def next_batch(self, limit: int = BATCH_SIZE) -> list[bytes]:
        """Up to `limit` queued events (each item is one or more complete lines).

        Waits while there is nothing to write; prefixes `dropped-output` when events were lost
        since the last batch. Returns an empty list once the subscription is closed. Calling it
        again tells the hub the previous batch has been written (for `idle`/`wait_drained`).
        """
        self._inflight = False
        queue = self._queue
        if not queue and not self._dropped:
            self._hub._idle_changed.set()
        while not queue and not self._dropped:
            if self._closed:
                return []
            self._ready.clear()
            await self._ready.wait()
        if self._closed:
            return []
        batch: list[bytes] = []
        if self._dropped:
            self._dropped = False
            batch.append(dropped_output(int(self._hub.clock())).to_line())
        count = min(limit, len(queue))
        popleft = queue.popleft
        for _ in range(count):
            batch.append(popleft())
        self.delivered += count
        self._space.set()
        self._inflight = True
        return batch


class EventHub:
    """Publish/subscribe with Gerrit's per-connection queue, batching and loss semantics."""

    def __init__(
        self,
        faults: Faults | None = None,
        *,
        backpressure: bool = False,
        max_events: int = MAX_EVENTS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.faults = faults
        self.backpressure = backpressure
        self.max_events = max_events
        self.clock = clock
        self._subs: list[Subscription] = []
        self.published = 0  # events passed to publish()
        self.dropped = 0  # (event, subscriber) pairs lost to a full queue or a dropped-output fault
        self.unheard = 0  # events no subscriber wanted (nobody connected, or filtered out everywhere)
        self._since_yield = 0
        self._idle_changed = asyncio.Event()
        self._subscribed = asyncio.Event()

    # -- subscriptions ----------------------------------------------------------------------
    def subscribe(self, types: frozenset[str] | None = None) -> Subscription:
        sub = Subscription(self, frozenset(types) if types else None)
        self._subs.append(sub)
        self._subscribed.set()
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        sub._close()
        self._idle_changed.set()
        try:
            self._subs.remove(sub)
        except ValueError:
            pass

    async def wait_for_subscribers(self, count: int = 1) -> None:
        """Until at least `count` sessions are subscribed (`--rate max` benchmarks start here)."""
        while len(self._subs) < count:
            self._subscribed.clear()
            await self._subscribed.wait()

    @property
    def subscriber_count(self) -> int:
        return len(self._subs)

    @property
    def subscriptions(self) -> Sequence[Subscription]:
        return tuple(self._subs)

    def close(self) -> None:
        """Close every subscription (server shutdown)."""
        for sub in list(self._subs):
            self.unsubscribe(sub)

    # -- publishing -------------------------------------------------------------------------
    async def publish(self, events: list[StreamEvent]) -> None:
        subs = self._subs
        limit = self.max_events
        faults = self.faults
        for event in events:
            self.published += 1
            if not subs:
                self.unheard += 1
                continue
            event_type = event.type
            recipients = [sub for sub in subs if sub.types is None or event_type in sub.types]
            if not recipients:
                self.unheard += 1
                continue
            if faults is not None and faults.pending_drops > 0:
                faults.pending_drops -= 1
                faults.count("dropped_output")
                for sub in recipients:
                    sub._drop()
                self.dropped += len(recipients)
                continue
            item = event_line(event)  # serialised once, the same bytes for every subscriber
            if faults is not None:
                item = self._inject(faults, item, len(recipients))
            if self.backpressure:
                for sub in recipients:
                    if len(sub._queue) >= limit:
                        await sub._wait_space(limit)
                    sub._offer(item, limit)
                self._since_yield += 1
                if self._since_yield >= _YIELD_EVERY:
                    self._since_yield = 0
                    await asyncio.sleep(0)
            else:
                for sub in recipients:
                    if not sub._offer(item, limit) and not sub._closed:
                        self.dropped += 1
                        _count_lost(faults, item)

    @staticmethod
    def _inject(faults: Faults, line: bytes, copies: int = 1) -> bytes:
        """Extra broken lines before the real one, with the configured probabilities; counted
        once per session that is sent them (`copies`)."""
        if not (faults.malformed_rate or faults.truncated_rate or faults.oversized_rate):
            return line
        rng = faults.rng
        extra = b""
        kinds: list[str] = []
        if faults.malformed_due():
            extra += GARBAGE_LINES[rng.randrange(len(GARBAGE_LINES))]
            kinds.append("malformed")
        if faults.truncated_rate and rng.random() < faults.truncated_rate:
            extra += line[: len(line) // 2] + b"\n"
            kinds.append("truncated")
        if faults.oversized_rate and rng.random() < faults.oversized_rate:
            extra += oversized_line()
            kinds.append("oversized")
        if not kinds:
            return line
        for kind in kinds:
            faults.count(kind, copies)
        injected = _Injected(extra + line)
        injected.kinds = tuple(kinds)
        return injected

    # -- draining ---------------------------------------------------------------------------
    @property
    def idle(self) -> bool:
        return all(sub.idle for sub in self._subs)

    async def wait_drained(self) -> None:
        """Until every subscriber has written everything queued for it."""
        while not self.idle:
            self._idle_changed.clear()
            await self._idle_changed.wait()

    def stats(self) -> dict[str, int]:
        return {
            "published": self.published,
            "dropped": self.dropped,
            "unheard": self.unheard,
            "subscribers": self.subscriber_count,
            "queued": sum(sub.queued for sub in self._subs),
        }
