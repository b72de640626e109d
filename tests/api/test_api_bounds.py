"""Every bound of the API, each reproduced as the attack that found it (issue 16).

Against a real `cidash serve` subprocess: an anonymous 512 MiB PATCH is refused with 401 before a
byte of it is read, an authorised one declaring 512 MiB gets 413, one sent chunked without a length
gets 413 once it passes ``api.max_body_bytes``, and the server's peak RSS (VmHWM) stays within a
few MiB of what it was before each; websocket ``since`` values that cannot be feed ids close the
socket with 4022; the live-client cap closes the next socket with 1013 and answers SSE with 503.

In process, on both engines: ids and cursors past 2^63 - 1, year-1 and year-9999 dates with
extreme offsets, a 5,000-digit Last-Event-ID, and the CSV export of a bad cursor are 422s with a
message; badges, their cache header and /readyz follow the read token; the CSP's connect-src is
the page's own host.
"""

from __future__ import annotations

import asyncio
import base64
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from pydantic import SecretStr
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from cidash.api import create_app
from cidash.api import sse as sse_feed
from cidash.api import ws as ws_feed
from cidash.api.app import content_security_policy
from cidash.api.live_slots import CLOSE_TRY_AGAIN
from cidash.config import ApiConfig, Settings
from cidash.domain.views import ServerStatus
from cidash.store import Store
from tests.support.store_fixtures import ZUUL, observed, parsed
from tests.support.wait import until_awaited

pytestmark = pytest.mark.timeout(120)

WRITE = "write-secret"
READ = "read-secret"
BODY_LIMIT = 65_536
LIVE_CLIENTS = 3
HUGE = "9" * 5000
ATTACK_BYTES = 512 << 20
RSS_GROWTH_LIMIT_MIB = 24  # the 512 MiB body took the RSS from 118 to 1,143 MiB before the guard
CHUNK = b"x" * (1 << 20)


@dataclass
class Served:
    process: subprocess.Popen[str]
    port: int

    def memory_mib(self, key: str) -> float:
        """VmRSS (now) or VmHWM (the peak since start) of the server process, in MiB."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024
        raise AssertionError(f"no {key} in /proc/{self.process.pid}/status")


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """`cidash serve --role api` on a free port, with both tokens, a 64 KiB body limit and room
    for three live clients."""
    directory = tmp_path_factory.mktemp("serve")
    config = directory / "cidash.toml"
    config.write_text(
        f'database_url = "sqlite+aiosqlite:///{directory / "cidash.db"}"\n'
        f'role = "api"\n[api]\nport = 0\nwrite_token = "{WRITE}"\nread_token = "{READ}"\n'
        f"max_body_bytes = {BODY_LIMIT}\nmax_live_clients = {LIVE_CLIENTS}\n"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", "from cidash.cli import main; main()", "--config", str(config), "serve"],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stderr is not None
        port = None
        for line in process.stderr:  # ends at EOF if serve exits
            found = re.search(r"API on http://127\.0\.0\.1:(\d+)/", line)
            if found:
                port = int(found.group(1))
                break
        assert port is not None, f"cidash serve did not start (exit {process.poll()})"
        yield Served(process, port)
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _response(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """Read one HTTP/1.1 response with a Content-Length (the server closes after it)."""
    sock.settimeout(20)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"connection closed before a response: {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {name.lower(): value.strip() for name, _, value in (line.partition(":") for line in lines[1:])}
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return int(lines[0].split()[1]), headers, body


def _send_until_refused(sock: socket.socket, total: int, *, chunked: bool) -> int:
    """Send up to `total` body bytes; stop when the server stops taking them. Returns bytes sent."""
    sock.settimeout(5)  # the server stops reading once it has answered: sendall then blocks
    sent = 0
    try:
        while sent < total:
            sock.sendall(b"%x\r\n%s\r\n" % (len(CHUNK), CHUNK) if chunked else CHUNK)
            sent += len(CHUNK)
    except (BrokenPipeError, ConnectionResetError, TimeoutError):
        pass
    return sent


def _attack(served: Served, headers: str, *, chunked: bool) -> tuple[int, dict[str, str], bytes, float]:
    """A PATCH with a 512 MiB body sent as fast as the server takes it; the answer and the
    growth of the server's peak RSS."""
    before = served.memory_mib("VmRSS")
    framing = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {ATTACK_BYTES}"
    with socket.create_connection(("127.0.0.1", served.port)) as sock:
        sock.sendall(
            f"PATCH /api/v1/systems/zuul HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"{headers}{framing}\r\n\r\n".encode()
        )
        sent = _send_until_refused(sock, ATTACK_BYTES, chunked=chunked)
        status, response_headers, body = _response(sock)
    assert sent < ATTACK_BYTES, "the server read the whole 512 MiB body"
    return status, response_headers, body, served.memory_mib("VmHWM") - before


def test_anonymous_huge_patch_is_refused_before_its_body_is_read(served: Served) -> None:
    started = time.monotonic()
    status, headers, body, growth = _attack(served, "", chunked=False)
    assert status == 401
    detail = orjson.loads(body)["detail"]
    assert "Authorization: Bearer <api.write_token>" in detail
    assert "?token=" not in detail, "writes never take ?token="
    assert headers["www-authenticate"] == "Bearer"
    assert growth < RSS_GROWTH_LIMIT_MIB, f"peak RSS grew by {growth:.0f} MiB"
    assert time.monotonic() - started < 10


def test_write_token_in_the_query_does_not_open_writes(served: Served) -> None:
    with socket.create_connection(("127.0.0.1", served.port)) as sock:
        sock.sendall(
            f"PATCH /api/v1/systems/zuul?token={WRITE} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            "Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{}".encode()
        )
        status, _, body = _response(sock)
    assert status == 401
    assert "?token=" not in orjson.loads(body)["detail"]


def test_authorised_patch_declaring_a_huge_body_gets_413(served: Served) -> None:
    status, _, body, growth = _attack(served, f"Authorization: Bearer {WRITE}\r\n", chunked=False)
    assert status == 413
    detail = orjson.loads(body)["detail"]
    assert detail == (
        f"request body too large: {ATTACK_BYTES:,} bytes; the limit is {BODY_LIMIT:,} bytes (api.max_body_bytes)"
    )
    assert growth < RSS_GROWTH_LIMIT_MIB, f"peak RSS grew by {growth:.0f} MiB"


def test_authorised_chunked_body_is_cut_at_the_limit(served: Served) -> None:
    status, _, body, growth = _attack(served, f"Authorization: Bearer {WRITE}\r\n", chunked=True)
    assert status == 413
    assert orjson.loads(body)["detail"] == (
        "request body too large: more than the limit of 65,536 bytes (api.max_body_bytes)"
    )
    assert growth < RSS_GROWTH_LIMIT_MIB, f"peak RSS grew by {growth:.0f} MiB"


def test_a_get_declaring_a_body_over_the_limit_gets_413(served: Served) -> None:
    with socket.create_connection(("127.0.0.1", served.port)) as sock:
        sock.sendall(f"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {BODY_LIMIT + 1}\r\n\r\n".encode())
        status, _, body = _response(sock)
    assert status == 413
    assert "the limit is 65,536 bytes" in orjson.loads(body)["detail"]


# -- the live feed against the real server ---------------------------------------------------------


def _ws_url(served: Served, query: str = "") -> str:
    return f"ws://127.0.0.1:{served.port}/api/v1/ws?token={READ}{query}"


async def _closed_with(ws: ClientConnection, limit_s: float = 10) -> tuple[int, str]:
    """The close code and reason the server ends `ws` with (messages before it are skipped)."""
    try:
        async with asyncio.timeout(limit_s):
            while True:
                await ws.recv()
    except ConnectionClosed as closed:
        assert closed.rcvd is not None, "the connection dropped without a close frame"
        return closed.rcvd.code, closed.rcvd.reason
    raise AssertionError("unreachable")


@pytest.mark.parametrize(
    ("query", "message", "reason"),
    [
        (f"&since={HUGE}", None, "since: a 5000-digit number is out of range (0 to 9223372036854775807)"),
        (f"&since={2**63}", None, "since: 9223372036854775808 is out of range (0 to 9223372036854775807)"),
        ("&since=-1", None, "since: '-1' is not a whole number"),
        ("", {"type": "subscribe", "since": 2**63}, "since: 9223372036854775808 is out of range"),
        ("", f'{{"type":"subscribe","since":{2**64}}}', "since: float is not a whole number"),  # orjson: a float
        ("", f'{{"type":"subscribe","since":{HUGE}}}', "invalid message: not JSON"),
        ("", "[1, 2]", "invalid message: not a JSON object"),
    ],
)
async def test_websocket_since_that_is_no_feed_id_closes_with_4022(
    served: Served, query: str, message: Any, reason: str
) -> None:
    async with connect(_ws_url(served, query)) as ws:
        if message is not None:
            await ws.send(message if isinstance(message, str) else orjson.dumps(message).decode())
        code, text = await _closed_with(ws)
    assert code == ws_feed.CLOSE_INVALID
    assert text.startswith(reason), text


async def test_a_websocket_message_over_the_body_limit_closes_with_1009(served: Served) -> None:
    async with connect(_ws_url(served), max_size=None) as ws:
        await ws.send('{"type":"subscribe","ci":["' + "x" * BODY_LIMIT + '"]}')
        code, _ = await _closed_with(ws)
    assert code == 1009  # message too big


async def _live_clients(base: str) -> float:
    """The server's own count of its live clients (from /metrics)."""
    async with httpx.AsyncClient(base_url=base, timeout=10) as client:
        text = (await client.get("/metrics", params={"token": READ})).text
    return sum(float(line.split()[-1]) for line in text.splitlines() if line.startswith("cidash_websocket_clients{"))


async def test_live_clients_are_capped_with_a_clear_close_code_and_status(served: Served) -> None:
    base = f"http://127.0.0.1:{served.port}"

    async def none_counted() -> bool:  # the other tests' sockets are counted out as the server sees them close
        return await _live_clients(base) == 0

    await until_awaited(none_counted, 10, "the live clients of earlier tests to be counted out")
    sockets = [await connect(_ws_url(served, "&since=0")) for _ in range(LIVE_CLIENTS)]
    try:
        for ws in sockets:
            assert orjson.loads(await ws.recv())["type"] == "hello"
        async with connect(_ws_url(served)) as refused:
            code, reason = await _closed_with(refused)
        assert code == CLOSE_TRY_AGAIN
        assert reason == f"too many live clients (api.max_live_clients = {LIVE_CLIENTS}); try again later"
        async with httpx.AsyncClient(base_url=base, timeout=10) as client:
            sse = await client.get("/api/v1/events", headers={"Authorization": f"Bearer {READ}"})
        assert sse.status_code == 503 and sse.headers["retry-after"] == str(sse_feed.SSE_RETRY_AFTER_S)
        assert sse.json()["detail"] == reason
        await sockets.pop().close()
        deadline = time.monotonic() + 10
        while True:  # the server counts the closed socket out as soon as it sees the close
            async with connect(_ws_url(served)) as again:
                await again.send('{"type":"subscribe"}')
                try:
                    first = orjson.loads(await asyncio.wait_for(again.recv(), 5))
                except ConnectionClosed:
                    assert time.monotonic() < deadline, "the freed slot was never given out"
                    await asyncio.sleep(0.05)
                    continue
                assert first["type"] == "hello"
                break
    finally:
        for ws in sockets:
            await ws.close()


# -- in process, on both engines -------------------------------------------------------------------


def _settings(store: Store, **api: Any) -> Settings:
    return Settings(database_url=str(store.engine.url), api=ApiConfig(**api))


def _client(store: Store, tmp_path: Path, **api: Any) -> httpx.AsyncClient:
    app = create_app(
        _settings(store, **api),
        store,
        status=lambda: STATUSES,
        frontend_dir=tmp_path / "none",
    )
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://cidash.test")


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _runs_cursor(moment: str, run_id: int) -> str:
    return _b64(f'{{"t":"{moment}","id":{run_id}}}'.encode())  # orjson cannot write ids past 2^64


SQLITE_ONLY = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # nothing engine-specific to prove
NOW = datetime.now(UTC).isoformat()
YEAR_1_EAST = "0001-01-01T00:00:00%2B14:00"  # +14:00, before year 1 in UTC
YEAR_9999_WEST = "9999-12-31T23:59:59-14:00"  # after year 9999 in UTC
OUT_OF_RANGE_GETS = {
    f"/api/v1/alerts?cursor={_b64(f'a:{2**63}'.encode())}": "cursor",
    f"/api/v1/alerts?cursor={_b64(f'a:{HUGE[:40]}'.encode())}": "cursor",
    f"/api/v1/alerts?from={YEAR_1_EAST}": "out of range (years 1970 to 9998, in UTC)",
    f"/api/v1/alerts?to={YEAR_9999_WEST}": "out of range (years 1970 to 9998, in UTC)",
    f"/api/v1/runs?cursor={_runs_cursor(NOW, 2**63)}": "cursor",
    f"/api/v1/runs?cursor={_runs_cursor(NOW, 0)}": "cursor",
    f"/api/v1/runs?cursor={_runs_cursor('0001-01-01T00:00:00+14:00', 5)}": "cursor",
    f"/api/v1/runs?format=csv&cursor={_runs_cursor(NOW, 2**63)}": "cursor",
    f"/api/v1/systems/zuul/runs?format=csv&cursor={_runs_cursor(NOW, int(HUGE[:30]))}": "cursor",
    f"/api/v1/runs?from={YEAR_1_EAST}": "from: 0001-01-01T00:00:00+14:00 is out of range",
    f"/api/v1/runs?to={YEAR_9999_WEST}": "to: 9999-12-31T23:59:59-14:00 is out of range",
    f"/api/v1/systems/zuul/series?from={YEAR_1_EAST}": "from",
    f"/api/v1/runs/{2**63}": "run_id",
    f"/api/v1/runs/{HUGE}": "run_id",
    f"/api/v1/events?since={2**63}": "since",
    f"/api/v1/events?since={HUGE}": "since",
}


async def test_huge_numbers_and_dates_are_422_with_a_message(with_zuul: tuple[Store, Path]) -> None:
    store, tmp_path = with_zuul
    async with _client(store, tmp_path, write_token=SecretStr(WRITE)) as client:
        for path, words in OUT_OF_RANGE_GETS.items():
            response = await client.get(path)
            assert response.status_code == 422, (path, response.status_code, response.text[:200])
            assert words in response.json()["detail"], (path, response.json())
        writer = {"Authorization": f"Bearer {WRITE}"}
        for verb in ("ack", "unack", "unsilence"):
            for number in (str(2**63), HUGE, "0"):
                response = await client.post(f"/api/v1/incidents/{number}/{verb}", headers=writer, json={"author": "a"})
                assert response.status_code == 422, (verb, number[:20], response.text[:200])
                assert "incident_id" in response.json()["detail"]
            missing = await client.post(f"/api/v1/incidents/{2**63 - 1}/{verb}", headers=writer, json={"author": "a"})
            assert missing.status_code == 404, "the largest id is valid, just not there"
        huge_get = await client.get(f"/api/v1/incidents/{HUGE}")
        assert huge_get.status_code == 422 and "incident_id" in huge_get.json()["detail"]
        for header in (HUGE, str(2**63), "12abc"):
            response = await client.get("/api/v1/events", headers={"Last-Event-ID": header})
            assert response.status_code == 422, response.text[:200]
            assert response.json()["detail"].startswith("Last-Event-ID: ")
        assert (await client.get("/api/v1/events", headers={"Last-Event-ID": HUGE})).json()["detail"] == (
            "Last-Event-ID: a 5000-digit number is out of range (0 to 9223372036854775807)"
        )
        csv = await client.get(f"/api/v1/runs?format=csv&cursor={_runs_cursor(NOW, 2**63)}")
        assert csv.headers["content-type"].startswith("application/json"), "no CSV that stops after its header"


STATUSES = [
    ServerStatus(
        name="review",
        stream_connected=False,
        last_backfill_at=None,
        last_error="ConnectError: http://gerrit.internal:8080/a/changes/ refused",
        fatal=None,
    )
]


@SQLITE_ONLY
async def test_readyz_shows_status_words_without_the_read_token(store: Store, tmp_path: Path) -> None:
    async with _client(store, tmp_path, read_token=SecretStr(READ)) as client:
        anonymous = await client.get("/readyz")
        assert anonymous.status_code == 200
        assert anonymous.json() == {"status": "ready", "database": "up", "collectors": "degraded"}
        assert "gerrit.internal" not in anonymous.text
        wrong = await client.get("/api/v1/readyz", headers={"Authorization": "Bearer nope"})
        assert wrong.json() == anonymous.json()
        full = await client.get("/readyz", headers={"Authorization": f"Bearer {READ}"})
        assert full.json()["servers"][0]["last_error"] == STATUSES[0].last_error
    async with _client(store, tmp_path) as open_reads:  # no read token: the details are open like every read
        assert (await open_reads.get("/readyz")).json()["servers"][0]["name"] == "review"


@SQLITE_ONLY
async def test_badges_need_the_read_token_unless_public_and_only_public_ones_are_cacheable(
    store: Store, tmp_path: Path
) -> None:
    path = "/api/v1/badge/zuul.svg"  # unknown CI: 404 once past the token check
    async with _client(store, tmp_path, read_token=SecretStr(READ)) as client:
        assert (await client.get(path)).status_code == 401
        assert (await client.get(path, params={"token": READ})).status_code == 404
    async with _client(store, tmp_path, read_token=SecretStr(READ), public_badges=True) as client:
        assert (await client.get(path)).status_code == 404
        assert (await client.get("/api/v1/systems")).status_code == 401, "public badges open nothing else"


@SQLITE_ONLY
async def test_badge_cache_header(with_zuul: tuple[Store, Path]) -> None:
    store, tmp_path = with_zuul
    path = "/api/v1/badge/zuul.svg"
    async with _client(store, tmp_path, read_token=SecretStr(READ)) as client:
        private = await client.get(path, headers={"Authorization": f"Bearer {READ}"})
        assert private.status_code == 200 and private.headers["cache-control"] == "private, max-age=60"
    async with _client(store, tmp_path, read_token=SecretStr(READ), public_badges=True) as client:
        public = await client.get(path)
        assert public.status_code == 200 and public.headers["cache-control"] == "public, max-age=60"
    async with _client(store, tmp_path) as client:
        assert (await client.get(path)).headers["cache-control"] == "public, max-age=60"


@pytest.fixture
async def with_zuul(store: Store, tmp_path: Path) -> tuple[Store, Path]:
    """A store with one run of Zuul, so that its system, runs and badge exist."""
    await store.write_comments([(observed("Build succeeded.", author=ZUUL), parsed(result="SUCCESS", ci="zuul"))])
    return store, tmp_path


def test_csp_connect_src_is_the_pages_own_host() -> None:
    assert content_security_policy("dash.example.org:8443").endswith(
        "connect-src 'self' ws://dash.example.org:8443 wss://dash.example.org:8443"
    )
    assert content_security_policy("[::1]:8080").endswith("connect-src 'self' ws://[::1]:8080 wss://[::1]:8080")
    for hostile in ("evil.example; script-src *", "a b", "", None):
        assert content_security_policy(hostile).endswith("connect-src 'self'"), hostile
    assert "ws: " not in content_security_policy("x") and "wss: " not in content_security_policy("x")


@SQLITE_ONLY
async def test_csp_header_names_the_requested_host(store: Store, tmp_path: Path) -> None:
    async with _client(store, tmp_path) as client:
        response = await client.get("/", headers={"Host": "dash.example.org"})
    assert response.headers["content-security-policy"] == content_security_policy("dash.example.org")
    assert (
        "connect-src 'self' ws://dash.example.org wss://dash.example.org" in response.headers["content-security-policy"]
    )
