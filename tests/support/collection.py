"""A server's recorded collection history for tests: four stream sessions and five backfill
passes around the gaps between them, relative to a whole hour a few hours ago (no fixed date)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from cidash.store import Store
from cidash.store.collection import PassRecord

SERVER = "review"
MIN = timedelta(minutes=1)


def start_hour() -> datetime:
    """A whole hour a few hours ago: every instant below is relative to it (no fixed date)."""
    return datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=6)


async def stream_session(store: Store, start: datetime, end: datetime | None, reason: str = "ConnectionError") -> int:
    session_id = await store.open_stream_session(SERVER, start)
    if end is not None:
        await store.close_stream_session(session_id, end, reason)
    return session_id


async def backfill_pass(store: Store, since: datetime, until: datetime, finished: datetime, outcome: str = "ok") -> int:
    record = PassRecord(
        started_at=until,
        finished_at=finished,
        outcome=outcome,
        since=since,
        until=until,
        changes=3,
        comments=9,  # type: ignore[arg-type]
    )
    return await store.record_backfill_pass(SERVER, record)


async def history(store: Store, t0: datetime) -> dict[str, int]:
    """Four sessions and the gaps between them (minutes after t0):

    session 0-60, gap 60-70 covered by pass A (since 55, until 71, finished 72);
    session 70-120, gap 120-130 read to 125 only (by B, 100-125; C failed);
    session 130-200, gap 200-210 covered by D and E together (D 195-205, E 204-212, finished 213);
    session 210-240, then an open gap from 240.
    """
    await stream_session(store, t0, t0 + 60 * MIN)
    await stream_session(store, t0 + 70 * MIN, t0 + 120 * MIN, "TimeoutError: no data for 60 s (watchdog)")
    await stream_session(store, t0 + 130 * MIN, t0 + 200 * MIN)
    await stream_session(store, t0 + 210 * MIN, t0 + 240 * MIN)
    return {
        "A": await backfill_pass(store, t0 + 55 * MIN, t0 + 71 * MIN, t0 + 72 * MIN),
        "B": await backfill_pass(store, t0 + 100 * MIN, t0 + 125 * MIN, t0 + 126 * MIN),
        "C": await backfill_pass(store, t0 + 110 * MIN, t0 + 135 * MIN, t0 + 136 * MIN, "failed"),
        "D": await backfill_pass(store, t0 + 195 * MIN, t0 + 205 * MIN, t0 + 206 * MIN),
        "E": await backfill_pass(store, t0 + 204 * MIN, t0 + 212 * MIN, t0 + 213 * MIN),
    }
