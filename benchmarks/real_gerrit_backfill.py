"""REST backfill from a real Gerrit beside the same volume from the simulator, in one run.

A throwaway Gerrit (the version scripts/ensure-gerrit pins) gets `--changes` changes, each with
`--reports` CI reports posted as the community's bots; the simulator gets a world with about the
same number of changes. Then, for each server, the product's backfill (`run_backfill`:
`GET /a/changes/?o=MESSAGES&o=DETAILED_ACCOUNTS&o=ALL_REVISIONS`, paged with `S=`, normalise,
parse, store into a fresh SQLite) runs over every change, `--repeat` times; figures are changes/s
and messages/s, best and median.

Usage: .venv/bin/python benchmarks/real_gerrit_backfill.py [--changes 200] [--reports 8] [--repeat 3]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pydantic import SecretStr

from cidash.collector.backfill import run_backfill
from cidash.config import CISystemConfig, GerritServer
from cidash.gerrit.rest import GerritRestClient
from cidash.parsing import CommentParser
from cidash.realgerrit.community import CI_GROUP, REFERENCE, THIRD_PARTY, build_community
from cidash.realgerrit.poster import Poster
from cidash.realgerrit.scenario import jobs_for
from cidash.realgerrit.site import create_site
from cidash.sim.runner import RunningSim, SimOptions
from cidash.store import Store
from cidash.store.migrate import upgrade


async def populate(poster: Poster, project: str, changes: int, reports: int) -> int:
    """`changes` changes with `reports` CI reports each, eight changes at a time; returns messages posted."""
    bots = [REFERENCE, *THIRD_PARTY]
    limit = asyncio.Semaphore(8)

    async def one(index: int) -> None:
        async with limit:
            change = await poster.create_change("alice", project, f"benchmark change {index}")
            for report in range(reports):
                ci = bots[report % len(bots)]
                results = {
                    "bench-unit": "SUCCESS",
                    "bench-tempest": "FAILURE" if (index + report) % 5 == 0 else "SUCCESS",
                }
                await poster.ci_report(ci, change, 1, jobs_for(ci, change, report + 1, results))

    await asyncio.gather(*(one(index) for index in range(changes)))
    return changes * (reports + 1)


def rest_server(name: str, url: str, user: str, password: str, projects: list[str]) -> GerritServer:
    return GerritServer(
        name=name, http_url=url, http_user=user, http_password=SecretStr(password), ci_group=CI_GROUP, projects=projects
    )


async def backfill_once(server: GerritServer, directory: Path, since: datetime) -> tuple[float, int, int]:
    """(seconds, changes, comments) of one full backfill into a fresh SQLite."""
    url = f"sqlite+aiosqlite:///{directory / f'bench-{time.monotonic_ns()}.db'}"
    await upgrade(url)
    store = await Store.open(url)
    parser = CommentParser([CISystemConfig(account="zuul", reference=True)])
    try:
        async with GerritRestClient.for_server(server) as client:
            began = time.perf_counter()
            result = await run_backfill(server, client, store, parser, since=since)
            return time.perf_counter() - began, result.changes, result.comments
    finally:
        await store.close()


async def measure(name: str, server: GerritServer, directory: Path, since: datetime, repeat: int) -> None:
    runs = [await backfill_once(server, directory, since) for _ in range(repeat)]
    changes, comments = runs[0][1], runs[0][2]
    rates = sorted(changes / seconds for seconds, _, _ in runs)
    message_rates = sorted(comments / seconds for seconds, _, _ in runs)
    print(
        f"{name:>10}: {changes} changes, {comments} messages; backfill "
        f"{rates[-1]:,.0f} changes/s best, {statistics.median(rates):,.0f} median "
        f"({message_rates[-1]:,.0f} / {statistics.median(message_rates):,.0f} messages/s)",
        flush=True,
    )


async def main(changes: int, reports: int, repeat: int) -> None:
    with tempfile.TemporaryDirectory(prefix="cidash-bench-gerrit-") as tmp:
        directory = Path(tmp)
        began = time.monotonic()
        site = await asyncio.to_thread(create_site, directory / "site")
        try:
            await asyncio.to_thread(site.start)
            community = await build_community(site.url, directory / "keys")
            print(f"Gerrit {site.version} ready in {time.monotonic() - began:.0f} s", flush=True)
            poster = Poster(community)
            began = time.monotonic()
            try:
                posted = await populate(poster, community.projects[0], changes, reports)
            finally:
                await poster.aclose()
            print(f"posted {changes} changes / {posted} messages in {time.monotonic() - began:.0f} s", flush=True)
            watcher = community.watcher
            real = rest_server("real", site.url, watcher.username, watcher.password, [community.projects[0]])
            await measure("real", real, directory, datetime.now(UTC) - timedelta(days=1), repeat)
        finally:
            await asyncio.to_thread(site.remove)

        # the simulator: a world with about as many changes (~5.5 new changes per simulated hour)
        options = SimOptions(seed=7, rate=None, events=0, history=timedelta(hours=max(1.0, changes / 5.5)))
        async with RunningSim(options) as sim:
            simulated = rest_server("sim", sim.http_url, options.http_user, options.http_password, [])
            await measure("simulator", simulated, directory, datetime.now(UTC) - timedelta(days=30), repeat)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--changes", type=int, default=200)
    parser.add_argument("--reports", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    asyncio.run(main(args.changes, args.reports, args.repeat))
