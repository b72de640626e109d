"""Recheck burden over a simulated week: the humans' recheck comments of the seeded world read,
stored (SQLite) and attributed per CI, summed per persona, with the time the attribution query
takes over the week.

The simulator's humans recheck after failures: plainly, and with ``recheck-<name>`` after a
flaky third-party CI's failure. A plain recheck counts for a CI only when its failure there was
its own, judged as incidents judge it (:mod:`cidash.store.rechecks`), so broken and flaky CIs
should carry the most rechecks per 100 runs, and a healthy one almost none (a change that broke
every CI is nobody's failure).

Usage: .venv/bin/python benchmarks/recheck_burden.py [--days 7] [--seed 1]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

from cidash.config import CISystemConfig
from cidash.gerrit.normalize import comments_from_change
from cidash.parsing import CommentParser
from cidash.sim.rest_shapes import change_info
from cidash.sim.world import World
from cidash.store import Store
from cidash.store import schema as m
from cidash.store.migrate import upgrade
from cidash.store.rechecks import attribute

END = datetime(2026, 11, 30, tzinfo=UTC)  # a fixed world (its history ends here), so the figures repeat
OPTIONS = frozenset({"MESSAGES", "ALL_REVISIONS", "DETAILED_ACCOUNTS"})


async def main(days: float, seed: int) -> None:
    world = World(seed, start=END)
    world.generate_history(timedelta(days=days))
    parser = CommentParser([CISystemConfig(account="zuul", reference=True)])
    parser.set_group_members("review", [ci.username for ci in world.third_party])
    comments = [
        comment
        for change in world.changes.values()
        for comment in comments_from_change(change_info(world, change, OPTIONS), "review")
    ]
    began = time.perf_counter()
    items = [(comment, parser.parse(comment)) for comment in comments]
    parse_s = time.perf_counter() - began
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite+aiosqlite:///{Path(folder) / 'burden.db'}"
        await upgrade(url)
        store = await Store.open(url)
        try:
            for i in range(0, len(items), 2000):
                await store.write_comments(items[i : i + 2000])
            async with store.engine.connect() as conn:
                systems, accounts = m.ci_systems_t, m.accounts_t
                ids = {
                    key: ci
                    for key, ci in await conn.execute(
                        sa.select(accounts.c.account_key, systems.c.id).join(
                            accounts, accounts.c.id == systems.c.account_id
                        )
                    )
                }
                by_ci = sa.select(m.runs_t.c.ci_system_id, sa.func.count()).group_by(m.runs_t.c.ci_system_id)
                runs: dict[int, int] = {ci: n for ci, n in await conn.execute(by_ci)}
                stored = (await conn.execute(sa.select(sa.func.count()).select_from(m.rechecks_t))).scalar_one()
                named = (
                    await conn.execute(
                        sa.select(sa.func.count()).select_from(m.rechecks_t).where(m.rechecks_t.c.aimed_at.is_not(None))
                    )
                ).scalar_one()
                began = time.perf_counter()
                found = await attribute(conn, END - timedelta(days=days), END, sorted(ids.values()))
                query_s = time.perf_counter() - began
        finally:
            await store.close()
    persona = {ci.username: ci.persona.value for ci in world.third_party} | {"zuul": "reference"}
    per_ci: dict[int, Counter[str]] = defaultdict(Counter)
    for item in found:
        per_ci[item.ci_system_id]["plain" if item.plain else "named"] += 1
    totals: dict[str, list[float]] = defaultdict(lambda: [0, 0, 0, 0])
    for key, ci in ids.items():
        row = totals[persona.get(key, "other")]
        row[0] += 1
        row[1] += runs.get(ci, 0)
        row[2] += per_ci[ci]["named"]
        row[3] += per_ci[ci]["plain"]
    humans = sum(1 for _, parsed in items if not parsed.is_ci)
    print(f"{days:g} days, seed {seed}: {len(items)} comments ({humans} human), parsed in {parse_s:.2f} s")
    print(f"recheck comments stored: {stored} ({named} named a CI, {stored - named} plain)")
    print(f"attribution over the whole span: {len(found)} (recheck, CI) pairs in {query_s * 1000:.0f} ms")
    print(f"{'persona':<10} {'CIs':>4} {'runs':>7} {'named':>6} {'plain':>6} {'per 100 runs':>13}")
    for name, (cis, count, named_n, plain_n) in sorted(
        totals.items(), key=lambda kv: -(kv[1][2] + kv[1][3]) / max(kv[1][1], 1)
    ):
        rate = (named_n + plain_n) * 100 / count if count else 0.0
        print(f"{name:<10} {cis:>4} {count:>7} {named_n:>6} {plain_n:>6} {rate:>13.1f}")


if __name__ == "__main__":
    args = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    args.add_argument("--days", type=float, default=7)
    args.add_argument("--seed", type=int, default=1)
    options = args.parse_args()
    asyncio.run(main(options.days, options.seed))
