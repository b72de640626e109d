"""REST backfill: import every change message posted since the watermark (minus an overlap).

The watermark only moves after the rows are committed, and it moves to the time the query
*started*, so anything posted while the pages were being read is covered by the next run.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cidash.collector.ingest import Ingestor, OnWritten
from cidash.config import GerritServer
from cidash.gerrit.normalize import account_from_wire, comments_from_change
from cidash.gerrit.rest import GerritRestClient
from cidash.parsing import CommentParser
from cidash.store import Store

log = logging.getLogger(__name__)

WATERMARK = "backfill"
CLOCK_SKEW = timedelta(seconds=5)  # tolerated difference between our clock and Gerrit's


@dataclass
class BackfillResult:
    since: datetime
    watermark: datetime
    until: datetime  # when the query started: everything posted before then was read
    changes: int = 0
    comments: int = 0
    runs_inserted: int = 0
    duration_s: float = 0.0


def gerrit_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def backfill_queries(server: GerritServer, since: datetime) -> list[str]:
    """One query per configured project (run concurrently), or one for the whole server."""
    after = f'after:"{gerrit_time(since)}"'
    if not server.projects:
        return [after]
    return [f"project:{project} {after}" for project in server.projects]


async def refresh_group(server: GerritServer, client: GerritRestClient, store: Store, parser: CommentParser) -> int:
    """Read the CI group's members (how the original OpenStack dashboard found third-party CIs)."""
    if not server.ci_group:
        return 0
    members = [account_from_wire(member) for member in await client.group_members(server.ci_group)]
    await store.sync_group_members(server.name, members)
    parser.set_group_members(server.name, [member.key for member in members])
    return len(members)


async def run_backfill(
    server: GerritServer,
    client: GerritRestClient,
    store: Store,
    parser: CommentParser,
    *,
    since: datetime | None = None,
    progress: Callable[[int, int], None] | None = None,
    on_written: OnWritten | None = None,
) -> BackfillResult:
    """Backfill one server; `since` overrides the stored watermark (one-off imports)."""
    started = time.monotonic()
    query_started_at = datetime.now(UTC)
    if since is None:
        watermark = await store.get_watermark(server.name, WATERMARK)
        since = (
            watermark - timedelta(seconds=server.backfill_overlap_s)
            if watermark
            else query_started_at - timedelta(seconds=server.backfill_initial_s)
        )
    result = BackfillResult(since=since, watermark=query_started_at - CLOCK_SKEW, until=query_started_at)
    await refresh_group(server, client, store, parser)

    ingestor = Ingestor(store, parser, server.name, journal=False, batch_size=2000, on_written=on_written)
    limit = asyncio.Semaphore(server.backfill_concurrency)
    write_lock = asyncio.Lock()

    async def one_query(query: str) -> None:
        async with limit:
            async for page in client.query_changes(query, page_size=server.backfill_page_size):
                async with write_lock:
                    for change in page:
                        result.changes += 1
                        ingestor.add_comments(
                            c for c in comments_from_change(change, server.name) if c.posted_at >= since
                        )
                    await ingestor.flush_if_full()
                if progress is not None:
                    progress(result.changes, len(page))

    await asyncio.gather(*(one_query(query) for query in backfill_queries(server, since)))
    await ingestor.flush()
    result.comments = ingestor.stats.comments
    result.runs_inserted = ingestor.stats.runs_inserted
    await store.set_watermark(server.name, WATERMARK, result.watermark)
    result.duration_s = time.monotonic() - started
    log.info(
        "server %s: backfill since %s: %d changes, %d comments, %d new runs in %.1f s",
        server.name,
        gerrit_time(since),
        result.changes,
        result.comments,
        result.runs_inserted,
        result.duration_s,
    )
    return result
