"""Talking to the cidash API: JSON over HTTP (httpx) and the live feed over a websocket (websockets).

Every failure an operator can act on becomes a :class:`ClientError` whose message is one line;
responses are checked against the read models of :mod:`cidash.domain.views` before anyone uses them.
"""

from __future__ import annotations

import asyncio
import errno
import random
import re
import socket
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar
from urllib.parse import quote, urlsplit, urlunsplit

import httpx
import orjson
from pydantic import TypeAdapter, ValidationError
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus, WebSocketException

from cidash.domain.urls import redact_url
from cidash.domain.views import (
    AlertPage,
    CollectionOut,
    FeedMessage,
    Grid,
    IncidentOut,
    IncidentPage,
    ReportCard,
    RunPage,
    SystemDetail,
    SystemSummary,
)
from cidash.errors import CidashError

DEFAULT_URL = "http://127.0.0.1:8080"
API_PREFIX = "/api/v1"
FEED_KINDS = ("run", "alert", "state", "incident")
CLOSE_HEARTBEAT = 4000
CLOSE_SLOW_CONSUMER = 4008
USER_AGENT = "cidash-cli (python-radar)"

M = TypeVar("M")


class ClientError(CidashError):
    """A failed API call, explained in one line (the CLI prints it as ``cidash: error: ...``)."""


# -- text from the server is data ---------------------------------------------------------------

# Bidirectional overrides and isolates can reorder what a terminal shows ("Trojan source").
_BIDI = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def printable(text: str) -> str:
    """`text` safe for a terminal line: control and bidi characters shown as escapes (``\\x1b``, ``\\n``)."""
    if text.isprintable():
        return text
    out: list[str] = []
    for ch in text:
        if ch in _BIDI or unicodedata.category(ch) in ("Cc", "Cs"):
            code = ord(ch)
            if ch == "\n":
                out.append("\\n")
            elif ch == "\t":
                out.append("\\t")
            elif ch == "\r":
                out.append("\\r")
            else:
                out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")
        else:
            out.append(ch)
    return "".join(out)


def one_line(text: str, limit: int = 300) -> str:
    """Whitespace collapsed, control characters escaped and at most `limit` characters."""
    flat = printable(" ".join(text.split()))
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def safe_url(url: str | None) -> str | None:
    """The URL when it is an absolute http(s) URL without control characters or spaces, else None."""
    if not url:
        return None
    text = url.strip()
    if not re.fullmatch(r"https?://[^\s\x00-\x1f\x7f]+", text, flags=re.IGNORECASE):
        return None
    return text if urlsplit(text).hostname else None


# -- addresses ----------------------------------------------------------------------------------


def base_url(url: str) -> str:
    """The server root from `--url` (a trailing ``/`` or ``/api/v1`` is forgiven)."""
    text = url.strip().rstrip("/")
    if text.endswith(API_PREFIX):
        text = text[: -len(API_PREFIX)].rstrip("/")
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        shown = one_line(redact_url(url.strip()))
        raise ClientError(f"--url must be an http:// or https:// URL such as {DEFAULT_URL}, not {shown!r}")
    return text


def ws_url(base: str) -> str:
    """The live feed's address for server root `base` (ws:// or wss://)."""
    parts = urlsplit(base)
    scheme = "wss" if parts.scheme == "https" else "ws"
    return urlunsplit((scheme, parts.netloc, parts.path.rstrip("/") + API_PREFIX + "/ws", "", ""))


def _root_cause(exc: BaseException) -> BaseException:
    seen: set[int] = set()
    current: BaseException = exc
    while id(current) not in seen:
        seen.add(id(current))
        nxt = current.__cause__ or current.__context__
        if nxt is None:
            break
        current = nxt
    return current


def unreachable_reason(exc: BaseException) -> str:
    """Why a connection could not be made, in a few lowercase words ("connection refused")."""
    cause = _root_cause(exc)
    if isinstance(cause, socket.gaierror):
        return "unknown host name"
    if isinstance(cause, ConnectionRefusedError) or getattr(cause, "errno", None) == errno.ECONNREFUSED:
        return "connection refused"
    if isinstance(cause, TimeoutError):
        return "timed out"
    if isinstance(cause, OSError) and cause.strerror:
        return cause.strerror[:1].lower() + cause.strerror[1:]
    text = str(cause) or str(exc) or type(cause).__name__
    return one_line(text, 120)


def unreachable_message(base: str, exc: BaseException) -> str:
    return f"cannot reach the cidash API at {base}: {unreachable_reason(exc)} — is `cidash serve` running?"


def _detail(response: httpx.Response) -> str:
    """The server's explanation: FastAPI's ``detail`` (a string or a list of validation errors)."""
    try:
        body = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return one_line(response.text, 200) if response.text.strip() else response.reason_phrase
    detail = body.get("detail") if isinstance(body, dict) else None
    if isinstance(detail, str):
        return one_line(detail)
    if isinstance(detail, list):
        parts: list[str] = []
        for item in detail:
            if isinstance(item, dict):
                loc = [str(p) for p in item.get("loc", []) if p not in ("query", "path", "body", "header")]
                msg = str(item.get("msg", item))
                parts.append(f"{'.'.join(loc)}: {msg}" if loc else msg)
            else:
                parts.append(str(item))
        return one_line("; ".join(parts))
    return one_line(orjson.dumps(body).decode(), 200)


def _body_detail(body: str) -> str:
    """``detail`` of a JSON error body, else the body itself, on one line."""
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        return one_line(body, 120)
    if isinstance(parsed, dict) and isinstance(parsed.get("detail"), str):
        return one_line(parsed["detail"], 200)
    return one_line(body, 120)


def _auth_message(status: int, detail: str, token_given: bool) -> str:
    why = f"{status}: {detail}" if detail else str(status)
    if token_given:
        return f"the cidash API refused the token ({why}); check --token or CIDASH_TOKEN"
    return f"the cidash API needs a token ({why}); pass it with --token or set CIDASH_TOKEN"


# -- HTTP ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Fetched(Generic[M]):
    """An answer as the server sent it (`raw`, for ``--json``) and checked against the read model."""

    raw: Any
    model: M


_SYSTEMS = TypeAdapter(list[SystemSummary])
_SYSTEM = TypeAdapter(SystemDetail)
_RUNS = TypeAdapter(RunPage)
_GRID = TypeAdapter(Grid)
_REPORT = TypeAdapter(ReportCard)
_ALERTS = TypeAdapter(AlertPage)
_INCIDENTS = TypeAdapter(IncidentPage)
_INCIDENT = TypeAdapter(IncidentOut)
_COLLECTION = TypeAdapter(CollectionOut)


class ApiClient:
    """A synchronous client of ``/api/v1`` (one process, one command: no need for async here)."""

    def __init__(
        self,
        url: str = DEFAULT_URL,
        token: str | None = None,
        *,
        timeout: float = 15.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base = base_url(url)
        self.shown = redact_url(self.base)  # for messages: a password in --url is never repeated
        self.token = token or None
        self.timeout = timeout
        headers = {"Accept": "application/json", "User-Agent": USER_AGENT}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        self._http = httpx.Client(
            base_url=self.base, headers=headers, timeout=timeout, transport=transport, follow_redirects=True
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # ---- plumbing

    def get_json(self, path: str, params: Mapping[str, object] | None = None, *, not_found: str | None = None) -> Any:
        return self._json("GET", path, params, not_found=not_found)

    def post_json(self, path: str, params: Mapping[str, object] | None = None, *, timeout: float | None = None) -> Any:
        """POST without a body (the write token must be set); `timeout` None waits as long as it takes."""
        return self._json("POST", path, params, timeout=timeout)

    def _json(
        self,
        method: str,
        path: str,
        params: Mapping[str, object] | None,
        *,
        not_found: str | None = None,
        timeout: float | httpx.Timeout | None = None,
        body: Mapping[str, object] | None = None,
    ) -> Any:
        query = {k: v if isinstance(v, str) else str(v) for k, v in (params or {}).items() if v is not None}
        wait = self.timeout if method == "GET" or body is not None else timeout
        payload = dict(body) if body is not None else None
        try:
            response = self._http.request(method, API_PREFIX + path, params=query, timeout=wait, json=payload)
        except httpx.TimeoutException as exc:
            raise ClientError(f"the cidash API at {self.shown} did not answer within {wait} s") from exc
        except httpx.ConnectError as exc:
            raise ClientError(unreachable_message(self.shown, exc)) from exc
        except httpx.TransportError as exc:
            reason = one_line(str(exc) or type(exc).__name__, 160)
            raise ClientError(f"lost the connection to the cidash API at {self.shown}: {reason}") from exc
        self._check(response, path, not_found)
        try:
            return orjson.loads(response.content)
        except orjson.JSONDecodeError as exc:
            raise ClientError(
                f"{self.shown}{API_PREFIX}{path} answered with something that is not JSON; "
                "is --url pointing at the cidash API?"
            ) from exc

    def _check(self, response: httpx.Response, path: str, not_found: str | None) -> None:
        status = response.status_code
        if status < 400:
            return
        detail = _detail(response)
        if status in (401, 403):
            raise ClientError(_auth_message(status, detail, self.token is not None))
        if status == 404:
            if not_found:
                raise ClientError(not_found)
            raise ClientError(f"not found: {API_PREFIX}{path} ({detail}); is --url pointing at the cidash API?")
        if status in (400, 422):
            raise ClientError(f"the cidash API rejected the request: {detail}")
        if status in (502, 503, 504):
            raise ClientError(f"the cidash API at {self.shown} is unavailable ({status}): {detail}")
        raise ClientError(f"the cidash API failed on {API_PREFIX}{path} ({status}): {detail}")

    def _parse(self, adapter: TypeAdapter[M], raw: Any, path: str) -> M:
        try:
            return adapter.validate_python(raw)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "the body"
            raise ClientError(
                f"{API_PREFIX}{path} answered with data this client does not understand ({where}: {first['msg']}); "
                "are the client and the server the same version?"
            ) from exc

    def _fetch(
        self,
        adapter: TypeAdapter[M],
        path: str,
        params: Mapping[str, object] | None = None,
        *,
        not_found: str | None = None,
    ) -> Fetched[M]:
        raw = self.get_json(path, params, not_found=not_found)
        return Fetched(raw, self._parse(adapter, raw, path))

    def _all_pages(self, adapter: TypeAdapter[M], path: str, params: dict[str, object]) -> Fetched[M]:
        """Follow ``next_cursor`` to the end; one document with every item and ``next_cursor: null``."""
        items: list[Any] = []
        seen: set[str] = set()
        cursor = params.get("cursor")
        while True:
            raw = self.get_json(path, {**params, "cursor": cursor})
            if not isinstance(raw, dict) or not isinstance(raw.get("items"), list):
                self._parse(adapter, raw, path)  # raises with the reason
                raise ClientError(f"{API_PREFIX}{path} answered without a list of items")
            self._parse(adapter, raw, path)
            items.extend(raw["items"])
            nxt = raw.get("next_cursor")
            if not nxt:
                break
            if not isinstance(nxt, str) or nxt in seen:
                raise ClientError(f"{API_PREFIX}{path} returned the cursor {one_line(str(nxt), 60)!r} twice; stopping")
            seen.add(nxt)
            cursor = nxt
        whole = {"items": items, "next_cursor": None}
        return Fetched(whole, self._parse(adapter, whole, path))

    # ---- endpoints

    def systems(self, window: str | None = None, project: str | None = None) -> Fetched[list[SystemSummary]]:
        return self._fetch(_SYSTEMS, "/systems", {"window": window, "project": project})

    def system(self, name: str) -> Fetched[SystemDetail]:
        path = f"/systems/{quote(name, safe='')}"
        return self._fetch(_SYSTEM, path, not_found=f"no CI system named {one_line(name, 120)!r}")

    def runs(
        self,
        *,
        ci: str | None = None,
        project: str | None = None,
        branch: str | None = None,
        result: str | None = None,
        from_: str | None = None,
        to: str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
        follow: bool = False,
    ) -> Fetched[RunPage]:
        params: dict[str, object] = {
            "ci": ci,
            "project": project,
            "branch": branch,
            "result": result,
            "from": from_,
            "to": to,
            "limit": limit,
            "cursor": cursor,
        }
        return self._all_pages(_RUNS, "/runs", params) if follow else self._fetch(_RUNS, "/runs", params)

    def grid(self, project: str | None = None, limit: int | None = None) -> Fetched[Grid]:
        return self._fetch(_GRID, "/grid", {"project": project, "limit": limit})

    def report(self, end: str | None = None, project: str | None = None) -> Fetched[ReportCard]:
        return self._fetch(_REPORT, "/report", {"end": end, "project": project})

    def collection(
        self, server: str | None = None, since: str | None = None, until: str | None = None
    ) -> Fetched[CollectionOut]:
        not_found = f"no Gerrit server named {server!r}" if server else None
        params = {"server": server, "from": since, "to": until}
        return self._fetch(_COLLECTION, "/collection", params, not_found=not_found)

    def alerts(
        self, *, ci: str | None = None, limit: int | None = None, cursor: str | None = None, follow: bool = False
    ) -> Fetched[AlertPage]:
        params: dict[str, object] = {"ci": ci, "limit": limit, "cursor": cursor}
        return self._all_pages(_ALERTS, "/alerts", params) if follow else self._fetch(_ALERTS, "/alerts", params)

    def incidents(
        self, *, state: str | None = None, ci: str | None = None, limit: int | None = None, cursor: str | None = None
    ) -> Fetched[IncidentPage]:
        return self._fetch(_INCIDENTS, "/incidents", {"state": state, "ci": ci, "limit": limit, "cursor": cursor})

    def ack(self, incident_id: int, author: str, note: str | None) -> Fetched[IncidentOut]:
        """Acknowledge an incident (the write token must be set)."""
        path = f"/incidents/{incident_id}/ack"
        raw = self._json(
            "POST", path, None, body={"author": author, "note": note}, not_found=f"no incident {incident_id}"
        )
        return Fetched(raw, _INCIDENT.validate_python(raw))


# -- the live feed ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Subscription:
    kinds: tuple[str, ...] = FEED_KINDS
    ci: tuple[str, ...] = ()
    projects: tuple[str, ...] = ()

    def message(self, since: int | None) -> dict[str, object]:
        msg: dict[str, object] = {"type": "subscribe", "kinds": list(self.kinds)}
        if self.ci:
            msg["ci"] = list(self.ci)
        if self.projects:
            msg["projects"] = list(self.projects)
        if since is not None:
            msg["since"] = since
        return msg


def backoff_delay(
    attempt: int,
    base_s: float = 1.0,
    max_s: float = 30.0,
    factor: float = 2.0,
    rand: Callable[[], float] = random.random,
) -> float:
    """Exponential, capped, with "equal jitter" (half to all of the capped value), as the dashboard does."""
    exp = min(max_s, base_s * factor ** max(0, attempt))
    r = min(1.0, max(0.0, rand()))
    return min(max_s, exp / 2 + exp / 2 * r)


@dataclass
class _Drop:
    code: int | None
    was_live: bool
    reason: str
    error: BaseException | None = None


def _is_id(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _close_reason(exc: ConnectionClosed) -> tuple[int | None, str]:
    frame = exc.rcvd
    if frame is None:
        return None, "the connection dropped"
    if frame.code == CLOSE_SLOW_CONSUMER:
        return frame.code, "the server dropped us as a slow consumer (4008)"
    reason = f": {one_line(frame.reason, 80)}" if frame.reason else ""
    return frame.code, f"the server closed the feed ({frame.code}{reason})"


CLOSE_TIMEOUT_S = 2.0  # leaving (Ctrl-C) waits this long at most for the server's close frame


@dataclass
class FeedWatcher:
    """Tails ``/api/v1/ws``: resumes with ``since`` after every drop, drops duplicates, never skips.

    `on_message` gets each new feed message (checked, and as received). The first connection must
    succeed (else :class:`ClientError`); later drops reconnect forever with a jittered backoff.
    A refused token (401/403) or a missing endpoint (404) is a :class:`ClientError` at any time.
    """

    url: str
    token: str | None
    subscription: Subscription
    on_message: Callable[[FeedMessage, dict[str, Any]], None]
    on_notice: Callable[[str], None] = lambda _text: None
    since: int | None = None
    max_messages: int | None = None
    heartbeat_s: float = 40.0
    open_timeout_s: float = 10.0
    backoff_base_s: float = 1.0
    backoff_max_s: float = 30.0
    rand: Callable[[], float] = random.random
    # set from url / as the feed goes
    base: str = field(default="", init=False)
    feed_url: str = field(default="", init=False)
    shown_feed: str = field(default="", init=False)  # feed_url without credentials, for messages
    last_id: int | None = field(default=None, init=False)
    delivered: int = field(default=0, init=False)
    duplicates: int = field(default=0, init=False)
    ignored: int = field(default=0, init=False)
    connections: int = field(default=0, init=False)
    attempt: int = field(default=0, init=False)
    ever_live: bool = field(default=False, init=False)

    def __post_init__(self) -> None:
        self.base = base_url(self.url)
        self.feed_url = ws_url(self.base)
        self.shown_feed = redact_url(self.feed_url)
        self.last_id = self.since

    @property
    def done(self) -> bool:
        return self.max_messages is not None and self.delivered >= self.max_messages

    async def run(self) -> None:
        while not self.done:
            drop = await self._session()
            if drop is None:
                return
            if not self.ever_live:
                if drop.error is not None and not isinstance(drop.error, (ConnectionClosed, InvalidStatus)):
                    raise ClientError(unreachable_message(redact_url(self.base), drop.error))
                raise ClientError(f"the live feed at {self.shown_feed} failed: {drop.reason}")
            quick = drop.code == CLOSE_SLOW_CONSUMER or drop.was_live
            delay = backoff_delay(0 if quick else self.attempt, self.backoff_base_s, self.backoff_max_s, rand=self.rand)
            if not drop.was_live:
                self.attempt += 1
            resume = f" after #{self.last_id}" if self.last_id is not None else ""
            self.on_notice(f"{drop.reason}; reconnecting in {delay:.1f} s to resume{resume}")
            await asyncio.sleep(delay)

    async def _session(self) -> _Drop | None:
        """One connection: None when done, else why it ended. Errors of `on_message` propagate."""
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else None
        try:
            ws = await connect(
                self.feed_url,
                additional_headers=headers,
                user_agent_header=USER_AGENT,
                open_timeout=self.open_timeout_s,
                close_timeout=CLOSE_TIMEOUT_S,
                max_size=2**24,
            )
        except InvalidStatus as exc:
            status = exc.response.status_code
            if status in (401, 403):
                body = exc.response.body.decode("utf-8", "replace") if exc.response.body else ""
                raise ClientError(_auth_message(status, _body_detail(body), self.token is not None)) from exc
            if status == 404:
                raise ClientError(
                    f"there is no live feed at {self.shown_feed} (404); is --url pointing at the cidash API?"
                ) from exc
            return _Drop(None, False, f"the feed answered HTTP {status}", exc)
        except (OSError, TimeoutError, WebSocketException) as exc:
            return _Drop(None, False, f"cannot connect ({unreachable_reason(exc)})", exc)
        self.connections += 1
        was_live = False
        try:
            async with ws:
                await ws.send(orjson.dumps(self.subscription.message(self.last_id)).decode())
                while True:
                    try:
                        raw = await asyncio.wait_for(ws.recv(), self.heartbeat_s)
                    except TimeoutError:
                        await ws.close(CLOSE_HEARTBEAT, "heartbeat timeout")
                        return _Drop(CLOSE_HEARTBEAT, was_live, f"nothing heard for {self.heartbeat_s:g} s")
                    kind = self._handle(raw)
                    if kind == "hello":
                        if self.ever_live and not was_live:
                            resumed = f" after #{self.last_id}" if self.last_id is not None else ""
                            self.on_notice(f"reconnected; resuming{resumed}")
                        was_live = True
                        self.ever_live = True
                        self.attempt = 0
                    elif kind == "ping":
                        await ws.send('{"type":"pong"}')
                    if self.done:
                        return None
        except ConnectionClosed as exc:
            code, reason = _close_reason(exc)
            return _Drop(code, was_live, reason, exc)

    def _handle(self, raw: str | bytes) -> str | None:
        """Apply one frame; returns its type when it is a control message the session must act on."""
        try:
            msg = orjson.loads(raw)
        except orjson.JSONDecodeError:
            self.ignored += 1
            return None
        if not isinstance(msg, dict):
            self.ignored += 1
            return None
        kind = msg.get("type")
        ident = msg.get("id")
        if kind == "hello":
            if _is_id(ident):
                assert isinstance(ident, int)
                if self.last_id is None:
                    self.last_id = ident
                elif ident < self.last_id:
                    self.on_notice(f"the server's feed started over (its newest id is {ident}, we had {self.last_id})")
                    self.last_id = ident
            return "hello"
        if kind == "ping":
            return "ping"
        if kind not in FEED_KINDS or not _is_id(ident):
            self.ignored += 1
            return None
        assert isinstance(ident, int)
        if self.last_id is not None and ident <= self.last_id:
            self.duplicates += 1
            return None
        try:
            message = FeedMessage.model_validate(msg)
        except ValidationError:
            self.ignored += 1
            return None
        self.last_id = ident
        self.delivered += 1
        self.on_message(message, msg)
        return None
