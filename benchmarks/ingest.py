"""`cidash ingest` of N stream-events lines on SQLite and MariaDB, beside the raw limit.

For each engine, in one run:
* cidash: `ingest_file` (the code path of `cidash ingest FILE.jsonl`): parse every line, journal
  it, read every comment-added with the CI parser, store runs + jobs with dedup, in batches;
* raw limit: parse the same lines with orjson and insert the same rows (journal rows, and one run
  row + its job rows per CI result comment, with the jobs the parser found) with batched
  executemany into plain tables of the same shape, no dedup, no lookups.

Usage: .venv/bin/python benchmarks/ingest.py [--events 200000] [--mysql mysql+aiomysql://cidash_test:cidash_test@127.0.0.1:3306/test]
Targets (issue 3): >= 10,000 events/s on MariaDB, and >= 0.5 of the raw limit.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import orjson
import sqlalchemy as sa
from sqlalchemy import pool
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from cidash.collector.ingest_file import ingest_file
from cidash.config import CISystemConfig, Settings
from cidash.gerrit.events import StreamEvent
from cidash.gerrit.normalize import comment_from_event
from cidash.parsing import CommentKind, CommentParser
from cidash.sim.world import World
from cidash.store.engine import create_engine
from cidash.store.migrate import upgrade

BATCH = 2000


def make_archive(path: Path, events: int, seed: int) -> int:
    world = World(seed, start=datetime(2026, 11, 1, tzinfo=UTC))
    written = 0
    with path.open("wb") as out:
        while written < events:
            for event in world.next_activity():
                out.write(event.to_line())
                written += 1
    return written


def raw_tables() -> tuple[sa.MetaData, sa.Table, sa.Table, sa.Table]:
    meta = sa.MetaData()
    journal = sa.Table(
        "raw_journal",
        meta,
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
        sa.Column("received_at", sa.DateTime),
        sa.Column("event_type", sa.String(64)),
        sa.Column("raw", sa.Text().with_variant(sa.dialects.mysql.MEDIUMTEXT(), "mysql")),
        mysql_charset="utf8mb4",
    )
    runs = sa.Table(
        "raw_runs",
        meta,
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
        sa.Column("change_number", sa.Integer),
        sa.Column("patchset_number", sa.Integer),
        sa.Column("author", sa.String(255)),
        sa.Column("result", sa.String(64)),
        sa.Column("posted_at", sa.DateTime),
        sa.Column("raw_comment", sa.Text().with_variant(sa.dialects.mysql.MEDIUMTEXT(), "mysql")),
        mysql_charset="utf8mb4",
    )
    jobs = sa.Table(
        "raw_jobs",
        meta,
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
        sa.Column("run_key", sa.Integer),
        sa.Column("name", sa.String(255)),
        sa.Column("url", sa.String(2048)),
        sa.Column("result", sa.String(64)),
        sa.Column("duration_s", sa.Integer),
        mysql_charset="utf8mb4",
    )
    return meta, journal, runs, jobs


async def raw_limit(url: str, path: Path) -> tuple[float, int]:
    """Parse with orjson and executemany the same rows; the parser's job lists are computed first
    (outside the clock) so the raw figure is the pure parse + insert cost."""
    parser = CommentParser([CISystemConfig(account="zuul", reference=True)])
    lines = path.read_bytes().splitlines()
    parsed_jobs: dict[int, list[tuple[str, str | None, str, int | None]]] = {}
    for index, line in enumerate(lines):
        event = StreamEvent.from_json(line)
        comment = comment_from_event(event, "bench")
        if comment is not None:
            result = parser.parse(comment)
            if result.kind is CommentKind.RESULT:
                parsed_jobs[index] = [(j.name, j.url, j.result, j.duration_s) for j in result.jobs]
    meta, journal, runs, jobs = raw_tables()
    engine = create_engine(url)
    async with engine.begin() as conn:
        await conn.run_sync(meta.create_all)
    now = datetime.now(UTC).replace(tzinfo=None)
    started = time.perf_counter()
    async with engine.begin() as conn:
        for start in range(0, len(lines), BATCH):
            journal_rows, run_rows, job_rows = [], [], []
            for index in range(start, min(start + BATCH, len(lines))):
                value = orjson.loads(lines[index])
                journal_rows.append({"received_at": now, "event_type": value["type"], "raw": lines[index].decode()})
                if index in parsed_jobs:
                    change, author = value["change"], value["author"]
                    run_rows.append(
                        {
                            "change_number": change["number"],
                            "patchset_number": value["patchSet"]["number"],
                            "author": author.get("username"),
                            "result": "X",
                            "posted_at": now,
                            "raw_comment": value["comment"],
                        }
                    )
                    job_rows += [
                        {"run_key": index, "name": n, "url": u, "result": r, "duration_s": d}
                        for n, u, r, d in parsed_jobs[index]
                    ]
            await conn.execute(journal.insert(), journal_rows)
            if run_rows:
                await conn.execute(runs.insert(), run_rows)
            if job_rows:
                await conn.execute(jobs.insert(), job_rows)
    elapsed = time.perf_counter() - started
    await engine.dispose()
    return elapsed, len(lines)


async def mysql_database(admin_url: str) -> tuple[str, str]:
    name = f"cidash_bench_{secrets.token_hex(4)}"
    engine = create_async_engine(admin_url, poolclass=pool.NullPool)
    async with engine.connect() as conn:
        await conn.execute(sa.text(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4"))
    await engine.dispose()
    return name, make_url(admin_url).set(database=name).render_as_string(hide_password=False)


async def drop_mysql(admin_url: str, name: str) -> None:
    engine = create_async_engine(admin_url, poolclass=pool.NullPool)
    async with engine.connect() as conn:
        await conn.execute(sa.text(f"DROP DATABASE IF EXISTS `{name}`"))
    await engine.dispose()


async def bench_engine(label: str, make_url_: str, raw_url: str, archive: Path) -> None:
    settings = Settings(database_url=make_url_, ci=[CISystemConfig(account="zuul", reference=True)])
    await upgrade(make_url_)
    started, cpu = time.perf_counter(), time.process_time()
    stats = await ingest_file(settings, archive, "bench", batch_size=BATCH, migrate=False)
    ours, ours_cpu = time.perf_counter() - started, time.process_time() - cpu
    raw_s, lines = await raw_limit(raw_url, archive)
    ours_rate, raw_rate = stats.lines / ours, lines / raw_s
    # this process's CPU time beside the wall time: the machine is shared, a wall time far above
    # the CPU time (plus the database server's share on MariaDB) means it waited for a core
    print(
        f"{label:8s} cidash ingest: {stats.lines} events in {ours:.2f} s (client CPU {ours_cpu:.2f} s) = "
        f"{ours_rate:,.0f} events/s ({stats.runs_inserted} runs, {stats.dead_lettered} dead-lettered); "
        f"raw limit: {raw_rate:,.0f} events/s; ratio {ours_rate / raw_rate:.2f}"
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--mysql", default="mysql+aiomysql://cidash_test:cidash_test@127.0.0.1:3306/test")
    parser.add_argument("--engines", default="sqlite,mariadb")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        archive = Path(tmp) / "events.jsonl"
        started = time.perf_counter()
        count = make_archive(archive, args.events, args.seed)
        print(
            f"archive: {count} events, {archive.stat().st_size / 1e6:.0f} MB, "
            f"made in {time.perf_counter() - started:.1f} s"
        )
        print(f"command: {' '.join(sys.argv)}")
        if "sqlite" in args.engines:
            await bench_engine(
                "sqlite", f"sqlite+aiosqlite:///{tmp}/cidash.db", f"sqlite+aiosqlite:///{tmp}/raw.db", archive
            )
        if "mariadb" in args.engines:
            ours_name, ours_url = await mysql_database(args.mysql)
            raw_name, raw_url = await mysql_database(args.mysql)
            try:
                await bench_engine("mariadb", ours_url, raw_url, archive)
            finally:
                await drop_mysql(args.mysql, ours_name)
                await drop_mysql(args.mysql, raw_name)


if __name__ == "__main__":
    asyncio.run(main())
