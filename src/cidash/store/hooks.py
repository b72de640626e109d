"""Derived writes done in the same transaction as new CI runs, so rollups and feed never disagree
with `ci_runs`."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncConnection

from cidash.store import feed, rollups
from cidash.store.derived import InsertedRun
from cidash.views import FeedMessage


async def after_insert(conn: AsyncConnection, runs: Sequence[InsertedRun]) -> list[FeedMessage]:
    """Update the hourly rollups and append one `run` feed message per run; returns the messages."""
    if not runs:
        return []
    await rollups.apply_rollups(conn, runs)
    return await feed.append_run_messages(conn, runs)
