"""Derived writes done in the same transaction as new CI runs, so rollups and feed never disagree
with `ci_runs`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from cidash.domain.views import FeedMessage
from cidash.store import feed, rollups
from cidash.store.facade import Store
from cidash.store.inserted_run import InsertedRun


async def after_insert(conn: AsyncConnection, runs: Sequence[InsertedRun]) -> list[FeedMessage]:
    """Update the hourly rollups and append one `run` feed message per run; returns the messages."""
    if not runs:
        return []
    await rollups.apply_rollups(conn, runs)
    return await feed.append_run_messages(conn, runs)


async def after_move(conn: AsyncConnection, before: Sequence[InsertedRun], after: Sequence[InsertedRun]) -> None:
    """Stored runs whose time or latency changed: take them out of the rollups as they were
    counted and put them back as they are (the feed keeps its `run` messages: they are history)."""
    await rollups.retract_rollups(conn, before)
    await rollups.apply_rollups(conn, after)


async def rollups_only(conn: AsyncConnection, runs: Sequence[InsertedRun]) -> list[FeedMessage]:
    """Update the hourly rollups only: for archive imports, whose runs are history, not news."""
    if runs:
        await rollups.apply_rollups(conn, runs)
    return []


async def open_store(database_url: str, *, live: bool = True, **options: Any) -> Store:
    """The store as cidash's services write to it: every run also updates the rollups (so health
    never misses a run however it arrived) and, when `live`, appends its feed message."""
    insert = after_insert if live else rollups_only
    return await Store.open(database_url, after_insert=insert, after_move=after_move, **options)
