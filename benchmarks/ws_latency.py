"""Event-to-subscriber latency of the live feed: N websocket clients, R events/s through the product's path.

Three processes on loopback:

* the API: `cidash serve --role api --no-migrate` over a temporary SQLite database, with the
  Redis bus (the local Redis, on a channel of its own);
* the publisher (this script with --publisher): a `cidash.service.runtime.Runtime` that does not collect
  and does not serve. Every 20 ms (--batch-ms) it parses a batch of CI comments with the product's parser,
  stores them (`Store.write_comments`: runs, rollups and `run` feed messages in one
  transaction) and publishes them with `Runtime.publish_written` (Redis, then alerts), stamping
  the wall-clock time just before publishing each batch;
* the clients (this process, one asyncio loop): N `websockets` clients on /api/v1/ws, each
  subscribed with a filter (by default one CI each: a dashboard page of one CI system), that
  stamp each message as it arrives.

Latency = arrival - publish stamp, per delivered message. Expected deliveries are counted from
the feed table afterwards (every stored message matching each client's filter), so
"received / expected" shows losses. Both sides' CPU counts: the API, the publisher and the
clients share the machine's cores.

Usage: .venv/bin/python benchmarks/ws_latency.py [--clients 1000] [--rate 500] [--seconds 20] [--filter ci]
Target (issue 4): p99 < 50 ms with 1,000 clients at 500 events/s.
"""

from __future__ import annotations

import argparse
import array
import asyncio
import itertools
import os
import resource
import secrets
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
from websockets.asyncio.client import ClientConnection, connect

from bench_server import api_server, cpu_seconds, quantile, raise_fd_limit
from cidash.config import CISystemConfig, Settings
from cidash.domain.comments import AccountRef, ObservedComment, ObservedPatchSet, Source
from cidash.service.process import freeze_startup_heap, run
from cidash.service.runtime import Runtime
from cidash.store.engine import create_engine
from cidash.store.feed import FeedFilter, messages_since
from cidash.store.migrate import upgrade

TARGET_P99_MS = 50.0
SERVER = "review.example.org"
CIS = [f"bench-ci-{i:02d}" for i in range(40)]
PROJECTS = [f"openstack/project-{i:02d}" for i in range(50)]
CONNECT_PARALLEL = 50


# -- publisher (a second process) ------------------------------------------------------------------


def comment(number: int, now: datetime) -> ObservedComment:
    """A CI result comment, spread round-robin over the CIs and projects."""
    ci = CIS[number % len(CIS)]
    ok = number % 5 != 0
    words = "Build succeeded." if ok else "Build failed."
    job = f"- {ci}-tempest https://logs.example.org/{number}/ : {'SUCCESS' if ok else 'FAILURE'} in 31m 02s"
    return ObservedComment(
        server=SERVER,
        project=PROJECTS[number % len(PROJECTS)],
        branch="master",
        change_number=100_000 + number,
        change_id=f"I{number:040x}",
        patchset=ObservedPatchSet(number=1, created_at=now - timedelta(minutes=30), kind="REWORK"),
        author=AccountRef(username=ci, name=ci),
        posted_at=now,
        message=f"Patch Set 1: Verified{'+1' if ok else '-1'}\n\n{words}\n\n{job}",
        source=Source.STREAM,
    )


def bench_settings(database_url: str, redis_url: str, prefix: str) -> Settings:
    return Settings(
        database_url=database_url,
        redis_url=redis_url,
        redis_prefix=prefix,
        ci=[CISystemConfig(account=name, reference=name == CIS[0]) for name in CIS],
    )


async def publish(settings: Settings, rate: float, seconds: float, batch_s: float, stamps: Path) -> None:
    """Store and publish `rate` comments per second for `seconds` in batches every `batch_s`; write
    "feed_id publish_time" lines."""
    per_batch = max(1, round(rate * batch_s))
    interval = per_batch / rate
    lines: list[str] = []
    numbers = itertools.count()
    async with Runtime(settings, migrate=False, collect=False) as runtime:
        freeze_startup_heap()  # as `cidash serve` does once it is up
        started = time.perf_counter()
        for batch_no in itertools.count():
            due = started + batch_no * interval
            if due - started >= seconds:
                break
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            now = datetime.now(UTC)
            items = [(c, runtime.parser.parse(c)) for c in (comment(next(numbers), now) for _ in range(per_batch))]
            stats = await runtime.store.write_comments(items)
            ids = [m.id for m in stats.after_insert] if isinstance(stats.after_insert, list) else []
            stamp = time.time()
            await runtime.publish_written(stats)
            lines.extend(f"{feed_id} {stamp}" for feed_id in ids)
    stamps.write_text("\n".join(lines) + "\n")


# -- clients (this process) -------------------------------------------------------------------------


@dataclass
class Client:
    query: str
    flt: FeedFilter
    # two flat arrays, not a list of tuples: 250k tuples would make this process's own garbage
    # collections pause it (and so stamp messages late) for 100+ ms
    arrival_ids: array.array[int] = field(default_factory=lambda: array.array("q"))
    arrival_times: array.array[float] = field(default_factory=lambda: array.array("d"))
    hello: int = -1
    error: str | None = None


async def connect_client(url: str, client: Client) -> ClientConnection:
    socket = await connect(f"{url}?{client.query}", compression=None, max_queue=None, open_timeout=60)
    hello = orjson.loads(await socket.recv())
    client.hello = int(hello["id"])
    return socket


async def listen(socket: ClientConnection, client: Client) -> None:
    """Stamp every message on arrival; answer the server's pings (its idle timeout is 45 s)."""
    loads, clock = orjson.loads, time.time
    add_id, add_time = client.arrival_ids.append, client.arrival_times.append
    try:
        async for raw in socket:
            now = clock()
            message = loads(raw)
            if message["type"] == "ping":
                await socket.send('{"type":"pong"}')
            elif "data" in message:
                add_id(message["id"])
                add_time(now)
    except Exception as exc:
        client.error = f"{type(exc).__name__}: {exc}"


def make_clients(count: int, mode: str) -> list[Client]:
    clients = []
    for index in range(count):
        if mode == "ci":
            name = CIS[index % len(CIS)]
            clients.append(Client(f"ci={name}&kinds=run", FeedFilter.of(kinds=["run"], ci=[name])))
        elif mode == "project":
            name = PROJECTS[index % len(PROJECTS)]
            clients.append(Client(f"projects={name}&kinds=run", FeedFilter.of(kinds=["run"], projects=[name])))
        else:
            clients.append(Client("kinds=run", FeedFilter.of(kinds=["run"])))
    return clients


async def open_all(url: str, clients: list[Client]) -> list[ClientConnection]:
    gate = asyncio.Semaphore(CONNECT_PARALLEL)

    async def one(client: Client) -> ClientConnection:
        async with gate:
            return await connect_client(url, client)

    return list(await asyncio.gather(*(one(c) for c in clients)))


async def expected_deliveries(database_url: str, since: int, clients: list[Client]) -> tuple[int, int]:
    """(messages stored after `since`, deliveries the filters call for)."""
    engine = create_engine(database_url)
    try:
        async with engine.connect() as conn:
            stored = await messages_since(conn, since, FeedFilter.of(), limit=10_000_000)
    finally:
        await engine.dispose()
    return len(stored), sum(1 for message in stored for c in clients if c.flt.matches_message(message))


def run_publisher(opts: argparse.Namespace, database_url: str, redis_url: str, prefix: str, stamps: Path) -> int:
    args = [sys.executable, __file__, "--publisher", "--rate", str(opts.rate), "--seconds", str(opts.seconds)]
    args += ["--batch-ms", str(opts.batch_ms)]
    args += ["--database-url", database_url, "--redis", redis_url, "--prefix", prefix, "--stamps", str(stamps)]
    return subprocess.call(args)


async def bench(opts: argparse.Namespace, tmp: Path) -> bool:
    database_url = f"sqlite+aiosqlite:///{tmp / 'cidash.db'}"
    prefix = f"cidash-bench-{secrets.token_hex(4)}"
    settings = bench_settings(database_url, opts.redis, prefix)
    await upgrade(database_url)
    async with Runtime(settings, migrate=False, collect=False):
        pass  # the CI systems exist before the API starts (their names are the filters)
    clients = make_clients(opts.clients, opts.filter)
    async with api_server(database_url, redis_url=opts.redis, redis_prefix=prefix) as server:
        started = time.perf_counter()
        sockets = await open_all(server.ws_url, clients)
        print(f"{len(sockets)} clients connected in {time.perf_counter() - started:.1f} s", file=sys.stderr)
        listeners = [asyncio.create_task(listen(s, c)) for s, c in zip(sockets, clients, strict=True)]
        freeze_startup_heap()  # the 1,000 connections: their collections would be pauses of the harness
        stamps = tmp / "stamps.txt"
        cpu = Cpu.start(server.pid)
        code = await asyncio.to_thread(run_publisher, opts, database_url, opts.redis, prefix, stamps)
        await asyncio.sleep(opts.drain)  # let the last messages arrive
        cpu.stop(server.pid)
        for socket in sockets:
            await socket.close()
        await asyncio.gather(*listeners)
    if code != 0:
        raise RuntimeError(f"the publisher failed (exit status {code})")
    published = {int(i): float(t) for i, t in (line.split() for line in stamps.read_text().splitlines() if line)}
    stored, expected = await expected_deliveries(database_url, min(c.hello for c in clients), clients)
    return report(opts, clients, published, stored, expected, cpu)


@dataclass
class Cpu:
    """CPU seconds each process used while the events flowed (publisher: this process's children
    that ended meanwhile, i.e. the publisher alone)."""

    server: float
    clients: float
    publisher: float
    wall: float

    @classmethod
    def start(cls, server_pid: int) -> Cpu:
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        return cls(cpu_seconds(server_pid), time.process_time(), children.ru_utime + children.ru_stime, time.time())

    def stop(self, server_pid: int) -> None:
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        self.server = cpu_seconds(server_pid) - self.server
        self.clients = time.process_time() - self.clients
        self.publisher = children.ru_utime + children.ru_stime - self.publisher
        self.wall = time.time() - self.wall


def report(
    opts: argparse.Namespace,
    clients: list[Client],
    published: dict[int, float],
    stored: int,
    expected: int,
    cpu: Cpu,
) -> bool:
    latencies = [
        (t - published[i]) * 1000
        for c in clients
        for i, t in zip(c.arrival_ids, c.arrival_times, strict=True)
        if i in published
    ]
    received = sum(len(c.arrival_ids) for c in clients)
    errors = [c.error for c in clients if c.error]
    p99 = quantile(latencies, 0.99)
    print(f"command: {' '.join(sys.argv)}")
    span = max(published.values(), default=0.0) - min(published.values(), default=0.0)
    print(
        f"{opts.clients} websocket clients (filter: {opts.filter}), {len(published)} events published "
        f"in {span:.1f} s ({len(published) / max(span, 1e-9):.0f}/s achieved, {opts.rate:.0f}/s asked), "
        f"{stored} feed messages stored"
    )
    print(f"{'deliveries':<12} {'expected':>10} {'received':>10} {'p50':>8} {'p95':>8} {'p99':>8} {'max':>8}")
    print(
        f"{'':<12} {expected:>10} {received:>10} {quantile(latencies, 0.5):>6.1f}ms "
        f"{quantile(latencies, 0.95):>6.1f}ms {p99:>6.1f}ms {max(latencies, default=0):>6.1f}ms"
    )
    print(
        f"CPU seconds over {cpu.wall:.0f} s: API server {cpu.server:.1f}, clients {cpu.clients:.1f}, "
        f"publisher {cpu.publisher:.1f} ({os.cpu_count()} cores, shared with whatever else runs)"
    )
    if errors:
        print(f"{len(errors)} clients ended with an error, e.g. {errors[0]}")
    met = p99 < TARGET_P99_MS and received == expected and not errors
    print(f"target p99 < {TARGET_P99_MS:.0f} ms with every message delivered: {'met' if met else 'NOT met'}")
    return met


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=500.0, help="events (CI runs) per second")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument(
        "--filter",
        choices=["ci", "project", "all"],
        default="ci",
        help="each client follows one CI (default), one project, or everything",
    )
    parser.add_argument("--batch-ms", type=float, default=20.0, help="the publisher stores a batch this often")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--drain", type=float, default=2.0, help="seconds to wait for the last messages")
    parser.add_argument("--publisher", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--database-url", help=argparse.SUPPRESS)
    parser.add_argument("--prefix", help=argparse.SUPPRESS)
    parser.add_argument("--stamps", type=Path, help=argparse.SUPPRESS)
    opts = parser.parse_args()
    if opts.publisher:
        settings = bench_settings(opts.database_url, opts.redis, opts.prefix)
        run(publish(settings, opts.rate, opts.seconds, opts.batch_ms / 1000, opts.stamps))
        return 0
    raise_fd_limit(opts.clients + 1024)
    with tempfile.TemporaryDirectory(prefix="cidash-ws-") as tmp:
        return 0 if run(bench(opts, Path(tmp))) else 1


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    raise SystemExit(main())
