"""Gerrit REST client for the backfill: paged change queries, group members, version.

429 and 5xx are retried with exponential backoff and full jitter (Gerrit sends no Retry-After);
401/403 stop at once with GerritAuthError, because retrying cannot fix credentials.

Bounded whatever the server does: each attempt has one overall deadline (`deadline_s`: connect,
headers and the whole body, however slowly it trickles; a miss is retried like a 5xx), and a body
is read, gzip-decoded here in bounded steps, only up to `max_bytes` decoded bytes: a larger one
(or a gzip bomb) ends the request with GerritUnavailableError without holding more than that.
"""

from __future__ import annotations

import asyncio
import logging
import zlib
from collections.abc import AsyncIterator, Sequence
from typing import Any
from urllib.parse import quote

import httpx
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    wait_random_exponential,
)

from cidash.config import GerritServer
from cidash.errors import GerritAuthError, GerritUnavailableError
from cidash.gerrit.wire import loads, loose_int, strip_xssi

log = logging.getLogger(__name__)

BACKFILL_OPTIONS = ("MESSAGES", "DETAILED_ACCOUNTS", "ALL_REVISIONS")
DEFAULT_MAX_BYTES = 32 * 1024 * 1024
DEFAULT_DEADLINE_S = 120.0


class ResponseTooLargeError(GerritUnavailableError):
    """A response body (decoded) over the client's `max_bytes`."""


class _Retryable(Exception):
    def __init__(self, status: int | None, detail: str) -> None:
        super().__init__(f"HTTP {status}: {detail}" if status else detail)
        self.status = status


class GerritRestClient:
    def __init__(
        self,
        base_url: str,
        *,
        user: str | None = None,
        password: str | None = None,
        timeout_s: float = 30.0,
        deadline_s: float = DEFAULT_DEADLINE_S,
        max_bytes: int = DEFAULT_MAX_BYTES,
        max_attempts: int = 8,
        backoff_max_s: float = 60.0,
        backoff_multiplier_s: float = 0.5,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        auth = httpx.BasicAuth(user, password) if user is not None and password is not None else None
        self._prefix = "/a" if auth else ""
        self.base_url = base_url.rstrip("/")
        self._client = httpx.AsyncClient(
            base_url=self.base_url,
            auth=auth,
            timeout=timeout_s,
            transport=transport,
            headers={"Accept-Encoding": "gzip"},  # the one encoding _read_capped decodes
        )
        self.deadline_s = deadline_s
        self.max_bytes = max_bytes
        self._max_attempts = max_attempts
        self._wait = wait_random_exponential(multiplier=backoff_multiplier_s, max=backoff_max_s)
        self.retries = 0

    @classmethod
    def for_server(cls, server: GerritServer) -> GerritRestClient:
        password = server.http_password.get_secret_value() if server.http_password else None
        return cls(
            server.http_url,
            user=server.http_user,
            password=password,
            max_attempts=server.rest_attempts,
            deadline_s=server.rest_deadline_s,
            max_bytes=server.rest_max_bytes,
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    async def __aenter__(self) -> GerritRestClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def get_json(self, path: str, params: Sequence[tuple[str, str | int]] = ()) -> Any:
        """GET `/a/<path>` and decode Gerrit's `)]}'`-prefixed JSON, retrying what is transient."""
        retrying = AsyncRetrying(
            retry=retry_if_exception(lambda exc: isinstance(exc, _Retryable)),
            wait=self._wait,
            stop=stop_after_attempt(self._max_attempts),
            before_sleep=lambda state: self._log_retry(path, state),
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    if attempt.retry_state.attempt_number > 1:
                        self.retries += 1
                    return await self._get_once(path, params)
        except _Retryable as exc:
            raise GerritUnavailableError(
                f"Gerrit REST {self.base_url}/{path} failed {self._max_attempts} times, last: {exc}"
            ) from None
        raise AssertionError("unreachable")  # pragma: no cover

    def _log_retry(self, path: str, state: RetryCallState) -> None:
        if state.outcome is not None and state.outcome.failed:
            log.warning(
                "Gerrit REST %s/%s attempt %d failed: %s",
                self.base_url,
                path,
                state.attempt_number,
                state.outcome.exception(),
            )

    async def _get_once(self, path: str, params: Sequence[tuple[str, str | int]]) -> Any:
        try:
            async with asyncio.timeout(self.deadline_s):
                status, body, where = await self._fetch(path, params)
        except TimeoutError:
            raise _Retryable(None, f"no complete answer within the deadline of {self.deadline_s:g} s") from None
        except httpx.TransportError as exc:
            raise _Retryable(None, f"{type(exc).__name__}: {exc}") from None
        if status in (401, 403):
            raise GerritAuthError(f"Gerrit refused the credentials (HTTP {status}) for {where}")
        text = body.decode("utf-8", "replace").strip()[:200]
        if status == 429 or status >= 500:
            raise _Retryable(status, text)
        if status >= 400:
            raise GerritUnavailableError(f"Gerrit answered HTTP {status} for {path}: {text}")
        try:
            return loads(strip_xssi(body))
        except ValueError as exc:
            raise _Retryable(status, f"undecodable body: {exc}") from None

    async def _fetch(self, path: str, params: Sequence[tuple[str, str | int]]) -> tuple[int, bytes, str]:
        """Status, decoded body (at most `max_bytes`) and the URL without its query."""
        request = self._client.build_request("GET", f"{self._prefix}/{path.lstrip('/')}", params=list(params))
        response = await self._client.send(request, stream=True)
        try:
            where = str(request.url.copy_with(query=None))
            return response.status_code, await _read_capped(response, self.max_bytes, where), where
        finally:
            await response.aclose()

    async def query_changes(
        self, query: str, *, options: Sequence[str] = BACKFILL_OPTIONS, page_size: int = 100
    ) -> AsyncIterator[list[dict[str, Any]]]:
        """Yield pages of ChangeInfo, following `_more_changes` with `S=` until the end.

        Offset paging over an `updated`-descending list can serve a change twice when others are
        updated meanwhile; each change number is yielded once per query. A page over `max_bytes`
        is asked again at half the size (down to one change: one change over the cap is an error).
        """
        seen: set[int] = set()
        start = 0
        while True:
            params: list[tuple[str, str | int]] = [("q", query), ("n", page_size), ("S", start)]
            params += [("o", option) for option in options]
            try:
                page = await self.get_json("changes/", params)
            except ResponseTooLargeError:
                if page_size == 1:
                    raise
                page_size //= 2
                log.warning(
                    "Gerrit REST %s: a page over %d bytes; asking %d changes a page",
                    self.base_url,
                    self.max_bytes,
                    page_size,
                )
                continue
            if not isinstance(page, list):
                raise GerritUnavailableError(f"Gerrit change query returned {type(page).__name__}, not a list")
            fresh = []
            for change in page:
                number = loose_int(change.get("_number")) if isinstance(change, dict) else None
                if number is not None and number not in seen:
                    seen.add(number)
                    fresh.append(change)
            if fresh:
                yield fresh
            if not page or not isinstance(page[-1], dict) or not page[-1].get("_more_changes"):
                return
            start += len(page)

    async def group_members(self, group: str) -> list[dict[str, Any]]:
        members = await self.get_json(f"groups/{quote(group, safe='')}/members/")
        return [member for member in members if isinstance(member, dict)] if isinstance(members, list) else []

    async def version(self) -> str:
        return str(await self.get_json("config/server/version"))


async def _read_capped(response: httpx.Response, limit: int, where: str) -> bytes:
    """The body of `response`, gzip-decoded in steps that never produce more than `limit` bytes."""

    def too_large() -> ResponseTooLargeError:
        return ResponseTooLargeError(
            f"Gerrit's answer for {where} is larger than {limit} bytes decoded (rest_max_bytes)"
        )

    declared = response.headers.get("content-length", "")
    encoding = response.headers.get("content-encoding", "identity").strip().lower()
    if encoding not in ("identity", "", "gzip", "x-gzip"):
        raise GerritUnavailableError(
            f"Gerrit answered {where} with content-encoding {encoding!r}; only gzip is asked for"
        )
    gzipped = encoding in ("gzip", "x-gzip")
    if not gzipped and declared.isdigit() and int(declared) > limit:
        raise too_large()
    decoder = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS) if gzipped else None
    body = bytearray()
    async for raw in response.aiter_raw():
        pending = raw
        while pending:
            if decoder is None:
                piece, pending = pending, b""
            else:
                # at most one byte past the limit per step; output still inside zlib then is past it too
                try:
                    piece = decoder.decompress(pending, limit - len(body) + 1)
                except zlib.error as exc:
                    raise _Retryable(response.status_code, f"undecodable gzip body: {exc}") from None
                pending = decoder.unconsumed_tail
            body += piece
            if len(body) > limit:
                raise too_large()
    if decoder is not None:
        body += decoder.flush()
        if len(body) > limit:
            raise too_large()
    return bytes(body)
