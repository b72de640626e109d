"""What the API benchmarks share: `cidash serve --role api` in a subprocess, its RSS, the fd limit."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import resource
import sys
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Server:
    url: str  # http://127.0.0.1:PORT
    pid: int

    @property
    def ws_url(self) -> str:
        return "ws" + self.url.removeprefix("http") + "/api/v1/ws"


@contextlib.asynccontextmanager
async def api_server(database_url: str, **settings: str) -> AsyncIterator[Server]:
    """`cidash serve --role api --no-migrate` on a free loopback port. `settings` are extra
    `CIDASH_*` variables (e.g. ``REDIS_URL=...``)."""
    env = {
        **os.environ,
        "CIDASH_DATABASE_URL": database_url,
        "CIDASH_API__HOST": "127.0.0.1",
        "CIDASH_API__PORT": "0",
        **{f"CIDASH_{name.upper()}": value for name, value in settings.items()},
    }
    cidash = Path(sys.executable).parent / "cidash"
    with tempfile.TemporaryDirectory() as cwd:  # no cidash.toml of the working tree
        proc = await asyncio.create_subprocess_exec(
            str(cidash), "serve", "--role", "api", "--no-migrate", cwd=cwd, env=env, stderr=asyncio.subprocess.PIPE
        )
        try:
            url = await _announced_url(proc)
            drain = asyncio.create_task(_drain(proc))  # keep its stderr pipe from filling up
            try:
                yield Server(url, proc.pid)
            finally:
                drain.cancel()
        finally:
            if proc.returncode is None:
                proc.terminate()
                await proc.wait()


async def _announced_url(proc: asyncio.subprocess.Process) -> str:
    assert proc.stderr is not None
    async with asyncio.timeout(60):
        while True:
            line = (await proc.stderr.readline()).decode(errors="replace")
            if not line:
                raise RuntimeError("cidash serve exited before announcing its API port")
            if match := re.search(r"API on (http://[^/\s]+)/", line):
                return match.group(1)


async def _drain(proc: asyncio.subprocess.Process) -> None:
    assert proc.stderr is not None
    while line := await proc.stderr.readline():
        sys.stderr.write("server: " + line.decode(errors="replace"))


def rss_mib(pid: int) -> float:
    """Resident set size of a process (Linux /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far (Linux /proc, clock-tick resolution)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def raise_fd_limit(wanted: int) -> int:
    """Raise this process's open-file limit towards `wanted` (children inherit it); returns it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def quantile(samples: list[float], q: float) -> float:
    """Nearest-rank quantile (0 when there are no samples)."""
    if not samples:
        return 0.0
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, max(0, int(q * len(ordered) + 0.999999) - 1))]
