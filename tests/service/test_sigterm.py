"""`cidash serve` ends within a few seconds of SIGTERM, every time: during a backfill (Gerrit's REST
trickling its answer), during a stream reconnect (SSH refused), and during a database outage (a
proxy in front of MariaDB that stops answering), ten times in a row."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.loopback_http import loopback_server, trickled_gerrit_answer
from tests.support.store_fixtures import _create_mysql_database, _drop_mysql_database
from tests.support.wait import until_blocking

pytestmark = pytest.mark.timeout(300)

EXIT_WITHIN_S = 8.0  # a service manager's stop timeout is commonly 10-90 s; cidash's own bound is 5 s


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LoopThread:
    """An event loop in a thread, for the hostile peers while the test waits on a child process."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()

    def run(self, coro: object, timeout: float = 10) -> object:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)  # type: ignore[arg-type]

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)


@pytest.fixture
def loop_thread() -> Iterator[LoopThread]:
    thread = LoopThread()
    try:
        yield thread
    finally:
        thread.close()


class Proxy:
    """TCP proxy to MariaDB that can black-hole: connections stay open, nothing gets through."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = 0
        self.dead = False
        self._server: asyncio.Server | None = None
        self._transports: list[asyncio.StreamWriter] = []
        self._closing = asyncio.Event()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._transports.append(writer)
        if self.dead:
            await self._closing.wait()  # accepted, never answered
            return
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        self._transports.append(up_writer)

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            with contextlib.suppress(ConnectionError):
                while data := await source.read(65536):
                    if self.dead:  # hold everything from now on: a hung server, not a refused one
                        await self._closing.wait()
                        return
                    sink.write(data)
                    await sink.drain()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    async def black_hole(self) -> None:
        self.dead = True

    async def close(self) -> None:
        self._closing.set()
        for writer in self._transports:
            writer.transport.abort()
        if self._server is not None:
            self._server.close()


def _config(workdir: Path, database_url: str, http_url: str) -> Path:
    workdir.mkdir()
    config = workdir / "cidash.toml"
    config.write_text(
        f'database_url = "{database_url}"\n'
        "[api]\nport = 0\n"
        "[[servers]]\n"
        f'name = "g"\nssh_port = {_closed_port()}\nhttp_url = "{http_url}"\n'
        'host_key_fingerprint = "SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"\n'
        "rest_attempts = 2\n"
    )
    return config


class Serve:
    """One `cidash serve` child; its stderr is read in a thread so that waiting never blocks."""

    def __init__(self, config: Path, *args: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", "from cidash.cli import main; main()", "--config", str(config), "serve", *args],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.append(line)

    @property
    def log(self) -> str:
        return "".join(self.lines)

    def wait_for(self, needle: str, timeout_s: float = 60) -> None:
        deadline = time.monotonic() + timeout_s
        while not any(needle in line for line in self.lines):
            assert self.process.poll() is None, f"serve ended early:\n{self.log}"
            assert time.monotonic() < deadline, f"{needle!r} not seen:\n{self.log}"
            time.sleep(0.05)

    def terminate(self) -> float:
        """SIGTERM; seconds until the process has ended (killed, and the test failed, after 30 s)."""
        started = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise AssertionError(f"serve ignored SIGTERM for 30 s:\n{self.log}") from None
        elapsed = time.monotonic() - started
        self._reader.join(5)
        return elapsed

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def _check_clean_exit(serve: Serve, elapsed: float, what: str) -> None:
    assert serve.process.returncode == 0, f"{what}: exit status {serve.process.returncode}\n{serve.log}"
    assert elapsed < EXIT_WITHIN_S, f"{what}: {elapsed:.1f} s after SIGTERM\n{serve.log}"
    assert "Traceback" not in serve.log, serve.log


def _run_rounds(serves: list[Serve], ready: list[object], what: str) -> list[float]:
    """SIGTERM each child once its condition holds (a callable, or a line to wait for)."""
    times = []
    try:
        for serve, condition in zip(serves, ready, strict=True):
            serve.wait_for("cidash: collecting from")
            if callable(condition):
                condition()
            elapsed = serve.terminate()
            _check_clean_exit(serve, elapsed, what)
            times.append(elapsed)
    finally:
        for serve in serves:
            serve.kill()
    print(f"exit after SIGTERM {what} (s):", [round(t, 2) for t in times])
    return times


def test_sigterm_during_a_backfill_and_during_a_stream_reconnect(tmp_path: Path, loop_thread: LoopThread) -> None:
    serving = loopback_server(trickled_gerrit_answer(1.0))  # keep a reference: collected, it stops serving
    gerrit = loop_thread.run(serving.__aenter__())
    backfilling = 4  # Gerrit's REST trickles: the first backfill pass is under way when SIGTERM comes
    serves = [
        Serve(_config(tmp_path / f"b{n}", f"sqlite+aiosqlite:///{tmp_path / f'b{n}.db'}", gerrit.url))  # type: ignore[attr-defined]
        for n in range(backfilling)
    ]

    def backfill_under_way(count: int) -> object:
        def check() -> None:
            until_blocking(lambda: len(gerrit.requests) >= count, 30, f"{count} backfill requests to reach Gerrit")  # type: ignore[attr-defined]

        return check

    _run_rounds(serves, [backfill_under_way(n + 1) for n in range(backfilling)], "during a backfill")
    # SSH and REST refused: the stream is in its reconnect backoff (its first attempt failed
    # before "collecting from" is printed) and the backfill waits for its retry
    serves = [
        Serve(
            _config(
                tmp_path / f"r{n}", f"sqlite+aiosqlite:///{tmp_path / f'r{n}.db'}", f"http://127.0.0.1:{_closed_port()}"
            )
        )
        for n in range(3)
    ]
    _run_rounds(serves, [None] * 3, "during a stream reconnect")


def test_sigterm_during_a_database_outage(tmp_path: Path, loop_thread: LoopThread) -> None:
    """MariaDB behind a proxy that stops passing anything on (the nastier outage: nothing is
    refused, every query and every new connection just hangs)."""
    from cidash.store.migrate import upgrade

    name, url = asyncio.run(_create_mysql_database())
    try:
        asyncio.run(upgrade(url))
        target = int(url.rsplit("@", 1)[1].split("/")[0].rpartition(":")[2] or 3306)
        proxies = [Proxy(target) for _ in range(3)]
        for proxy in proxies:
            loop_thread.run(proxy.start())
        host = url.rsplit("@", 1)[1].split("/")[0]
        serves = [
            Serve(
                _config(
                    tmp_path / f"o{n}",
                    url.replace(host, f"127.0.0.1:{proxy.port}"),
                    f"http://127.0.0.1:{_closed_port()}",
                ),
                "--no-migrate",
            )
            for n, proxy in enumerate(proxies)
        ]

        def outage(proxy: Proxy) -> object:
            def cut() -> None:
                loop_thread.run(proxy.black_hole())
                time.sleep(0.5)  # the replica's polls and writes are now hanging

            return cut

        try:
            _run_rounds(serves, [outage(proxy) for proxy in proxies], "during a database outage")
        finally:
            for proxy in proxies:
                loop_thread.run(proxy.close())
    finally:
        asyncio.run(_drop_mysql_database(name))
