"""`cidash serve` replicas as real processes (so that they can be killed with SIGKILL), and the
TOML file they read.

PYTEST_DONT_REWRITE
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx

from tests.support.processes import end_process

CIDASH = Path(sys.executable).with_name("cidash")
READY_LIMIT_S = 60.0

TomlValue = str | int | float | bool | Sequence[str]


def _toml_value(value: TomlValue) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a valid TOML basic string
    return "[" + ", ".join(json.dumps(item) for item in value) + "]"


def _toml_pairs(table: Mapping[str, TomlValue]) -> list[str]:
    return [f"{key} = {_toml_value(value)}" for key, value in table.items()]


def to_toml(
    top: Mapping[str, TomlValue],
    tables: Mapping[str, Mapping[str, TomlValue]],
    arrays: Mapping[str, Sequence[Mapping[str, TomlValue]]],
) -> str:
    """Just enough TOML for a cidash config: keys, [tables] and [[arrays of tables]]."""
    lines = _toml_pairs(top)
    for name, table in tables.items():
        lines += ["", f"[{name}]", *_toml_pairs(table)]
    for name, items in arrays.items():
        for item in items:
            lines += ["", f"[[{name}]]", *_toml_pairs(item)]
    return "\n".join(lines) + "\n"


class Replica:
    """One `cidash serve` process: its own config file (API port), log file and lifecycle."""

    def __init__(self, name: str, directory: Path, port: int) -> None:
        self.name = name
        self.port = port
        self.config = directory / f"{name}.toml"
        self.log = directory / f"{name}.log"
        self.starts = 0
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/api/v1/ws"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> None:
        assert not self.running, f"{self.name} is running already"
        env = {key: value for key, value in os.environ.items() if not key.startswith("CIDASH_")}
        command = [str(CIDASH), "--config", str(self.config), "--log-level", "info", "serve", "--no-migrate"]
        with self.log.open("ab") as log:
            log.write(f"\n==== start {self.starts + 1} ====\n".encode())
            log.flush()
            self._process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
        self.starts += 1

    async def wait_ready(self, limit_s: float = READY_LIMIT_S) -> None:
        """Until the API answers (the process has started its runtime)."""
        deadline = asyncio.get_running_loop().time() + limit_s
        async with httpx.AsyncClient(base_url=self.url, timeout=2) as client:
            while True:
                if not self.running:
                    raise AssertionError(f"replica {self.name} exited; see {self.log}")
                try:
                    if (await client.get("/healthz")).status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                if asyncio.get_running_loop().time() > deadline:
                    raise AssertionError(f"replica {self.name} did not start in {limit_s} s; see {self.log}")
                await asyncio.sleep(0.2)

    async def servers(self) -> list[dict[str, Any]] | None:
        """The servers this replica collects now (from /readyz); None when it does not answer."""
        if not self.running:
            return None
        try:
            async with httpx.AsyncClient(base_url=self.url, timeout=5) as client:
                body = (await client.get("/readyz")).json()  # 503 while the database is down: same body
        except (httpx.HTTPError, ValueError):
            return None
        servers = body.get("servers") if isinstance(body, dict) else None
        return servers if isinstance(servers, list) else None

    def kill(self) -> None:
        """SIGKILL: no clean-up at all (the collector's database connections die with it)."""
        self._signal(signal.SIGKILL)

    def stop(self) -> None:
        self._signal(signal.SIGTERM)

    def _signal(self, sig: signal.Signals) -> None:
        process, self._process = self._process, None
        end_process(process, sig, timeout_s=20)
