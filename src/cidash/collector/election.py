"""Exactly one replica collects a given Gerrit server: MySQL `GET_LOCK` on a dedicated connection,
or a lease row on SQLite (single host). A replica that dies loses the lock with its connection
(MySQL) or when its lease expires (SQLite); another takes over within `LEASE_S`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy import pool
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from cidash.store import create_engine, leases_t

log = logging.getLogger(__name__)

LEASE_S = 15.0  # takeover bound
POLL_S = 4.0  # how often a follower tries, and a leader proves it still holds the lock


def replica_id() -> str:
    """Unique per Leadership, also for two runtimes in one process."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


class Leadership:
    """`await run(on_elected, on_deposed)` forever: calls on_elected when this replica wins the lock
    for `name`, on_deposed when it loses it (DB restart, lease taken). Cancel to resign."""

    def __init__(self, database_url: str, name: str, *, holder: str | None = None, poll_s: float = POLL_S) -> None:
        self._url = database_url
        self.name = name
        self.holder = holder or replica_id()
        self._poll_s = poll_s
        self.leader = False
        self.tried = asyncio.Event()  # set once the first attempt has been decided

    async def run(self, on_elected: Callable[[], Awaitable[None]], on_deposed: Callable[[], Awaitable[None]]) -> None:
        engine = create_engine(self._url, poolclass=pool.NullPool)
        try:
            while True:
                try:
                    if engine.dialect.name == "sqlite":
                        await self._lease_loop(engine, on_elected, on_deposed)
                    else:
                        await self._lock_loop(engine, on_elected, on_deposed)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # the database went away: we can no longer prove we lead
                    log.warning("leadership %s: %s: %s", self.name, type(exc).__name__, exc)
                    await self._set(False, on_elected, on_deposed)
                    await asyncio.sleep(self._poll_s)
        finally:
            with contextlib.suppress(Exception):
                await self._set(False, on_elected, on_deposed)
            if engine.dialect.name == "sqlite":  # hand the lease over now rather than at expiry
                with contextlib.suppress(Exception):
                    async with engine.begin() as conn:
                        await conn.execute(leases_t.delete().where(leases_t.c.holder == self.holder))
            await engine.dispose()

    async def _set(
        self, leader: bool, on_elected: Callable[[], Awaitable[None]], on_deposed: Callable[[], Awaitable[None]]
    ) -> None:
        self.tried.set()
        if leader == self.leader:
            return
        self.leader = leader
        log.info("leadership %s: %s is %s", self.name, self.holder, "leader" if leader else "follower")
        await (on_elected() if leader else on_deposed())

    async def _lock_loop(
        self, engine: AsyncEngine, on_elected: Callable[[], Awaitable[None]], on_deposed: Callable[[], Awaitable[None]]
    ) -> None:
        lock = f"cidash:{self.name}"[:64]
        async with engine.connect() as conn:  # the lock lives exactly as long as this connection
            try:
                await self._hold_lock(conn, lock, on_elected, on_deposed)
            except BaseException:
                # drop the connection (and so the lock) without a round trip: a database that stopped
                # answering would hang the rollback of a normal close, and with it a shutdown
                await conn.invalidate()
                raise

    async def _hold_lock(
        self,
        conn: AsyncConnection,
        lock: str,
        on_elected: Callable[[], Awaitable[None]],
        on_deposed: Callable[[], Awaitable[None]],
    ) -> None:
        while True:
            if not self.leader:
                got = (await conn.execute(sa.text("SELECT GET_LOCK(:name, 0)"), {"name": lock})).scalar()
                await conn.commit()
                if got == 1:
                    await self._set(True, on_elected, on_deposed)
            else:
                held = (
                    await conn.execute(sa.text("SELECT IS_USED_LOCK(:name) = CONNECTION_ID()"), {"name": lock})
                ).scalar()
                await conn.commit()
                if held != 1:
                    await self._set(False, on_elected, on_deposed)
            await asyncio.sleep(self._poll_s)

    async def _lease_loop(
        self, engine: AsyncEngine, on_elected: Callable[[], Awaitable[None]], on_deposed: Callable[[], Awaitable[None]]
    ) -> None:
        while True:
            async with engine.begin() as conn:
                won = await self._claim(conn)
            await self._set(won, on_elected, on_deposed)
            await asyncio.sleep(self._poll_s)

    async def _claim(self, conn: AsyncConnection) -> bool:
        now = datetime.now(UTC)
        expires = now + timedelta(seconds=LEASE_S)
        await conn.execute(
            sqlite_insert(leases_t)
            .values(name=self.name, holder=self.holder, expires_at=expires)
            .on_conflict_do_update(
                index_elements=[leases_t.c.name],
                set_={"holder": self.holder, "expires_at": expires},
                where=sa.or_(leases_t.c.holder == self.holder, leases_t.c.expires_at < now),
            )
        )
        holder = (await conn.execute(sa.select(leases_t.c.holder).where(leases_t.c.name == self.name))).scalar()
        return holder == self.holder
