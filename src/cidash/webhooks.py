"""Webhook delivery of alerts: a JSON POST of :class:`~cidash.views.AlertOut` per webhook.

Headers: ``Content-Type: application/json``, ``X-Cidash-Alert-Id: <id>`` and, when the webhook
has a secret, ``X-Cidash-Signature: sha256=<hex HMAC-SHA256 of the exact body bytes>``. Check it
on the receiving side with a constant-time comparison of :func:`sign` over the raw body.

Deliveries run in background tasks (never in the collector's path), at most `concurrency` at
a time. A 5xx, 408, 429, a timeout or a connection error is retried with exponential backoff and
jitter, up to `attempts` attempts; any other status ends the delivery. Every attempt is a row of
``webhook_deliveries`` (status code, error, ok), with the URL's credentials removed.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx
from tenacity import (
    AsyncRetrying,
    RetryError,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential,
    wait_random,
)

from cidash.config import WebhookConfig
from cidash.store import alerts_store
from cidash.store.engine import writer_engine
from cidash.store.writer import Store
from cidash.views import AlertOut

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Cidash-Signature"
ALERT_ID_HEADER = "X-Cidash-Alert-Id"
RETRY_STATUSES = frozenset({408, 429})


def sign(secret: str | bytes, body: bytes) -> str:
    """The signature header value for `body`: ``sha256=<hex>``."""
    key = secret.encode() if isinstance(secret, str) else secret
    return "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()


def verify(secret: str | bytes, body: bytes, header: str | None) -> bool:
    return header is not None and hmac.compare_digest(sign(secret, body), header)


def redact_url(url: str) -> str:
    """`url` without user info, query values or fragment (what may carry credentials)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return "<invalid url>"
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{host}:{port}" if port is not None else host
    query = urlencode([(key, "***") for key, _ in parse_qsl(parts.query, keep_blank_values=True)])
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


class _Retry(Exception):
    """This attempt failed in a way worth retrying."""


class WebhookSender:
    """Delivers alerts in background tasks; :meth:`drain` waits for them, :meth:`close` stops them."""

    def __init__(
        self,
        store: Store | None,
        *,
        http: httpx.AsyncClient | None = None,
        attempts: int = 5,
        backoff_s: float = 1.0,
        max_backoff_s: float = 60.0,
        timeout_s: float = 10.0,
        concurrency: int = 8,
    ) -> None:
        self._store = store
        self._writes = writer_engine(store.engine) if store is not None else None
        self._http = http
        self._own_http = http is None
        self._timeout = timeout_s
        self.attempts = attempts
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self._concurrency = concurrency
        self._semaphore: asyncio.Semaphore | None = None
        self._tasks: set[asyncio.Task[bool]] = set()

    @property
    def in_flight(self) -> int:
        return len(self._tasks)

    def send(self, alert: AlertOut, hooks: Sequence[WebhookConfig]) -> list[asyncio.Task[bool]]:
        """Start one background delivery per webhook."""
        tasks = []
        for hook in hooks:
            task = asyncio.create_task(self.deliver(alert, hook), name=f"webhook alert {alert.id}")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            tasks.append(task)
        return tasks

    async def drain(self) -> None:
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def close(self, grace_s: float = 5.0) -> None:
        """Give the deliveries under way `grace_s` to finish, then cancel them."""
        if self._tasks and grace_s > 0:
            await asyncio.wait(list(self._tasks), timeout=grace_s)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*list(self._tasks), return_exceptions=True)
        if self._own_http and self._http is not None:
            await self._http.aclose()
            self._http = None

    def _client(self) -> httpx.AsyncClient:
        if self._http is None:
            self._http = httpx.AsyncClient(timeout=self._timeout, follow_redirects=False)
        return self._http

    async def deliver(self, alert: AlertOut, hook: WebhookConfig) -> bool:
        """Deliver one alert to one webhook with retries; whether it was accepted (2xx)."""
        if self._semaphore is None:
            self._semaphore = asyncio.Semaphore(self._concurrency)
        body = alert.model_dump_json().encode()
        headers = {"Content-Type": "application/json", "User-Agent": "cidash", ALERT_ID_HEADER: str(alert.id)}
        if hook.secret is not None:
            headers[SIGNATURE_HEADER] = sign(hook.secret.get_secret_value(), body)
        shown = redact_url(hook.url)
        attempt_no = 0
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.attempts),
            # backoff_s * 2^n (capped) plus up to backoff_s of jitter
            wait=wait_exponential(multiplier=self.backoff_s, max=self.max_backoff_s) + wait_random(0, self.backoff_s),
            retry=retry_if_exception_type(_Retry),
            reraise=False,
        )
        async with self._semaphore:
            try:
                async for attempt in retrying:
                    with attempt:
                        attempt_no += 1
                        ok = await self._attempt(alert.id, hook.url, shown, attempt_no, body, headers)
                        if not ok:
                            log.warning("webhook %s refused alert %d; not retrying", shown, alert.id)
                        return ok
            except RetryError:
                log.warning("webhook %s: alert %d not delivered after %d attempts", shown, alert.id, attempt_no)
        return False

    async def _attempt(
        self, alert_id: int, url: str, shown: str, attempt: int, body: bytes, headers: dict[str, str]
    ) -> bool:
        try:
            response = await self._client().post(url, content=body, headers=headers)
        except httpx.TimeoutException as exc:
            await self._record(alert_id, shown, attempt, None, f"timeout ({type(exc).__name__})", False)
            raise _Retry from None
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}".replace(url, shown)
            await self._record(alert_id, shown, attempt, None, error, False)
            raise _Retry from None
        status = response.status_code
        ok = 200 <= status < 300
        await self._record(alert_id, shown, attempt, status, None if ok else f"HTTP {status}", ok)
        if status >= 500 or status in RETRY_STATUSES:
            raise _Retry
        return ok

    async def _record(
        self, alert_id: int, url: str, attempt: int, status: int | None, error: str | None, ok: bool
    ) -> None:
        if self._writes is None:
            return
        try:
            async with self._writes.begin() as conn:
                await alerts_store.record_delivery(
                    conn,
                    alert_id=alert_id,
                    url=url,
                    attempt=attempt,
                    status_code=status,
                    error=error,
                    ok=ok,
                    created_at=datetime.now(UTC),
                )
        except Exception as exc:  # the log row is best effort: never lose the delivery for it
            log.warning("could not record webhook attempt %d for alert %d (%s)", attempt, alert_id, type(exc).__name__)
