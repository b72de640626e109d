"""``/collection``: each Gerrit server's stream sessions, the gaps between them, the backfill
passes that covered them and how complete collection was over a window (the Collection page)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from sqlalchemy.ext.asyncio import AsyncConnection

from cidash.api.deps import NOT_FOUND, connection, not_found, query_error
from cidash.domain.views import CollectionOut
from cidash.store import collection, reads

router = APIRouter(tags=["collection"])

DEFAULT_WINDOW = timedelta(hours=24)


@router.get("/collection", response_model=CollectionOut, responses=NOT_FOUND)
async def get_collection(
    conn: Annotated[AsyncConnection, Depends(connection)],
    server: Annotated[str | None, Query(max_length=255, description="One Gerrit server (default: every one)")] = None,
    from_: Annotated[
        str | None, Query(alias="from", max_length=64, description="ISO 8601 (default: `to` minus 24 h)")
    ] = None,
    to: Annotated[str | None, Query(max_length=64, description="ISO 8601 (default: now)")] = None,
) -> CollectionOut:
    """Per server: stream sessions, gaps (covered by a completed backfill pass, uncovered, or open),
    backfill passes and the window's completeness: the share of it with the stream connected or
    the gap covered."""
    now = datetime.now(UTC)
    try:
        window_to = reads.params.parse_time(to, "to") or now
        window_from = reads.params.parse_time(from_, "from") or window_to - DEFAULT_WINDOW
    except reads.params.QueryError as exc:
        raise query_error(exc) from None
    if window_from >= window_to:
        raise query_error(reads.params.QueryError("from: must be before to"))
    servers = await collection.collection(conn, window_from, window_to, now, server=server or None)
    if server and not servers:
        raise not_found(f"no Gerrit server named {server!r}")
    return CollectionOut(window_from=window_from, window_to=window_to, servers=servers)
