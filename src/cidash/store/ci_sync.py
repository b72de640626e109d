"""Which accounts are CI systems: the configuration and the CI group are authoritative.

* config-listed accounts: ``source=config``, confirmed, with the configured display name, owner
  and reference flag. A ``source=config`` row no longer listed (on a server being synced) falls
  back to ``detected`` / unconfirmed / not reference.
* CI group members: ``source=group``, confirmed, owner = the member's email when none is set; a
  config row stays ``config``. A ``group`` row whose account left the group falls back to
  ``detected`` / unconfirmed.
* everything else the parser recognises is ``detected`` and unconfirmed (see comment_writer.py).

An operator's edit of a CI system (:func:`patch_system`) lives here too.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from cidash.config import CISystemConfig
from cidash.domain.comments import AccountRef
from cidash.domain.text import clip, clip_required
from cidash.domain.views import SystemPatch
from cidash.store import schema as m
from cidash.store.comment_writer import CommentWriter

if TYPE_CHECKING:
    from cidash.store.reads.systems import SystemRow

_DEMOTED = {"source": m.CISource.DETECTED.value, "confirmed": False}


async def _existing(conn: AsyncConnection, server_ids: Sequence[int]) -> dict[int, dict[str, Any]]:
    table = m.ci_systems_t
    query = sa.select(table).where(table.c.server_id.in_(list(server_ids)))
    return {row.account_id: dict(row._mapping) for row in await conn.execute(query)}


async def _apply(
    conn: AsyncConnection,
    existing: dict[int, dict[str, Any]],
    desired: dict[int, dict[str, Any]],
    demote: dict[int, dict[str, Any]],
) -> None:
    table = m.ci_systems_t
    inserts = [values for account_id, values in desired.items() if account_id not in existing]
    for account_id, values in (*desired.items(), *demote.items()):
        row = existing.get(account_id)
        if row is None:
            continue
        changes = {key: value for key, value in values.items() if row.get(key) != value}
        if changes:
            await conn.execute(sa.update(table).where(table.c.id == row["id"]).values(changes))
    if inserts:
        await conn.execute(sa.insert(table), inserts)


async def sync_ci_configs(
    conn: AsyncConnection, writer: CommentWriter, configs: Sequence[CISystemConfig], servers: Sequence[str]
) -> None:
    names = list(dict.fromkeys([*servers, *(config.server for config in configs if config.server)]))
    if not names:
        return
    server_ids = await writer.server_ids(conn, names)
    # a server-specific entry wins over an every-server one for the same account
    chosen: dict[tuple[int, str], CISystemConfig] = {}
    for config in sorted(configs, key=lambda config: config.server is not None):
        for server in [config.server] if config.server else servers:
            chosen[(server_ids[server], clip_required(config.account, m.NAME_LEN))] = config
    account_ids = await writer.account_ids(conn, {key: (None, None, None, None) for key in chosen})
    existing = await _existing(conn, list(server_ids.values()))
    desired: dict[int, dict[str, Any]] = {}
    for key, config in chosen.items():
        account_id = account_ids[key]
        row = existing.get(account_id, {})
        desired[account_id] = {
            "server_id": key[0],
            "account_id": account_id,
            "display_name": clip_required(config.display_name or row.get("display_name") or key[1], m.NAME_LEN),
            "owner": clip(config.owner, m.NAME_LEN) if config.owner else row.get("owner"),
            "is_reference": config.reference,
            "source": m.CISource.CONFIG.value,
            "confirmed": True,
        }
    demote = {
        account_id: {**_DEMOTED, "is_reference": False}
        for account_id, row in existing.items()
        if row["source"] == m.CISource.CONFIG.value and account_id not in desired
    }
    await _apply(conn, existing, desired, demote)
    writer.ci = None


async def sync_group_members(
    conn: AsyncConnection, writer: CommentWriter, server: str, members: Sequence[AccountRef]
) -> None:
    server_id = (await writer.server_ids(conn, [server]))[server]
    wanted = {
        (server_id, clip_required(member.key, m.NAME_LEN)): (
            member.account_id,
            clip(member.username, m.NAME_LEN),
            clip(member.name, m.NAME_LEN),
            clip(member.email, m.NAME_LEN),
        )
        for member in members
    }
    account_ids = await writer.account_ids(conn, wanted)
    existing = await _existing(conn, [server_id])
    desired: dict[int, dict[str, Any]] = {}
    for member in members:
        account_id = account_ids[(server_id, clip_required(member.key, m.NAME_LEN))]
        row = existing.get(account_id)
        if row is None:
            desired[account_id] = {
                "server_id": server_id,
                "account_id": account_id,
                "display_name": clip_required(member.display, m.NAME_LEN),
                "owner": clip(member.email, m.NAME_LEN),
                "is_reference": False,
                "source": m.CISource.GROUP.value,
                "confirmed": True,
            }
            continue
        values: dict[str, Any] = {"confirmed": True, "owner": row["owner"] or clip(member.email, m.NAME_LEN)}
        if row["source"] != m.CISource.CONFIG.value:
            values["source"] = m.CISource.GROUP.value
        desired[account_id] = values
    demote = {
        account_id: dict(_DEMOTED)
        for account_id, row in existing.items()
        if row["source"] == m.CISource.GROUP.value and account_id not in desired
    }
    await _apply(conn, existing, desired, demote)
    writer.ci = None


async def patch_system(conn: AsyncConnection, system: SystemRow, patch: SystemPatch) -> None:
    """Apply an operator's edit; making a CI the reference unsets the other reference of its server.
    (A config-listed CI gets its configured values back at the next start.)"""
    values: dict[str, Any] = {}
    if patch.display_name is not None:
        values["display_name"] = clip(patch.display_name, m.NAME_LEN) or system.display_name
    if patch.owner is not None:
        values["owner"] = clip(patch.owner, m.NAME_LEN) or None
    if patch.confirmed is not None:
        values["confirmed"] = patch.confirmed
    if patch.is_reference is not None:
        values["is_reference"] = patch.is_reference
    if not values:
        return
    table = m.ci_systems_t
    if patch.is_reference:
        await conn.execute(
            sa.update(table)
            .where(table.c.server_id == system.server_id, table.c.id != system.id, table.c.is_reference.is_(True))
            .values(is_reference=False)
        )
    await conn.execute(sa.update(table).where(table.c.id == system.id).values(values))
