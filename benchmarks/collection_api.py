"""`GET /api/v1/collection` over a full retention period: 90 days of one server's collection, a
backfill pass every 5 minutes (25,920) and a stream reconnect every hour (2,160 sessions, gaps of
20 s, each covered by the pass the reconnect asked for), on SQLite and MariaDB; the time of the
query and the timeline's computation (`cidash.store.collection.collection`) for 24 h, 7 d and 90 d
windows, median of `--repeat` runs.

Usage: .venv/bin/python benchmarks/collection_api.py [--days 90] [--repeat 5] [--mysql URL]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

from cidash.store import Store, upgrade
from cidash.store import schema as m
from cidash.store.collection import collection, passes_t, sessions_t

DEFAULT_MYSQL = "mysql+aiomysql://cidash_test:cidash_test@127.0.0.1:3306/"
SERVER = "review"


async def fill(store: Store, days: int, now: datetime) -> tuple[int, int]:
    start = now - timedelta(days=days)
    sessions, passes = [], []
    hour = timedelta(hours=1)
    for n in range(days * 24):
        connected = start + n * hour
        sessions.append({"connected_at": connected, "last_seen_at": connected + hour - timedelta(seconds=20)})
        sessions[-1]["disconnected_at"] = sessions[-1]["last_seen_at"]
        sessions[-1]["reason"] = "ConnectionError: stream ended (exit None)"
    for n in range(days * 24 * 12):
        began = start + n * timedelta(minutes=5) + timedelta(seconds=5)
        passes.append(
            {
                "started_at": began,
                "finished_at": began + timedelta(seconds=3),
                "since_at": began - timedelta(minutes=6),
                "until_at": began,
                "changes": 40,
                "comments": 300,
                "runs_new": 2,
                "outcome": "ok",
            }
        )
    async with store.engine.begin() as conn:
        await conn.execute(sa.insert(m.servers_t).values(name=SERVER))
        server_id = (await conn.execute(sa.select(m.servers_t.c.id))).scalar_one()
        for rows, table in ((sessions, sessions_t), (passes, passes_t)):
            for part in range(0, len(rows), 5000):
                await conn.execute(
                    sa.insert(table), [{**row, "server_id": server_id} for row in rows[part : part + 5000]]
                )
    return len(sessions), len(passes)


async def measure(url: str, days: int, repeat: int) -> None:
    await upgrade(url)
    store = await Store.open(url)
    try:
        now = datetime.now(UTC)
        counts = await fill(store, days, now)
        print(f"{store.engine.dialect.name}: {counts[0]} sessions, {counts[1]} passes")
        for label, span in (
            ("24h", timedelta(hours=24)),
            ("7d", timedelta(days=7)),
            (f"{days}d", timedelta(days=days)),
        ):
            times = []
            for _ in range(repeat):
                began = time.perf_counter()
                async with store.engine.connect() as conn:
                    (server,) = await collection(conn, now - span, now, now)
                times.append(time.perf_counter() - began)
            print(
                f"  {label:>4}: median {statistics.median(times) * 1000:7.1f} ms (min {min(times) * 1000:.1f}); "
                f"{len(server.gaps)} gaps, {len(server.passes)} passes listed, complete {server.summary.completeness}"
            )
    finally:
        await store.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--mysql", default=DEFAULT_MYSQL, help=f"MariaDB/MySQL server URL (default {DEFAULT_MYSQL})")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        await measure(f"sqlite+aiosqlite:///{Path(directory) / 'bench.db'}", args.days, args.repeat)
    name = f"cidash_bench_{uuid.uuid4().hex[:8]}"
    admin = sa.make_url(args.mysql)
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(admin)
    async with engine.begin() as conn:
        await conn.execute(sa.text(f"CREATE DATABASE {name} CHARACTER SET utf8mb4"))
    try:
        await measure(str(admin.set(database=name).render_as_string(hide_password=False)), args.days, args.repeat)
    finally:
        async with engine.begin() as conn:
            await conn.execute(sa.text(f"DROP DATABASE {name}"))
        await engine.dispose()


if __name__ == "__main__":
    asyncio.run(main())
