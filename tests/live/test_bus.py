"""cidash.live.bus: LocalBus and RedisBus fan-out, replicas, overflow and reconnects.

RedisBus tests use the Redis at 127.0.0.1:6379 (``CIDASH_TEST_REDIS_URL``) for real, with a
channel prefix of their own; when Redis is down they FAIL (start it: ``redis-server --daemonize yes``).
"""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
import redis.asyncio as aioredis

from cidash.domain.views import FeedMessage
from cidash.errors import CidashError
from cidash.live.bus import Bus, BusClosedError, LocalBus, RedisBus, Subscription, decode, encode, make_bus
from tests.support.wait import until

REDIS_URL = os.environ.get("CIDASH_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def msg(number: int, kind: str = "run") -> FeedMessage:
    return FeedMessage(type=kind, id=number, data={"id": number, "ci": "acme-ci", "note": 'ü\n"quoted"'})  # type: ignore[arg-type]


async def take(subscription: Subscription, count: int, limit_s: float = 5.0) -> list[FeedMessage]:
    found: list[FeedMessage] = []
    async with asyncio.timeout(limit_s):
        while len(found) < count:
            message = await subscription.next()
            if message is not None:
                found.append(message)
    return found


@pytest_asyncio.fixture
async def redis_prefix() -> AsyncIterator[str]:
    client = aioredis.Redis.from_url(REDIS_URL)
    try:
        await client.ping()
    except Exception as exc:
        pytest.fail(
            f"Redis is not reachable at {REDIS_URL} ({exc!r}); start it (redis-server --daemonize yes)", pytrace=False
        )
    finally:
        await client.aclose()
    yield f"test-{secrets.token_hex(6)}"


async def test_local_bus_fans_out_to_every_subscriber_in_order() -> None:
    bus = make_bus(None)
    assert isinstance(bus, LocalBus)
    async with bus:
        async with bus.subscribe() as one, bus.subscribe() as two:
            assert bus.subscribers == 2
            await bus.publish([msg(1), msg(2)])
            await bus.publish([msg(3, "alert")])
            assert [m.id for m in await take(one, 3)] == [1, 2, 3]
            assert [m.id for m in await take(two, 3)] == [1, 2, 3]
        assert bus.subscribers == 0
        await bus.publish([msg(4)])  # nobody listens: fine
        late = bus.subscribe()
        async with late:
            await bus.publish([msg(5)])
            assert [m.id for m in await take(late, 1)] == [5]  # only what was published after subscribing


async def test_a_full_queue_drops_and_reports_a_gap() -> None:
    async with LocalBus() as bus, bus.subscribe(maxsize=3) as sub:
        await bus.publish([msg(n) for n in range(1, 6)])
        assert sub.dropped == 2
        assert await sub.next() is None  # possible loss: catch up from the feed
        assert [m.id for m in await take(sub, 3)] == [1, 2, 3]
        await bus.publish([msg(6)])
        assert [m.id for m in await take(sub, 1)] == [6]


async def test_closing_the_bus_ends_subscriptions() -> None:
    bus = LocalBus()
    async with bus.subscribe() as sub:
        reader = asyncio.create_task(take(sub, 1))
        await asyncio.sleep(0.01)  # the reader is waiting when the bus closes
        await bus.close()
        with pytest.raises(BusClosedError):
            await reader
        with pytest.raises(BusClosedError):
            await bus.publish([msg(1)])
    collected = [m async for m in sub]  # iteration simply ends
    assert collected == []


def test_payload_codec_round_trip_and_garbage() -> None:
    messages = [msg(1), msg(2, "state")]
    assert decode(encode(messages)) == messages
    assert decode(b"not json") == []
    assert [m.id for m in decode(b'[{"type":"run","id":7,"data":{}}, {"type":"bogus","id":8,"data":{}}]')] == [7]


async def test_redis_bus_replicas_all_receive(redis_prefix: str) -> None:
    publisher = RedisBus(REDIS_URL, prefix=redis_prefix)
    replica_a = RedisBus(REDIS_URL, prefix=redis_prefix)
    replica_b = RedisBus(REDIS_URL, prefix=redis_prefix)
    other = RedisBus(REDIS_URL, prefix=redis_prefix + "-other")
    buses: list[Bus] = [publisher, replica_a, replica_b, other]
    try:
        for bus in buses:
            await bus.start()
        async with (
            replica_a.subscribe() as a1,
            replica_a.subscribe() as a2,
            replica_b.subscribe() as b1,
            other.subscribe() as elsewhere,
        ):
            batch = [msg(n) for n in range(1, 451)]  # more than one PUBLISH chunk
            await publisher.publish(batch)
            await publisher.publish([msg(451, "alert")])
            for sub in (a1, a2, b1):
                received = await take(sub, 451)
                assert [m.id for m in received] == list(range(1, 452))
                assert received[0] == batch[0]  # the data survives the trip
            assert elsewhere.pending() == 0  # another prefix is another channel
            await asyncio.sleep(0.1)  # the point: room for a stray delivery, which must not come
            assert elsewhere.pending() == 0
        assert publisher.publish_failures == 0
    finally:
        for bus in buses:
            await bus.close()


async def test_redis_bus_reconnects_after_losing_its_connection(redis_prefix: str) -> None:
    bus = RedisBus(REDIS_URL, prefix=redis_prefix, max_backoff_s=0.2)
    publisher = RedisBus(REDIS_URL, prefix=redis_prefix)
    admin = aioredis.Redis.from_url(REDIS_URL)
    try:
        await publisher.start()
        async with bus.subscribe() as sub:
            await publisher.publish([msg(1)])
            assert [m.id for m in await take(sub, 1)] == [1]
            clients = await admin.client_list()
            ours = [c for c in clients if c.get("name") == bus.client_name and "subscribe" in c.get("cmd", "")]
            assert ours, "the subscriber connection is not in CLIENT LIST"
            for client in ours:
                await admin.client_kill_filter(_id=client["id"])
            async with asyncio.timeout(10):
                assert await sub.next() is None  # the loss is reported
            await until(lambda: bus.reconnects > 0, 10, "the subscription to be re-established")
            # re-subscribed: later messages arrive again
            async with asyncio.timeout(10):
                while True:
                    await publisher.publish([msg(2)])
                    try:
                        async with asyncio.timeout(0.3):
                            got = await take(sub, 1)
                        break
                    except TimeoutError:
                        continue
            assert got[0].id == 2
    finally:
        await bus.close()
        await publisher.close()
        await admin.aclose()


async def test_unreachable_redis_is_a_clear_error() -> None:
    bus = RedisBus("redis://:topsecret@127.0.0.1:1/0", connect_timeout_s=1)
    with pytest.raises(CidashError) as caught:
        await bus.start()
    text = str(caught.value)
    assert "127.0.0.1:1" in text and "unreachable" in text and "topsecret" not in text
    with pytest.raises(CidashError):
        await bus.publish([msg(1)])  # publishing starts it, and fails the same way
    await bus.close()
