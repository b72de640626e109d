"""Replicas started with --no-migrate wait for the schema instead of failing; replicas that
migrate at the same moment take turns (MySQL named lock)."""

from __future__ import annotations

import asyncio
import logging

import pytest

from cidash.store import upgrade
from cidash.store.engine import create_engine
from cidash.store.migrate import current_revision, head_revision, wait_for_schema

pytestmark = pytest.mark.timeout(120)


async def test_no_migrate_waits_until_the_schema_is_there(db_url: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="cidash.store.migrate")
    waiter = asyncio.create_task(wait_for_schema(db_url, poll_s=0.1))
    await asyncio.sleep(0.5)
    assert not waiter.done(), "an empty database is not ready"
    assert "this version needs" in caplog.text and "cidash db upgrade" in caplog.text
    await upgrade(db_url)
    await asyncio.wait_for(waiter, 5)


async def test_concurrent_upgrades_take_turns(db_url: str) -> None:
    await asyncio.gather(upgrade(db_url), upgrade(db_url), upgrade(db_url))
    engine = create_engine(db_url)
    try:
        async with engine.connect() as connection:
            assert await connection.run_sync(current_revision) == head_revision()
    finally:
        await engine.dispose()
