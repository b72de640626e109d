"""Raw event journal, dead letters and sync watermarks (all small, single-purpose writes)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from cidash.domain.text import clean, clip_required, decode_raw
from cidash.store import schema as m
from cidash.store.types import to_aware_utc

MAX_STORED_RAW_CHARS = 1_000_000  # longer raw input is cut (raw_length keeps the received size)
PURGE_CHUNK = 5_000

JournalEvent = tuple[datetime, str, int | None, str]  # received_at, type, eventCreatedOn, raw line
DeadLetter = tuple[str | None, str, str, bytes | str]  # server, source, reason, raw


@dataclass(frozen=True, slots=True)
class StoredDeadLetter:
    id: int
    server: str | None
    received_at: datetime
    source: str
    reason: str
    raw: str  # the bytes decoded as UTF-8 with errors="replace"
    raw_length: int  # length of what was received, in bytes
    resolved: bool


def _epoch(value: int | None) -> datetime | None:
    if value is None:
        return None
    try:
        return datetime.fromtimestamp(value, UTC)
    except (OverflowError, OSError, ValueError):
        return None


JOURNAL_COLUMNS = ("server_id", "received_at", "event_type", "event_created_on", "raw")


def journal_rows(server_id: int, events: Sequence[JournalEvent]) -> list[tuple[Any, ...]]:
    """Rows in JOURNAL_COLUMNS order, for the bulk insert path."""
    return [
        (
            server_id,
            to_aware_utc(received_at),
            clip_required(event_type, 64, "unknown"),
            _epoch(created_on),
            clean(raw[:MAX_STORED_RAW_CHARS]),
        )
        for received_at, event_type, created_on, raw in events
    ]


def dead_letter_rows(
    server_ids: dict[str, int], letters: Sequence[DeadLetter], received_at: datetime
) -> list[dict[str, Any]]:
    rows = []
    for server, source, reason, raw in letters:
        text, length = decode_raw(raw)
        rows.append(
            {
                "server_id": server_ids[server] if server is not None else None,
                "received_at": received_at,
                "source": clip_required(source, 32, "unknown"),
                "reason": clip_required(reason, m.REASON_LEN),
                "raw": text[:MAX_STORED_RAW_CHARS],
                "raw_length": length,
                "resolved": False,
            }
        )
    return rows


async def purge_ids(conn: AsyncConnection, table: sa.Table, where: sa.ColumnElement[bool]) -> int:
    """Delete up to PURGE_CHUNK matching rows (by id, portable); how many went."""
    ids = [row[0] for row in await conn.execute(sa.select(table.c.id).where(where).limit(PURGE_CHUNK))]
    if ids:
        await conn.execute(sa.delete(table).where(table.c.id.in_(ids)))
    return len(ids)


async def get_watermark(conn: AsyncConnection, server: str, name: str) -> datetime | None:
    marks, servers = m.watermarks_t, m.servers_t
    query = (
        sa.select(marks.c.value)
        .join(servers, servers.c.id == marks.c.server_id)
        .where(servers.c.name == server, marks.c.name == name)
    )
    value: datetime | None = (await conn.execute(query)).scalar_one_or_none()
    return value


async def set_watermark(conn: AsyncConnection, server_id: int, name: str, value: datetime) -> bool:
    """Move the watermark forward to `value` (never back); True if it moved or was created."""
    marks = m.watermarks_t
    now = datetime.now(UTC)
    value = to_aware_utc(value)
    moved = await conn.execute(
        sa.update(marks)
        .where(marks.c.server_id == server_id, marks.c.name == name, marks.c.value < value)
        .values(value=value, updated_at=now)
    )
    if moved.rowcount:
        return True
    exists = await conn.execute(sa.select(marks.c.value).where(marks.c.server_id == server_id, marks.c.name == name))
    if exists.first() is not None:
        return False
    try:
        async with conn.begin_nested():
            await conn.execute(sa.insert(marks).values(server_id=server_id, name=name, value=value, updated_at=now))
    except IntegrityError:  # created meanwhile by another writer: compete through the update
        return await set_watermark(conn, server_id, name, value)
    return True
