"""Webhook delivery: signed JSON POSTs, one lane per receiver so that no receiver can hold up another.

What a receiver gets: a ``POST`` of the payload's JSON body with ``Content-Type: application/json``,
``X-Cidash-Timestamp: <unix seconds at which this attempt was sent>``, the payload's own headers
(an alert: ``X-Cidash-Alert-Id: <id>``) and, when the webhook has a secret,
``X-Cidash-Signature: sha256=<hex HMAC-SHA256 of b"<timestamp>." + body>``. Check it on the
receiving side with :func:`verify`, which also refuses a timestamp outside its tolerance: a
recorded delivery cannot be replayed later.

How deliveries run (the limits are the ``[webhook_delivery]`` settings, :class:`WebhookDeliveryConfig`):

* every receiver (webhook URL) has its own lane: a backlog of at most `backlog` deliveries and
  `concurrency` workers. A slow or dead receiver fills its own lane and nobody else's;
* every attempt has one overall deadline, `deadline_s`, for connecting, sending and receiving the
  status line and headers (the response body is never read), so a receiver that trickles bytes
  costs at most that per attempt;
* a 5xx, 408, 429, a timeout or a connection error is retried after an exponential backoff with
  jitter, up to `attempts` attempts; any other status ends the delivery;
* when a lane's backlog is full its oldest delivery is dropped, and so are the deliveries still
  queued when the process stops after its grace period: each is logged, counted in
  ``cidash_webhook_deliveries_total{outcome="dropped"}`` and (backlog) written as a
  ``webhook_deliveries`` row with attempt 0 and the reason as its error.

Every attempt is a row of ``webhook_deliveries`` (status code, error, ok), with the URL's
credentials removed.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import time
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
from tenacity import (
    AsyncRetrying,
    RetryError,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential,
    wait_random,
)

from cidash import metrics
from cidash.config import WebhookConfig, WebhookDeliveryConfig
from cidash.domain.urls import redact_url
from cidash.domain.views import AlertOut
from cidash.store import Store, alerts_store

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Cidash-Signature"
TIMESTAMP_HEADER = "X-Cidash-Timestamp"
ALERT_ID_HEADER = "X-Cidash-Alert-Id"
RETRY_STATUSES = frozenset({408, 429})
REPLAY_TOLERANCE_S = 300.0
RECORD_DEADLINE_S = 10.0  # one delivery-log row; the database being away must not stall a lane


def sign(secret: str | bytes, body: bytes, timestamp: int) -> str:
    """The signature header value for `body` sent at `timestamp`: ``sha256=<hex>``."""
    key = secret.encode() if isinstance(secret, str) else secret
    return "sha256=" + hmac.new(key, b"%d." % timestamp + body, hashlib.sha256).hexdigest()


def verify(
    secret: str | bytes,
    body: bytes,
    signature: str | None,
    timestamp: str | None,
    *,
    now: float | None = None,
    tolerance_s: float = REPLAY_TOLERANCE_S,
) -> bool:
    """Whether `signature` and `timestamp` (the two headers as received) sign `body` with `secret`,
    and the timestamp is within `tolerance_s` of `now` (a replay is refused)."""
    if signature is None or timestamp is None or not timestamp.isascii() or not timestamp.isdigit():
        return False
    sent = int(timestamp)
    if abs((time.time() if now is None else now) - sent) > tolerance_s:
        return False
    return hmac.compare_digest(sign(secret, body, sent), signature)


@dataclass(frozen=True)
class Payload:
    """One thing to deliver: the JSON body, the id its delivery-log rows point at (an alert's id),
    and the headers that name it for the receiver."""

    record_id: int
    body: bytes
    headers: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def of_alert(cls, alert: AlertOut) -> Payload:
        return cls(alert.id, alert.model_dump_json().encode(), {ALERT_ID_HEADER: str(alert.id)})


@dataclass
class _Job:
    payload: Payload
    hook: WebhookConfig
    outcome: asyncio.Future[bool]


class _Retry(Exception):
    """This attempt failed in a way worth retrying."""


class _Lane:
    """The backlog and the workers of one receiver."""

    def __init__(self, shown: str, backlog: int) -> None:
        self.shown = shown
        self.queue: asyncio.Queue[_Job] = asyncio.Queue(maxsize=backlog)
        self.workers: list[asyncio.Task[None]] = []
        self.busy = 0


class WebhookSender:
    """Delivers payloads in per-receiver lanes; :meth:`drain` waits for them, :meth:`close` stops them."""

    def __init__(
        self,
        store: Store | None,
        *,
        http: httpx.AsyncClient | None = None,
        attempts: int = 5,
        backoff_s: float = 1.0,
        max_backoff_s: float = 60.0,
        deadline_s: float = 10.0,
        concurrency: int = 4,
        backlog: int = 1000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._http = http
        self._own_http = http is None
        self.attempts = attempts
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.deadline_s = deadline_s
        self.concurrency = concurrency
        self.backlog = backlog
        self._clock = clock
        self._lanes: dict[str, _Lane] = {}
        self._side_tasks: set[asyncio.Task[None]] = set()  # delivery-log rows of dropped deliveries
        self._closed = False

    @classmethod
    def from_config(cls, store: Store | None, config: WebhookDeliveryConfig, **options: Any) -> WebhookSender:
        return cls(store, **config.model_dump(), **options)

    @property
    def in_flight(self) -> int:
        """Deliveries queued or under way, over every receiver."""
        return sum(lane.queue.qsize() + lane.busy for lane in self._lanes.values())

    def send(self, alert: AlertOut, hooks: Sequence[WebhookConfig]) -> list[asyncio.Future[bool]]:
        """Queue the delivery of one alert to every webhook of its rule."""
        return self.submit(Payload.of_alert(alert), hooks)

    def submit(self, payload: Payload, hooks: Sequence[WebhookConfig]) -> list[asyncio.Future[bool]]:
        """Queue one delivery per webhook; each future ends with whether the receiver accepted it (2xx)."""
        loop = asyncio.get_running_loop()
        outcomes = []
        for hook in hooks:
            job = _Job(payload, hook, loop.create_future())
            outcomes.append(job.outcome)
            if self._closed:
                self._drop(job, "sender closed", record=False)
                continue
            lane = self._lane(hook.url)
            if lane.queue.full():
                self._drop(lane.queue.get_nowait(), f"backlog of {self.backlog} full", record=True)
                lane.queue.task_done()
            lane.queue.put_nowait(job)
        self._show_depth()
        return outcomes

    async def drain(self) -> None:
        """Wait until every queued delivery has ended (delivered, refused, given up or dropped)."""
        for lane in list(self._lanes.values()):
            await lane.queue.join()
        while self._side_tasks:
            await asyncio.gather(*list(self._side_tasks), return_exceptions=True)

    async def close(self, grace_s: float = 5.0) -> None:
        """Take no more deliveries, give the queued ones `grace_s` to end, then drop the rest."""
        self._closed = True
        if grace_s > 0:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(grace_s):
                    await self.drain()
        workers = [task for lane in self._lanes.values() for task in lane.workers]
        for task in workers:
            task.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
        for lane in self._lanes.values():
            while not lane.queue.empty():
                self._drop(lane.queue.get_nowait(), "shutdown", record=False)
                lane.queue.task_done()
        for side in list(self._side_tasks):
            side.cancel()
        await asyncio.gather(*list(self._side_tasks), return_exceptions=True)
        self._show_depth()
        if self._own_http and self._http is not None:
            await self._http.aclose()
            self._http = None

    # -- lanes ------------------------------------------------------------------------------------
    def _lane(self, url: str) -> _Lane:
        lane = self._lanes.get(url)
        if lane is None:
            lane = self._lanes[url] = _Lane(redact_url(url), self.backlog)
            lane.workers = [
                asyncio.create_task(self._work(lane), name=f"webhook {lane.shown} #{n}")
                for n in range(self.concurrency)
            ]
        return lane

    async def _work(self, lane: _Lane) -> None:
        while True:
            job = await lane.queue.get()
            lane.busy += 1
            self._show_depth()
            try:
                ok = await self._deliver(job, lane.shown)
            except asyncio.CancelledError:
                self._drop(job, "shutdown during the delivery", record=False)
                raise
            except Exception:
                log.exception("webhook %s: delivery of %d failed", lane.shown, job.payload.record_id)
                ok = False
            finally:
                lane.busy -= 1
                lane.queue.task_done()
                self._show_depth()
            if not job.outcome.done():
                job.outcome.set_result(ok)

    def _drop(self, job: _Job, reason: str, *, record: bool) -> None:
        shown = redact_url(job.hook.url)
        log.warning("webhook %s: delivery of %d dropped (%s)", shown, job.payload.record_id, reason)
        metrics.WEBHOOK_DELIVERIES.labels(outcome="dropped").inc()
        if not job.outcome.done():
            job.outcome.set_result(False)
        if record:
            self._spawn(self._record(job.payload.record_id, shown, 0, None, f"dropped: {reason}", False))

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._side_tasks.add(task)
        task.add_done_callback(self._side_tasks.discard)

    def _show_depth(self) -> None:
        metrics.QUEUE_DEPTH.labels(queue="webhooks").set(sum(lane.queue.qsize() for lane in self._lanes.values()))

    # -- one delivery -----------------------------------------------------------------------------
    def _client(self) -> httpx.AsyncClient:
        if self._http is None:
            # the lanes bound the connections per receiver; the pool must not make them wait on each other
            limits = httpx.Limits(max_connections=None, max_keepalive_connections=32)
            self._http = httpx.AsyncClient(timeout=self.deadline_s, limits=limits, follow_redirects=False)
        return self._http

    async def _deliver(self, job: _Job, shown: str) -> bool:
        """One delivery with its retries; whether it was accepted (2xx)."""
        record_id = job.payload.record_id
        attempt_no = 0
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.attempts),
            # backoff_s * 2^n (capped) plus up to backoff_s of jitter
            wait=wait_exponential(multiplier=self.backoff_s, max=self.max_backoff_s) + wait_random(0, self.backoff_s),
            retry=retry_if_exception_type(_Retry),
            reraise=False,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    attempt_no += 1
                    ok = await self._attempt(job, shown, attempt_no)
                    if not ok:
                        log.warning("webhook %s refused delivery %d; not retrying", shown, record_id)
                    metrics.WEBHOOK_DELIVERIES.labels(outcome="delivered" if ok else "refused").inc()
                    return ok
        except RetryError:
            log.warning("webhook %s: delivery %d failed after %d attempts", shown, record_id, attempt_no)
            metrics.WEBHOOK_DELIVERIES.labels(outcome="failed").inc()
        return False

    async def _attempt(self, job: _Job, shown: str, attempt: int) -> bool:
        payload, url = job.payload, job.hook.url
        sent_at = int(self._clock())
        headers = {"Content-Type": "application/json", "User-Agent": "cidash", **payload.headers}
        headers[TIMESTAMP_HEADER] = str(sent_at)
        if job.hook.secret is not None:
            headers[SIGNATURE_HEADER] = sign(job.hook.secret.get_secret_value(), payload.body, sent_at)
        error: str | None = None
        status: int | None = None
        try:
            async with asyncio.timeout(self.deadline_s):
                async with self._client().stream("POST", url, content=payload.body, headers=headers) as response:
                    status = response.status_code  # the body is never read: it could be endless
        except TimeoutError:
            error = f"no answer within the deadline of {self.deadline_s:g} s"
        except httpx.TimeoutException as exc:
            error = f"timeout ({type(exc).__name__})"
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}".replace(url, shown)
        ok = status is not None and 200 <= status < 300
        if error is None and not ok:
            error = f"HTTP {status}"
        await self._record(payload.record_id, shown, attempt, status, error, ok)
        if status is None or status >= 500 or status in RETRY_STATUSES:
            metrics.WEBHOOK_FAILED_ATTEMPTS.inc()
            raise _Retry
        return ok

    async def _record(
        self, record_id: int, url: str, attempt: int, status: int | None, error: str | None, ok: bool
    ) -> None:
        if self._store is None:
            return
        created_at = datetime.now(UTC)
        try:
            async with asyncio.timeout(RECORD_DEADLINE_S):
                await self._store.write(
                    lambda conn: alerts_store.record_delivery(
                        conn,
                        alert_id=record_id,
                        url=url,
                        attempt=attempt,
                        status_code=status,
                        error=error,
                        ok=ok,
                        created_at=created_at,
                    )
                )
        except Exception as exc:  # the log row is best effort: never lose the delivery for it
            log.warning("could not record webhook attempt %d of %d (%s)", attempt, record_id, type(exc).__name__)
