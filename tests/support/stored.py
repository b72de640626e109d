"""What the store holds, read back plainly for the tests (runs with their jobs, CI systems,
patch sets): the truth the end-to-end tests compare with, not what the dashboard reads."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from cidash.parsing import JobResult
from cidash.store import Store
from cidash.store import schema as m
from cidash.store.reads.run_rows import job_results


@dataclass(frozen=True, slots=True)
class StoredRun:
    change_number: int
    patchset_number: int
    author: str  # the CI account's key (AccountRef.key)
    posted_at: datetime  # aware UTC; REST's message time once a REST copy was seen
    result: str
    vote: int | None
    pipeline: str | None
    message_id: str | None
    source: str  # the copy that created the run: stream | rest | archive
    jobs: tuple[JobResult, ...]
    server: str = ""
    project: str = ""
    branch: str = ""
    latency_s: float | None = None
    id: int = 0


@dataclass(frozen=True, slots=True)
class StoredCISystem:
    server: str
    account_key: str
    display_name: str
    owner: str | None
    is_reference: bool
    source: str  # config | group | detected
    confirmed: bool
    first_seen: datetime | None
    last_seen: datetime | None


@dataclass(frozen=True, slots=True)
class StoredPatchSet:
    server: str
    change_number: int
    number: int
    created_at: datetime | None
    kind: str | None
    revision: str | None


async def all_runs(store: Store, server: str | None = None) -> list[StoredRun]:
    """Every stored run (of `server`), oldest first, with its jobs."""
    runs, ci, accounts, servers = m.runs_t, m.ci_systems_t, m.accounts_t, m.servers_t
    query = (
        sa.select(
            runs.c.id,
            runs.c.change_number,
            runs.c.patchset_number,
            accounts.c.account_key,
            runs.c.posted_at,
            runs.c.result,
            runs.c.vote,
            runs.c.pipeline,
            runs.c.message_id,
            runs.c.source,
            servers.c.name,
            runs.c.project,
            runs.c.branch,
            runs.c.latency_s,
        )
        .join(ci, ci.c.id == runs.c.ci_system_id)
        .join(accounts, accounts.c.id == ci.c.account_id)
        .join(servers, servers.c.id == runs.c.server_id)
        .order_by(runs.c.posted_at, runs.c.id)
    )
    if server is not None:
        query = query.where(servers.c.name == server)
    async with store.engine.connect() as conn:
        rows = (await conn.execute(query)).all()
        jobs = await job_results(conn, [row.id for row in rows])
    return [
        StoredRun(
            change_number=row.change_number,
            patchset_number=row.patchset_number,
            author=row.account_key,
            posted_at=row.posted_at,
            result=row.result,
            vote=row.vote,
            pipeline=row.pipeline,
            message_id=row.message_id,
            source=row.source,
            jobs=tuple(jobs.get(row.id, ())),
            server=row.name,
            project=row.project,
            branch=row.branch,
            latency_s=row.latency_s,
            id=row.id,
        )
        for row in rows
    ]


async def ci_systems(store: Store, server: str | None = None) -> list[StoredCISystem]:
    ci, accounts, servers = m.ci_systems_t, m.accounts_t, m.servers_t
    query = (
        sa.select(
            servers.c.name,
            accounts.c.account_key,
            ci.c.display_name,
            ci.c.owner,
            ci.c.is_reference,
            ci.c.source,
            ci.c.confirmed,
            ci.c.first_seen,
            ci.c.last_seen,
        )
        .join(accounts, accounts.c.id == ci.c.account_id)
        .join(servers, servers.c.id == ci.c.server_id)
        .order_by(servers.c.name, accounts.c.account_key)
    )
    if server is not None:
        query = query.where(servers.c.name == server)
    async with store.engine.connect() as conn:
        rows = (await conn.execute(query)).all()
    return [
        StoredCISystem(
            server=row[0],
            account_key=row[1],
            display_name=row[2],
            owner=row[3],
            is_reference=bool(row[4]),
            source=row[5],
            confirmed=bool(row[6]),
            first_seen=row[7],
            last_seen=row[8],
        )
        for row in rows
    ]


async def patchset(store: Store, server: str, change_number: int, number: int) -> StoredPatchSet | None:
    patchsets, changes, servers = m.patchsets_t, m.changes_t, m.servers_t
    query = (
        sa.select(patchsets.c.created_at, patchsets.c.kind, patchsets.c.revision)
        .join(changes, changes.c.id == patchsets.c.change_db_id)
        .join(servers, servers.c.id == changes.c.server_id)
        .where(servers.c.name == server, changes.c.number == change_number, patchsets.c.number == number)
    )
    async with store.engine.connect() as conn:
        row = (await conn.execute(query)).first()
    if row is None:
        return None
    return StoredPatchSet(server, change_number, number, row[0], row[1], row[2])
