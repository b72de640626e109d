"""CI systems as the reads see them: :class:`SystemRow` (a CI system with its account and server),
:func:`system_rows` / :func:`find_system`, which configuration entry designates one
(:func:`config_entry`), the overview's search (:func:`matches_search`), and :class:`Names`, the
id -> name map the run and grid reads use instead of joining."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from cidash.config import CISystemConfig
from cidash.domain import health
from cidash.store import schema as m


@dataclass(frozen=True, slots=True)
class SystemRow:
    id: int
    server_id: int
    server: str
    name: str  # account key
    username: str | None
    email: str | None
    account_name: str | None
    display_name: str
    owner: str | None
    is_reference: bool
    confirmed: bool
    source: str
    last_seen: datetime | None

    def ref(self, config: CISystemConfig | None = None) -> health.SystemRef:
        """What the health model needs, with the projects and branches of its configuration entry."""
        return health.SystemRef(
            id=self.id,
            server_id=self.server_id,
            name=self.name,
            display_name=self.display_name,
            is_reference=self.is_reference,
            last_seen=self.last_seen,
            configured_projects=tuple(config.projects) if config is not None else (),
            configured_branches=tuple(config.branches) if config is not None else (),
        )


def _system_query() -> sa.Select[Any]:
    ci, accounts, servers = m.ci_systems_t, m.accounts_t, m.servers_t
    return (
        sa.select(
            ci.c.id,
            ci.c.server_id,
            servers.c.name.label("server"),
            accounts.c.account_key,
            accounts.c.username,
            accounts.c.email,
            accounts.c.name.label("account_name"),
            ci.c.display_name,
            ci.c.owner,
            ci.c.is_reference,
            ci.c.confirmed,
            ci.c.source,
            ci.c.last_seen,
        )
        .join(accounts, accounts.c.id == ci.c.account_id)
        .join(servers, servers.c.id == ci.c.server_id)
        .order_by(servers.c.name, accounts.c.account_key)
    )


def _system_row(row: Any) -> SystemRow:
    return SystemRow(
        id=row.id,
        server_id=row.server_id,
        server=row.server,
        name=row.account_key,
        username=row.username,
        email=row.email,
        account_name=row.account_name,
        display_name=row.display_name,
        owner=row.owner,
        is_reference=bool(row.is_reference),
        confirmed=bool(row.confirmed),
        source=row.source,
        last_seen=row.last_seen,
    )


async def system_rows(conn: AsyncConnection, *, name: str | None = None, server: str | None = None) -> list[SystemRow]:
    """CI systems ordered by (server, name), optionally those with account key `name` / on `server`."""
    query = _system_query()
    if name is not None:
        query = query.where(m.accounts_t.c.account_key == name)
    if server is not None:
        query = query.where(m.servers_t.c.name == server)
    return [_system_row(row) for row in await conn.execute(query)]


async def find_system(conn: AsyncConnection, name: str, server: str | None = None) -> SystemRow | None:
    """The CI system named `name` (its account key); with several servers holding the same key
    and no `server`, the first server by name."""
    rows = await system_rows(conn, name=name, server=server)
    return rows[0] if rows else None


def config_entry(configs: Sequence[CISystemConfig], system: SystemRow) -> CISystemConfig | None:
    """The configuration entry that designates this CI system (same rule as the parser:
    account = key, username, email or name; a server-specific entry wins)."""
    names = {system.name, system.username, system.email, system.account_name} - {None}
    best: CISystemConfig | None = None
    for config in configs:
        if config.account not in names or config.server not in (None, system.server):
            continue
        if best is None or (config.server is not None and best.server is None):
            best = config
    return best


def matches_search(system: SystemRow, q: str | None) -> bool:
    """The overview's search: `q` (case-insensitive, surrounding blanks ignored) is part of the
    CI's name, display name or owner; an empty `q` matches every CI."""
    wanted = (q or "").strip().casefold()
    if not wanted:
        return True
    return any(wanted in (value or "").casefold() for value in (system.name, system.display_name, system.owner))


@dataclass(frozen=True, slots=True)
class Names:
    """CI system id -> (server name, CI name, is reference): a handful of rows, read per request."""

    systems: dict[int, tuple[str, str, bool]]

    @classmethod
    async def load(cls, conn: AsyncConnection) -> Names:
        return cls({s.id: (s.server, s.name, s.is_reference) for s in await system_rows(conn)})

    def server(self, ci_system_id: int) -> str:
        entry = self.systems.get(ci_system_id)
        return entry[0] if entry is not None else ""

    def ci(self, ci_system_id: int) -> str:
        entry = self.systems.get(ci_system_id)
        return entry[1] if entry is not None else f"ci:{ci_system_id}"

    def is_reference(self, ci_system_id: int) -> bool:
        entry = self.systems.get(ci_system_id)
        return entry is not None and entry[2]
