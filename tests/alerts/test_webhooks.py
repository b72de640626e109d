"""cidash.alerts.webhooks against real receivers on loopback: a receiver trickling bytes cannot hold up a
healthy one, every attempt ends at its deadline, a lane's backlog is bounded (and says what it
dropped), and a signed delivery cannot be replayed."""

from __future__ import annotations

import asyncio
import json
import time

from cidash import metrics
from cidash.alerts.webhooks import Payload, WebhookSender, verify
from cidash.config import Settings, WebhookConfig
from tests.support.loopback_http import Request, answer, loopback_server, trickle


async def healthy(request: Request, writer: asyncio.StreamWriter) -> None:
    await answer(writer, 200)


async def trickling(request: Request, writer: asyncio.StreamWriter) -> None:
    """Never finishes its status line: one byte every 0.2 s (each read succeeds, so a per-read
    timeout never fires)."""
    await trickle(writer, b"HTTP/1.1 200 OK\r\n" * 1000, 0.2)


def hook(url: str, secret: str | None = None) -> WebhookConfig:
    return WebhookConfig.model_validate({"url": url, "secret": secret})


def payload(n: int) -> Payload:
    return Payload(n, json.dumps({"n": n}).encode(), {"X-Test-N": str(n)})


def dropped() -> float:
    return metrics.REGISTRY.get_sample_value("cidash_webhook_deliveries_total", {"outcome": "dropped"}) or 0.0


async def test_a_trickling_receiver_does_not_hold_up_a_healthy_one() -> None:
    sender = WebhookSender(
        None, attempts=2, backoff_s=0.01, max_backoff_s=0.01, deadline_s=5, concurrency=2, backlog=20
    )
    async with loopback_server(healthy) as good, loopback_server(trickling) as slow:
        hooks = [hook(slow.url + "/slow"), hook(good.url + "/good")]
        before = dropped()
        started = time.monotonic()
        slow_outcomes = []
        for burst in range(15):  # alerts keep coming, ten at a time
            outcomes = [sender.submit(payload(burst * 10 + n), hooks) for n in range(10)]
            slow_outcomes += [pair[0] for pair in outcomes]
            async with asyncio.timeout(5):
                assert all(await asyncio.gather(*(pair[1] for pair in outcomes)))
        healthy_s = time.monotonic() - started
        # all 150 reached the healthy receiver, in less time than one attempt at the slow one
        assert sorted(int(r.headers["x-test-n"]) for r in good.requests) == list(range(150))
        assert healthy_s < 5
        # the slow lane holds at most its backlog plus its workers; the rest was dropped and counted
        assert sender.in_flight <= 20 + 2
        assert sum(f.done() and not f.result() for f in slow_outcomes) >= 150 - 20 - 2
        assert dropped() - before >= 150 - 20 - 2
        await sender.close(grace_s=0)
    assert all(f.done() and not f.result() for f in slow_outcomes)  # at shutdown too, nothing is left hanging
    assert sender.in_flight == 0


async def test_each_attempt_ends_at_its_deadline_whatever_the_receiver_does() -> None:
    sender = WebhookSender(None, attempts=3, backoff_s=0.01, max_backoff_s=0.01, deadline_s=0.4)
    async with loopback_server(trickling) as slow:
        started = time.monotonic()
        (outcome,) = sender.submit(payload(1), [hook(slow.url)])
        async with asyncio.timeout(10):
            assert await outcome is False
        elapsed = time.monotonic() - started
        assert len(slow.requests) == 3  # three attempts, each cut at 0.4 s
        assert 3 * 0.4 <= elapsed < 3 * 0.4 + 2
        await sender.close()


async def test_the_signature_covers_a_timestamp_so_a_delivery_cannot_be_replayed() -> None:
    sender = WebhookSender(None, clock=lambda: 1_000_000.0)
    async with loopback_server(healthy) as receiver:
        (outcome,) = sender.submit(payload(7), [hook(receiver.url, "s3cret")])
        assert await outcome
        await sender.close()
    (request,) = receiver.requests
    signature, sent_at = request.headers["x-cidash-signature"], request.headers["x-cidash-timestamp"]
    assert sent_at == "1000000"
    assert verify("s3cret", request.body, signature, sent_at, now=1_000_000 + 60)
    assert not verify("s3cret", request.body, signature, sent_at, now=1_000_000 + 301)  # replayed later
    assert not verify("s3cret", request.body, signature, "1000001", now=1_000_000)  # timestamp changed
    assert not verify("s3cret", request.body + b" ", signature, sent_at, now=1_000_000)
    assert not verify("s3cret", request.body, signature, None, now=1_000_000)


def test_delivery_limits_are_settings() -> None:
    settings = Settings(webhook_delivery={"deadline_s": 3, "backlog": 50, "concurrency": 2})  # type: ignore[arg-type]
    sender = WebhookSender.from_config(None, settings.webhook_delivery)
    assert (sender.deadline_s, sender.backlog, sender.concurrency, sender.attempts) == (3, 50, 2, 5)
