"""Rollup snapshots for tests: recompute the rollups, read the stored ones (checking that
ci_hour_totals is the per-project rollups added up) and compare two snapshots (float sums loosely)."""

from __future__ import annotations

import math
from typing import Any

import sqlalchemy as sa

from cidash.store import Store
from cidash.store.rollups import rebuild_rollups
from cidash.store.schema import hour_totals_t, latency_t, rollups_t


async def rebuild(store: Store) -> None:
    async with store.engine.begin() as conn:
        await rebuild_rollups(conn)


def sums(row: Any) -> tuple[Any, ...]:
    """The summed columns of a ci_rollups or ci_hour_totals row."""
    return (row.runs, row.successes, row.test_failures, row.infra_errors, row.latency_n, row.latency_sum)


async def snapshot(store: Store) -> tuple[dict[Any, tuple[Any, ...]], dict[Any, int]]:
    async with store.engine.connect() as conn:
        rollups = {
            (row.ci_system_id, row.project, row.hour): sums(row)
            for row in await conn.execute(sa.select(rollups_t))
            if row.runs != 0
        }
        latency = {
            (row.ci_system_id, row.hour, row.bucket): row.n
            for row in await conn.execute(sa.select(latency_t))
            if row.n != 0
        }
        totals = {
            (row.ci_system_id, row.hour): sums(row)
            for row in await conn.execute(sa.select(hour_totals_t))
            if row.runs != 0
        }
    # ci_hour_totals always holds the per-project rollups added up per CI and hour
    expected: dict[Any, list[Any]] = {}
    for (ci, _, hour), values in rollups.items():
        expected.setdefault((ci, hour), [0] * 6)
        expected[(ci, hour)] = [a + b for a, b in zip(expected[(ci, hour)], values, strict=True)]
    assert same_rollups(totals, {key: tuple(values) for key, values in expected.items()}), (totals, expected)
    return rollups, latency


def same_rollups(left: dict[Any, tuple[Any, ...]], right: dict[Any, tuple[Any, ...]]) -> bool:
    if left.keys() != right.keys():
        return False
    for key, values in left.items():
        other = right[key]
        if values[:5] != other[:5]:
            return False
        # sums of floats in another order: compare loosely
        if not math.isclose(values[5], other[5], rel_tol=1e-4, abs_tol=1e-2):
            return False
    return True
