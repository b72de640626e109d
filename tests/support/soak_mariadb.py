"""A private MariaDB server that a test may kill and restart (the machine's shared one must stay up).

`PrivateMariaDB(root)`: ``install()`` once (mariadb-install-db into ``root/data``), then ``start()``,
``restart()`` (SIGKILL, like a crash, then start again on the same port and data directory) and
``stop()``. Missing MariaDB binaries fail the test: the soak must not silently skip.

PYTEST_DONT_REWRITE
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import warnings
from pathlib import Path

import aiomysql
import pytest

from tests.support.processes import end_process

SERVER_BINARY = "/usr/sbin/mariadbd"
INSTALL_BINARY = "mariadb-install-db"
START_LIMIT_S = 60.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _binary(name: str) -> str:
    found = shutil.which(name) or (name if os.access(name, os.X_OK) else None)
    if found is None:
        pytest.fail(f"{name} is missing: install MariaDB (apt-get install mariadb-server)", pytrace=False)
    return found


def _as_root() -> list[str]:
    """mariadbd refuses to run as root unless told to (fresh CI machines run everything as root)."""
    return ["--user=root"] if os.geteuid() == 0 else []


class PrivateMariaDB:
    def __init__(self, root: Path, database: str = "cidash") -> None:
        self.root = root
        self.database = database
        self.port = free_port()
        self.restarts = 0
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def datadir(self) -> Path:
        return self.root / "data"

    @property
    def url(self) -> str:
        return f"mysql+aiomysql://root@127.0.0.1:{self.port}/{self.database}"

    def install(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        command = [
            _binary(INSTALL_BINARY),
            "--no-defaults",
            f"--datadir={self.datadir}",
            "--auth-root-authentication-method=normal",
            "--skip-test-db",
            *_as_root(),
        ]
        result = subprocess.run(command, capture_output=True, check=False)
        if result.returncode != 0:
            pytest.fail(f"mariadb-install-db failed: {result.stderr.decode(errors='replace')[-2000:]}", pytrace=False)

    async def start(self) -> None:
        self._spawn()
        await self._until_accepting()

    def _spawn(self) -> None:
        # flush at commit to the OS, not the disk: a killed server loses nothing, and it is fast
        command = [
            _binary(SERVER_BINARY),
            "--no-defaults",
            f"--datadir={self.datadir}",
            f"--socket={self.root / 'sock'}",
            f"--pid-file={self.root / 'mariadbd.pid'}",
            f"--log-error={self.root / 'error.log'}",
            f"--port={self.port}",
            "--bind-address=127.0.0.1",
            "--skip-grant-tables",
            "--skip-name-resolve",
            "--max-connections=400",
            "--innodb-buffer-pool-size=256M",
            "--innodb-flush-log-at-trx-commit=2",
            *_as_root(),
        ]
        self._process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    async def _until_accepting(self) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + START_LIMIT_S
        while True:
            assert self._process is not None
            if self._process.poll() is not None:
                pytest.fail(f"mariadbd exited with {self._process.returncode}; see {self.root / 'error.log'}")
            try:
                await self.execute(f"CREATE DATABASE IF NOT EXISTS `{self.database}` CHARACTER SET utf8mb4")
                return
            except Exception:
                if loop.time() > deadline:
                    raise
                await asyncio.sleep(0.1)

    async def execute(self, sql: str) -> None:
        conn = await aiomysql.connect(host="127.0.0.1", port=self.port, user="root", connect_timeout=2)
        try:
            async with conn.cursor() as cursor:
                with warnings.catch_warnings():  # "database exists" after a restart
                    warnings.simplefilter("ignore")
                    await cursor.execute(sql)
            await conn.commit()
        finally:
            await conn.ensure_closed()

    def kill(self, sig: signal.Signals = signal.SIGKILL) -> None:
        process, self._process = self._process, None
        end_process(process, sig, timeout_s=30)

    async def restart(self) -> None:
        """Crash (SIGKILL) and start again: every client loses its connections and locks."""
        self.kill()
        self.restarts += 1
        await self.start()

    def stop(self) -> None:
        self.kill(signal.SIGTERM)
