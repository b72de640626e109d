"""Memory of the API with N idle live-feed subscribers: the server's RSS before and after.

Starts `cidash serve --role api --no-migrate` over a temporary SQLite database (as `cidash serve`
runs it: uvicorn, permessage-deflate off, the in-process bus), opens N websocket clients to
/api/v1/ws from this process (each subscribed to everything, then silent apart from answering
the server's pings), waits for the server to settle and reads its RSS from /proc. The clients
use `websockets` with small queues and no compression, so that this process stays light too.

Usage: .venv/bin/python benchmarks/ws_idle_rss.py [--clients 10000]
Target (issue 4): < 1 GiB with 10,000 idle subscribers.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import tempfile
import time
from pathlib import Path

from websockets.asyncio.client import ClientConnection, connect

from bench_server import api_server, raise_fd_limit, rss_mib
from cidash.store.migrate import upgrade

TARGET_MIB = 1024.0
CONNECT_PARALLEL = 100


async def subscriber(url: str, ready: asyncio.Event, opened: list[ClientConnection]) -> None:
    """One idle subscriber: connect, read the hello, then only answer pings until closed."""
    socket = await connect(url, compression=None, max_queue=4, open_timeout=120, ping_interval=None)
    opened.append(socket)
    await socket.recv()  # hello
    ready.set()
    with contextlib.suppress(Exception):
        async for raw in socket:
            if isinstance(raw, str) and raw.startswith('{"type":"ping"'):
                await socket.send('{"type":"pong"}')


async def open_clients(url: str, count: int) -> tuple[list[ClientConnection], list[asyncio.Task[None]]]:
    gate = asyncio.Semaphore(CONNECT_PARALLEL)
    opened: list[ClientConnection] = []

    async def one() -> None:
        ready = asyncio.Event()
        async with gate:
            task = asyncio.create_task(subscriber(f"{url}?kinds=run,alert,state", ready, opened))
            tasks.append(task)
            waiter = asyncio.create_task(ready.wait())
            await asyncio.wait([waiter, task], return_when=asyncio.FIRST_COMPLETED)
            waiter.cancel()
            if task.done():
                task.result()  # raises the connection error

    tasks: list[asyncio.Task[None]] = []
    await asyncio.gather(*(one() for _ in range(count)))
    return opened, tasks


async def bench(clients: int, settle_s: float, tmp: Path) -> bool:
    database_url = f"sqlite+aiosqlite:///{tmp / 'cidash.db'}"
    await upgrade(database_url)
    async with api_server(database_url) as server:
        await asyncio.sleep(1.0)
        before = rss_mib(server.pid)
        started = time.perf_counter()
        sockets, tasks = await open_clients(server.ws_url, clients)
        opened_s = time.perf_counter() - started
        await asyncio.sleep(settle_s)
        after = rss_mib(server.pid)
        for socket in sockets:
            await socket.close()
        await asyncio.gather(*tasks, return_exceptions=True)
    per_client_kib = (after - before) * 1024 / clients if clients else 0.0
    met = after < TARGET_MIB
    print(f"command: {' '.join(sys.argv)}")
    print(f"{'subscribers':>11} {'connect':>9} {'RSS idle':>10} {'RSS with clients':>17} {'per client':>11}")
    print(f"{clients:>11} {opened_s:>8.1f}s {before:>7.0f}MiB {after:>14.0f}MiB {per_client_kib:>8.1f}KiB")
    print(f"target RSS < {TARGET_MIB:.0f} MiB: {'met' if met else 'NOT met'}")
    return met


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=10_000)
    parser.add_argument("--settle", type=float, default=5.0, help="seconds to wait before reading the RSS")
    opts = parser.parse_args()
    limit = raise_fd_limit(2 * opts.clients + 1024)  # the server (a child: it inherits it) and the clients
    if limit < opts.clients + 256:
        parser.error(f"the open-file limit is {limit}: too low for {opts.clients} clients")
    with tempfile.TemporaryDirectory(prefix="cidash-rss-") as tmp:
        return 0 if asyncio.run(bench(opts.clients, opts.settle, Path(tmp))) else 1


if __name__ == "__main__":
    raise SystemExit(main())
