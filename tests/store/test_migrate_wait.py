"""Replicas started with --no-migrate wait for the schema instead of failing; replicas that
migrate at the same moment take turns (MySQL named lock); `cidash db upgrade` with the database
unreachable says so in one line."""

from __future__ import annotations

import asyncio
import logging
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from cidash.store import upgrade
from cidash.store.engine import create_engine
from cidash.store.migrate import current_revision, head_revision, wait_for_schema

pytestmark = pytest.mark.timeout(120)


async def test_no_migrate_waits_until_the_schema_is_there(db_url: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="cidash.store.migrate")
    waiter = asyncio.create_task(wait_for_schema(db_url, poll_s=0.1))
    await asyncio.sleep(0.5)  # the point: five polls of an empty database, none of them enough
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


def test_db_upgrade_with_the_database_unreachable_is_one_line(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nobody listens once it is closed
    cases = {
        f"mysql+aiomysql://cidash:hunter2@127.0.0.1:{port}/cidash": (
            f"cidash: error: cannot connect to the database at mysql+aiomysql://cidash:***@127.0.0.1:{port}/cidash: "
            "OperationalError: (2003, \"Can't connect to MySQL server on '127.0.0.1'\")\n"
        ),
        f"sqlite+aiosqlite:///{tmp_path}/missing/cidash.db": (
            f"cidash: error: cannot create the SQLite database {tmp_path}/missing/cidash.db: "
            f"no directory {tmp_path}/missing\n"
        ),
    }
    for url, expected in cases.items():
        result = subprocess.run(
            [sys.executable, "-c", "from cidash.cli import main; main()", "db", "upgrade", "--database-url", url],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert (result.returncode, result.stderr, result.stdout) == (1, expected, "")
