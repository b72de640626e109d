"""`gerrit stream-events` over SSH (asyncssh), kept alive for as long as the collector runs.

Gerrit's stream has no heartbeat, no cursor and no replay, so this client only promises to
hand over every byte it receives, framed into lines, and to say when the link was (re)made;
the collector backfills whatever was missed. Reconnects use exponential backoff with full
jitter (capped at 60 s); SSH keepalives and a watchdog catch a link that died silently.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import asyncssh

from cidash.config import GerritServer
from cidash.errors import ConfigError
from cidash.gerrit.events import MAX_LINE_BYTES

log = logging.getLogger(__name__)

READ_CHUNK = 1 << 16
BACKOFF_CAP_S = 60.0

LineHandler = Callable[[bytes, float], Awaitable[None]]  # (line without "\n", received_at epoch)
OversizeHandler = Callable[[bytes, int, float], Awaitable[None]]  # (head of the line, full size, received_at)


def full_jitter(base_s: float, failures: int, cap_s: float = BACKOFF_CAP_S) -> float:
    """AWS-style "full jitter": uniform in [0, min(cap, base * 2^failures)]."""
    return random.uniform(0.0, min(cap_s, base_s * 2.0 ** min(failures, 32)))


class _PinnedHostKey(asyncssh.SSHClient):
    """Trust exactly one host key, given by its OpenSSH SHA256 fingerprint."""

    def __init__(self, fingerprint: str) -> None:
        self._fingerprint = fingerprint

    def validate_host_public_key(self, host: str, addr: str, port: int, key: asyncssh.SSHKey) -> bool:
        return bool(key.get_fingerprint("sha256") == self._fingerprint)


def connect_options(server: GerritServer) -> dict[str, Any]:
    """asyncssh.connect keyword arguments for a configured server; checks files up front."""
    options: dict[str, Any] = {
        "host": server.ssh_host,
        "port": server.ssh_port,
        "username": server.ssh_user,
        "keepalive_interval": server.keepalive_s,
        "keepalive_count_max": 3,
        "connect_timeout": 30,
        "login_timeout": 30,
    }
    if server.ssh_key is not None:
        if not server.ssh_key.is_file():
            raise ConfigError(f"server {server.name}: SSH key file not found: {server.ssh_key}")
        options["client_keys"] = [str(server.ssh_key)]
    if server.insecure_host_key:
        log.warning(
            "server %s: host key checking is DISABLED (insecure_host_key); anyone on the path can "
            "impersonate Gerrit. Pin host_key_fingerprint or use known_hosts in production.",
            server.name,
        )
        options["known_hosts"] = None
    elif server.host_key_fingerprint:
        fingerprint = server.host_key_fingerprint
        options["known_hosts"] = ([], [], [])  # trust nothing by list; the pinned check decides
        options["client_factory"] = lambda: _PinnedHostKey(fingerprint)
    elif server.known_hosts is not None:
        if not server.known_hosts.is_file():
            raise ConfigError(f"server {server.name}: known_hosts file not found: {server.known_hosts}")
        options["known_hosts"] = str(server.known_hosts)
    # else: asyncssh checks ~/.ssh/known_hosts and refuses unknown keys
    return options


@dataclass
class StreamStats:
    connected: bool = False
    connects: int = 0
    reconnects: int = 0
    lines: int = 0
    bytes: int = 0
    oversized: int = 0
    last_data_at: float | None = None
    last_error: str | None = None
    subscribed_types: tuple[str, ...] = field(default_factory=tuple)


class LineFramer:
    """Split a byte stream into lines, refusing (but reporting) lines longer than `limit`."""

    def __init__(self, limit: int = MAX_LINE_BYTES) -> None:
        self._limit = limit
        self._buffer = bytearray()
        self._discarding = 0  # bytes of an oversized line seen so far (0: not discarding)
        self._oversize_head = b""

    def feed(self, chunk: bytes) -> tuple[list[bytes], list[tuple[bytes, int]]]:
        """Return (complete lines, [(head, size) of oversized lines that ended in this chunk])."""
        lines: list[bytes] = []
        oversized: list[tuple[bytes, int]] = []
        start = 0
        while True:
            newline = chunk.find(b"\n", start)
            piece = chunk[start:] if newline < 0 else chunk[start:newline]
            if self._discarding:
                self._discarding += len(piece)
            elif len(self._buffer) + len(piece) > self._limit:
                self._oversize_head = bytes(self._buffer[:4096] + piece[: max(0, 4096 - len(self._buffer))])
                self._discarding = len(self._buffer) + len(piece)
                self._buffer.clear()
            else:
                self._buffer += piece
            if newline < 0:
                return lines, oversized
            if self._discarding:
                oversized.append((self._oversize_head, self._discarding))
                self._discarding = 0
                self._oversize_head = b""
            elif self._buffer:
                lines.append(bytes(self._buffer))
                self._buffer.clear()
            start = newline + 1

    def pending(self) -> bytes:
        """An unterminated tail left when the link dropped (a cut-off line)."""
        tail = bytes(self._buffer)
        self._buffer.clear()
        self._discarding = 0
        return tail


class StreamClient:
    """One long-lived `gerrit stream-events` subscription with reconnects."""

    def __init__(
        self,
        server: GerritServer,
        on_line: LineHandler,
        *,
        on_connected: Callable[[bool], Awaitable[None]] | None = None,
        on_disconnected: Callable[[str], Awaitable[None]] | None = None,
        on_oversized: OversizeHandler | None = None,
        subscribe: tuple[str, ...] = (),
        backoff_multiplier_s: float = 1.0,
    ) -> None:
        self._server = server
        self._options = connect_options(server)
        self._on_line = on_line
        self._on_connected = on_connected
        self._on_disconnected = on_disconnected
        self._on_oversized = on_oversized
        self._subscribe = subscribe
        self._backoff_base_s = backoff_multiplier_s
        self._stopping = asyncio.Event()
        self._conn: asyncssh.SSHClientConnection | None = None
        self.stats = StreamStats(subscribed_types=subscribe)

    @property
    def command(self) -> str:
        return " ".join(["gerrit", "stream-events", *(f"-s {kind}" for kind in self._subscribe)])

    async def run(self) -> None:
        """Stream until stop(); never raises for network trouble, only logs and reconnects."""
        failures = 0
        while not self._stopping.is_set():
            reason = "stopped"
            try:
                await self._session()
                failures = 0  # a session that ran cleanly resets the backoff
            except asyncio.CancelledError:
                raise
            except (OSError, asyncssh.Error, TimeoutError, ConnectionError) as exc:
                reason = self.stats.last_error = f"{type(exc).__name__}: {exc}"
                log.warning(
                    "server %s: stream-events from %s:%d failed: %s",
                    self._server.name,
                    self._server.ssh_host,
                    self._server.ssh_port,
                    self.stats.last_error,
                )
            finally:
                was_connected, self.stats.connected = self.stats.connected, False
            if was_connected and self._on_disconnected is not None:
                await self._on_disconnected(reason)
            if self._stopping.is_set():
                break
            failures += 1
            delay = full_jitter(self._backoff_base_s, failures)
            log.info("server %s: reconnecting in %.1f s", self._server.name, delay)
            try:
                await asyncio.wait_for(self._stopping.wait(), timeout=delay)
            except TimeoutError:
                pass

    async def stop(self) -> None:
        self._stopping.set()
        if self._conn is not None:
            self._conn.close()

    async def _session(self) -> None:
        async with asyncssh.connect(**self._options) as conn:
            self._conn = conn
            try:
                process = await conn.create_process(self.command, encoding=None)
                self.stats.connected = True
                self.stats.connects += 1
                first = self.stats.connects == 1
                if not first:
                    self.stats.reconnects += 1
                log.info("server %s: stream-events connected", self._server.name)
                if self._on_connected is not None:
                    await self._on_connected(first)
                await self._pump(process)
            finally:
                self._conn = None

    async def _pump(self, process: asyncssh.SSHClientProcess[bytes]) -> None:
        framer = LineFramer()
        watchdog = self._server.watchdog_s
        while not self._stopping.is_set():
            try:
                chunk = await asyncio.wait_for(process.stdout.read(READ_CHUNK), timeout=watchdog)
            except TimeoutError:
                raise TimeoutError(f"no data for {watchdog:.0f} s (watchdog)") from None
            now = time.time()
            if not chunk:
                tail = framer.pending()
                if tail:  # the link died in the middle of a line: hand it over, it will dead-letter
                    await self._on_line(tail, now)
                stderr = (await process.stderr.read()).decode("utf-8", "replace").strip()
                status = process.exit_status
                if self._stopping.is_set():
                    return
                raise ConnectionError(f"stream ended (exit {status}){': ' + stderr if stderr else ''}")
            self.stats.bytes += len(chunk)
            self.stats.last_data_at = now
            lines, oversized = framer.feed(chunk)
            for head, size in oversized:
                self.stats.oversized += 1
                if self._on_oversized is not None:
                    await self._on_oversized(head, size, now)
            for line in lines:
                self.stats.lines += 1
                await self._on_line(line, now)
