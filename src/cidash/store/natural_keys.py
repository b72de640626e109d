"""Set-based helpers for the write path: a few statements per batch, never one per row.

:func:`resolve` maps natural keys (``(scope, key)`` such as ``(server_id, change number)``) to
row ids for a whole batch: cached ids first, then one ``IN`` query for the rest, one multi-row
``INSERT`` for the missing ones and one query to read their ids back (portable: no RETURNING and
no guessing from ``lastrowid``), and one ``UPDATE`` for rows whose attributes changed
(:mod:`cidash.store.bulk_io`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from cidash.store.bulk_io import can_return, insert_rows, select_in, update_rows

T = TypeVar("T")
Key = tuple[Any, Any]
Attrs = tuple[Any, ...]
Merge = Callable[[Any, Any], Any]

IN_CHUNK = 500  # values per IN list (well under SQLite's 32766 variables)


def chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def newer(old: Any, new: Any) -> Any:
    """A known value is only replaced by another known value (None and "" mean unknown)."""
    return old if new is None or new == "" else new


def latest(old: Any, new: Any) -> Any:
    if old is None:
        return new
    if new is None:
        return old
    return max(old, new)


def earliest(old: Any, new: Any) -> Any:
    if old is None:
        return new
    if new is None:
        return old
    return min(old, new)


@dataclass(slots=True)
class Entity:
    """A table with a two-column natural key and mergeable attribute columns, plus its id cache."""

    table: sa.Table
    scope: str
    key: str
    attrs: tuple[str, ...]
    merges: tuple[Merge, ...]
    fixed: Mapping[str, Any] = field(default_factory=dict)  # extra columns for new rows only
    stamp: str | None = None  # column set to the time of the write whenever the row is written
    cache: dict[Key, tuple[int, Attrs]] = field(default_factory=dict)
    max_cache: int = 200_000

    def merge(self, old: Attrs | None, new: Attrs) -> Attrs:
        if old is None:
            return new
        if old == new:
            return old
        return tuple([merge(a, b) for merge, a, b in zip(self.merges, old, new, strict=True)])

    def clear(self) -> None:
        self.cache.clear()


@dataclass(slots=True)
class Resolved:
    ids: dict[Key, int]
    inserted: set[Key]
    changed: list[tuple[int, Attrs | None, Attrs]]  # (id, attrs before, attrs after); before None: new row


async def _load(conn: AsyncConnection, entity: Entity, keys: Sequence[Key]) -> None:
    """Cache the stored rows for exactly these keys."""
    columns = ("id", entity.scope, entity.key, *entity.attrs)
    for row in await select_in(conn, entity.table, columns, entity.scope, entity.key, keys):
        entity.cache[(row[1], row[2])] = (row[0], row[3:])


async def _load_ids(conn: AsyncConnection, entity: Entity, rows: Sequence[tuple[Key, Attrs]]) -> None:
    """Cache the ids of rows this transaction just inserted (their attributes are known)."""
    attrs = dict(rows)
    columns = ("id", entity.scope, entity.key)
    for row_id, scope, key in await select_in(conn, entity.table, columns, entity.scope, entity.key, list(attrs)):
        entity.cache[(scope, key)] = (row_id, attrs[(scope, key)])


async def resolve(
    conn: AsyncConnection,
    entity: Entity,
    wanted: Mapping[Key, Attrs],
    *,
    new_scopes: set[Any] | frozenset[Any] = frozenset(),
) -> Resolved:
    """Ids for every wanted key, inserting missing rows and merging attributes into existing ones.

    `new_scopes`: scopes created in this transaction (nothing under them can exist yet).
    Updated rows are grouped by the set of columns that changed (usually just one, such as a
    change's ``updated_at``), one statement per group.
    """
    if len(entity.cache) > entity.max_cache:
        entity.cache.clear()
    missing = [key for key in wanted if key not in entity.cache and key[0] not in new_scopes]
    if missing:
        await _load(conn, entity, missing)
    plan = _merge_known(entity, wanted)
    now = datetime.now(UTC)
    await _update_changed(conn, entity, plan.updates, now)
    if plan.inserts:
        await _insert_new(conn, entity, plan.inserts, now)
        for key, attrs in plan.inserts:
            row_id = entity.cache[key][0]
            plan.ids[key] = row_id
            plan.changed.append((row_id, None, attrs))
    return Resolved(plan.ids, {key for key, _ in plan.inserts}, plan.changed)


@dataclass(slots=True)
class _Plan:
    """What :func:`resolve` found for the wanted keys before writing."""

    ids: dict[Key, int] = field(default_factory=dict)  # of the known keys
    inserts: list[tuple[Key, Attrs]] = field(default_factory=list)  # unknown keys, merged attributes
    changed: list[tuple[int, Attrs | None, Attrs]] = field(default_factory=list)  # (id, old, new)
    updates: dict[tuple[int, ...], list[tuple[int, Attrs]]] = field(default_factory=dict)  # by changed columns


def _merge_known(entity: Entity, wanted: Mapping[Key, Attrs]) -> _Plan:
    """Merge the wanted attributes into the cached rows (the cache takes the merged ones); the
    keys not in the cache are to insert."""
    plan = _Plan()
    cache = entity.cache
    for key, new in wanted.items():
        known = cache.get(key)
        if known is None:
            plan.inserts.append((key, entity.merge(None, new)))
            continue
        row_id, old = known
        merged = entity.merge(old, new)
        plan.ids[key] = row_id
        if merged != old:
            plan.changed.append((row_id, old, merged))
            cache[key] = (row_id, merged)
            columns = tuple(index for index, (a, b) in enumerate(zip(old, merged, strict=True)) if a != b)
            plan.updates.setdefault(columns, []).append((row_id, tuple(merged[index] for index in columns)))
    return plan


async def _update_changed(
    conn: AsyncConnection, entity: Entity, updates: Mapping[tuple[int, ...], list[tuple[int, Attrs]]], now: datetime
) -> None:
    """One UPDATE per set of changed columns (stamped with `now` when the entity has a stamp)."""
    for columns, rows in updates.items():
        names = [entity.attrs[index] for index in columns]
        if entity.stamp is not None:
            names.append(entity.stamp)
            rows = [(row_id, (*values, now)) for row_id, values in rows]
        await update_rows(conn, entity.table, names, rows)


async def _insert_new(conn: AsyncConnection, entity: Entity, inserts: list[tuple[Key, Attrs]], now: datetime) -> None:
    """Insert the new rows in one statement; their ids go to the cache (RETURNING where the
    engine has it, else read back)."""
    fixed = tuple(entity.fixed.values()) + ((now,) if entity.stamp is not None else ())
    stamped = (entity.stamp,) if entity.stamp is not None else ()
    returning = ("id", entity.scope, entity.key) if can_return(conn) else ()
    new_rows = await insert_rows(
        conn,
        entity.table,
        (entity.scope, entity.key, *entity.fixed, *stamped, *entity.attrs),
        [(key[0], key[1], *fixed, *attrs) for key, attrs in inserts],
        returning,
    )
    if returning:
        attrs_by_key = dict(inserts)
        for row_id, scope, key in new_rows:
            entity.cache[(scope, key)] = (row_id, attrs_by_key[(scope, key)])
    else:
        await _load_ids(conn, entity, inserts)
