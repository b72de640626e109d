"""Collector completeness: the stream sessions and backfill passes of each Gerrit server
(migration 0006), and the timeline ``GET /api/v1/collection`` reads from them.

A *gap* is time with no stream session connected: between two sessions, or since the last one
ended (an *open* gap). A closed gap is *covered* once completed (``ok``) backfill passes have
together read all of it, each pass reading ``since_at`` (the watermark minus the overlap) to
``until_at`` (when its query started); ``covered_by`` is the pass that completed the cover,
which necessarily finished after the gap. The stream has no replay, so a gap nobody backfilled
may have lost comments: that is what "uncovered" warns about.

A session still open in the table whose heartbeat (``last_seen_at``) is older than
:data:`STALE_AFTER` is read as ended at its last heartbeat (its process is gone, or cannot reach
the database); the next collector of the server writes that down at start ("process ended").
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal, get_args

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from cidash.domain.text import clip_required
from cidash.domain.views import BackfillPassOut, CollectionGap, CollectionSummary, ServerCollection, StreamSessionOut
from cidash.store import schema as m
from cidash.store.types import to_aware_utc

HEARTBEAT_S = 30.0  # how often a connected collector moves its session's last_seen_at
STALE_AFTER = timedelta(seconds=3 * HEARTBEAT_S)
PROCESS_ENDED = "process ended (found open at the next start; closed at its last heartbeat)"
NO_HEARTBEAT = "no heartbeat since last_seen_at (collector gone or cut off from the database)"
MAX_LISTED = 500  # sessions, gaps and passes listed per server (the summary counts all of them)
PassOutcome = Literal["ok", "failed", "stalled"]  # stalled: cut at backfill_deadline_s
OUTCOMES: tuple[str, ...] = get_args(PassOutcome)
GapState = Literal["covered", "uncovered", "open"]


@dataclass(frozen=True, slots=True)
class PassRecord:
    """One finished backfill pass, as the collector reports it."""

    started_at: datetime
    finished_at: datetime
    outcome: PassOutcome
    since: datetime | None = None
    until: datetime | None = None
    changes: int = 0
    comments: int = 0
    runs_new: int = 0
    error: str | None = None


# -- writes (each inside the Store's serialised transaction) -----------------------------------------


async def open_session(conn: AsyncConnection, server_id: int, connected_at: datetime) -> int:
    result = await conn.execute(
        sa.insert(m.sessions_t).values(server_id=server_id, connected_at=connected_at, last_seen_at=connected_at)
    )
    key = result.inserted_primary_key
    assert key is not None
    return int(key[0])


async def touch_session(conn: AsyncConnection, session_id: int, seen_at: datetime) -> None:
    table = m.sessions_t
    await conn.execute(
        sa.update(table)
        .where(table.c.id == session_id, table.c.disconnected_at.is_(None), table.c.last_seen_at < seen_at)
        .values(last_seen_at=seen_at)
    )


async def close_session(conn: AsyncConnection, session_id: int, at: datetime, reason: str) -> None:
    """End a session that is still open (a second close of the same session changes nothing)."""
    table = m.sessions_t
    await conn.execute(
        sa.update(table)
        .where(table.c.id == session_id, table.c.disconnected_at.is_(None))
        .values(disconnected_at=at, reason=clip_required(reason, m.REASON_LEN))
    )


async def close_abandoned(conn: AsyncConnection, server_id: int, reason: str = PROCESS_ENDED) -> int:
    """At a collector's start: end the server's sessions left open by a process that died (kill -9,
    power loss) at their last heartbeat, the last moment anyone knew them connected."""
    table = m.sessions_t
    result = await conn.execute(
        sa.update(table)
        .where(table.c.server_id == server_id, table.c.disconnected_at.is_(None))
        .values(disconnected_at=table.c.last_seen_at, reason=reason)
    )
    return int(result.rowcount or 0)


async def insert_pass(conn: AsyncConnection, server_id: int, record: PassRecord) -> int:
    if record.outcome not in OUTCOMES:
        raise ValueError(f"backfill pass outcome {record.outcome!r} is not one of {', '.join(OUTCOMES)}")
    result = await conn.execute(
        sa.insert(m.passes_t).values(
            server_id=server_id,
            started_at=record.started_at,
            finished_at=record.finished_at,
            since_at=record.since,
            until_at=record.until,
            changes=record.changes,
            comments=record.comments,
            runs_new=record.runs_new,
            outcome=record.outcome,
            error=clip_required(record.error, m.REASON_LEN) if record.error else None,
        )
    )
    key = result.inserted_primary_key
    assert key is not None
    return int(key[0])


def purge_where(table: sa.Table, older_than: datetime) -> sa.ColumnElement[bool]:
    """Rows that ended before `older_than` (a session still open is kept however old)."""
    if table is m.sessions_t:
        return sa.and_(table.c.disconnected_at.is_not(None), table.c.disconnected_at < older_than)
    return table.c.finished_at < older_than


# -- the timeline (pure: hand-built sessions and passes give a known answer) -------------------------------


def _effective(session: StreamSessionOut, now: datetime) -> StreamSessionOut:
    """An open session without a recent heartbeat ends at its last heartbeat."""
    if session.disconnected_at is None and now - session.last_seen_at > STALE_AFTER:
        return session.model_copy(update={"disconnected_at": session.last_seen_at, "reason": NO_HEARTBEAT})
    return session


def find_gaps(sessions: Sequence[StreamSessionOut]) -> list[tuple[datetime, datetime | None]]:
    """(start, end) of the time between sessions, and after the last one when it has ended (end
    None: an open gap). Overlapping sessions (around a takeover) leave no gap between them."""
    gaps: list[tuple[datetime, datetime | None]] = []
    reached: datetime | None = None  # the furthest end so far
    still_open = False  # a session seen so far has not ended
    for session in sorted(sessions, key=lambda s: s.connected_at):
        if reached is not None and not still_open and session.connected_at > reached:
            gaps.append((reached, session.connected_at))
        if session.disconnected_at is None:
            still_open = True
        elif reached is None or session.disconnected_at > reached:
            reached = session.disconnected_at
    if reached is not None and not still_open:
        gaps.append((reached, None))
    return gaps


class PassIndex:
    """The ok passes with a known range, by finish time: the cover of many gaps, each found from
    the first pass that finished after the gap began (one that finished before read none of it)."""

    def __init__(self, passes: Sequence[BackfillPassOut]) -> None:
        usable = (p for p in passes if p.outcome == "ok" and p.since is not None and p.until is not None)
        self._passes = sorted(usable, key=lambda p: (p.finished_at, p.id))
        self._finished = [p.finished_at for p in self._passes]

    def covering(self, start: datetime, end: datetime) -> int | None:
        """The id of the pass that, with the ones finished before it, first read all of
        [start, end]; None when they never did."""
        pieces: list[tuple[datetime, datetime]] = []
        for position in range(bisect.bisect_left(self._finished, start), len(self._passes)):
            candidate = self._passes[position]
            since, until = candidate.since, candidate.until
            assert since is not None and until is not None
            if since > end or until < start:
                continue
            pieces.append((max(since, start), min(until, end)))
            if _covers(pieces, start, end):
                return candidate.id
        return None

    def read_until(self, start: datetime, limit: datetime) -> datetime | None:
        """How far from `start` (up to `limit`) the passes have read without a hole; None: not at all.
        An uncovered or open gap's first part may be read already (passes keep running while the
        stream is down)."""
        pieces = []
        for position in range(bisect.bisect_left(self._finished, start), len(self._passes)):
            since, until = self._passes[position].since, self._passes[position].until
            assert since is not None and until is not None
            if since <= limit and until > start:
                pieces.append((max(since, start), min(until, limit)))
        reached = start
        for low, high in sorted(pieces):
            if low > reached:
                break
            reached = max(reached, high)
        return reached if reached > start else None


def covering_pass(start: datetime, end: datetime, passes: Sequence[BackfillPassOut]) -> int | None:
    """:meth:`PassIndex.covering` for one gap."""
    return PassIndex(passes).covering(start, end)


def _covers(pieces: list[tuple[datetime, datetime]], start: datetime, end: datetime) -> bool:
    reached = start
    for low, high in sorted(pieces):
        if low > reached:
            return False
        reached = max(reached, high)
        if reached >= end:
            return True
    return reached >= end


def _overlap(start: datetime, end: datetime | None, low: datetime, high: datetime) -> timedelta:
    """The part of [start, end or high] inside [low, high]; a timedelta, so sums are exact."""
    stop = min(end or high, high)
    return max(timedelta(0), stop - max(start, low))


def server_timeline(
    server: str,
    sessions: Sequence[StreamSessionOut],
    passes: Sequence[BackfillPassOut],
    window_from: datetime,
    window_to: datetime,
    now: datetime,
) -> ServerCollection:
    """The server's collection over [window_from, window_to] from `sessions` (those in the window,
    and the last one before and the first one after it, which bound its gaps) and `passes`."""
    effective = [_effective(session, now) for session in sessions]
    high = min(window_to, now)
    in_window = [
        s for s in effective if s.connected_at < high and (s.disconnected_at is None or s.disconnected_at > window_from)
    ]
    gaps: list[CollectionGap] = []
    index = PassIndex(passes)
    for start, end in find_gaps(effective):
        if start >= high or (end is not None and end <= window_from):
            continue
        covered_by = index.covering(start, end) if end is not None else None
        state: GapState = "open" if end is None else "covered" if covered_by is not None else "uncovered"
        read_until = end if covered_by is not None else index.read_until(start, end or high)
        gaps.append(CollectionGap(start=start, end=end, state=state, covered_by=covered_by, read_until=read_until))
    started = min((s.connected_at for s in effective), default=None)
    observed_from = max(window_from, started) if started is not None else None
    summary = _summary(in_window, gaps, passes, observed_from, high, window_from)
    listed_passes = [p for p in passes if window_from <= p.finished_at < window_to]
    referenced = {gap.covered_by for gap in gaps if gap.covered_by is not None}
    listed_passes += [p for p in passes if p.id in referenced and not window_from <= p.finished_at < window_to]
    listed_passes.sort(key=lambda p: p.finished_at)
    truncated = max(len(in_window), len(gaps), len(listed_passes)) > MAX_LISTED
    if len(listed_passes) > MAX_LISTED:  # the latest ones, and every one a listed gap names
        tail = listed_passes[-MAX_LISTED:]
        listed_passes = [p for p in listed_passes[:-MAX_LISTED] if p.id in referenced] + tail
    return ServerCollection(
        server=server,
        connected=bool(effective) and max(effective, key=lambda s: s.connected_at).disconnected_at is None,
        sessions=sorted(in_window, key=lambda s: s.connected_at)[-MAX_LISTED:],
        gaps=gaps[-MAX_LISTED:],
        passes=listed_passes,
        summary=summary,
        truncated=truncated,
    )


def _summary(
    sessions: Sequence[StreamSessionOut],
    gaps: Sequence[CollectionGap],
    passes: Sequence[BackfillPassOut],
    observed_from: datetime | None,
    observed_to: datetime,
    window_from: datetime,
) -> CollectionSummary:
    outcomes = {outcome: 0 for outcome in OUTCOMES}
    for item in passes:
        if window_from <= item.finished_at < observed_to and item.outcome in outcomes:
            outcomes[item.outcome] += 1
    # Summed as timedeltas (whole microseconds): float seconds made a fully covered window 0.9999999999999998.
    spans = {"connected": timedelta(0), "covered": timedelta(0), "uncovered": timedelta(0), "open": timedelta(0)}
    if observed_from is not None and observed_from < observed_to:
        for session in sessions:
            spans["connected"] += _overlap(session.connected_at, session.disconnected_at, observed_from, observed_to)
        for gap in gaps:
            read = gap.read_until or gap.start  # what passes read of an uncovered or open gap counts as covered
            spans["covered"] += _overlap(gap.start, read, observed_from, observed_to)
            if gap.state != "covered":
                spans[gap.state] += _overlap(read, gap.end, observed_from, observed_to)
    observed = observed_to - observed_from if observed_from is not None else timedelta(0)
    return CollectionSummary(
        observed_from=observed_from,
        observed_to=observed_to,
        connected_s=round(spans["connected"].total_seconds(), 3),
        covered_s=round(spans["covered"].total_seconds(), 3),
        uncovered_s=round(spans["uncovered"].total_seconds(), 3),
        open_s=round(spans["open"].total_seconds(), 3),
        completeness=min(1.0, (spans["connected"] + spans["covered"]) / observed) if observed > timedelta(0) else None,
        uncovered_gaps=sum(1 for gap in gaps if gap.state == "uncovered"),
        open_gap=any(gap.state == "open" for gap in gaps),
        passes_ok=outcomes["ok"],
        passes_failed=outcomes["failed"],
        passes_stalled=outcomes["stalled"],
    )


# -- reads ----------------------------------------------------------------------------------------------


def _session_out(row: sa.Row[tuple[object, ...]]) -> StreamSessionOut:
    return StreamSessionOut(
        id=row.id,
        connected_at=to_aware_utc(row.connected_at),
        last_seen_at=to_aware_utc(row.last_seen_at),
        disconnected_at=row.disconnected_at,
        reason=row.reason,
    )


def _pass_out(row: sa.Row[tuple[object, ...]]) -> BackfillPassOut:
    return BackfillPassOut(
        id=row.id,
        started_at=row.started_at,
        finished_at=row.finished_at,
        since=row.since_at,
        until=row.until_at,
        changes=row.changes,
        comments=row.comments,
        runs_new=row.runs_new,
        outcome=row.outcome,
        error=row.error,
    )


async def server_names(conn: AsyncConnection) -> dict[str, int]:
    rows = await conn.execute(sa.select(m.servers_t.c.name, m.servers_t.c.id).order_by(m.servers_t.c.name))
    return {name: server_id for name, server_id in rows}


async def _sessions(conn: AsyncConnection, server_id: int, low: datetime, high: datetime) -> list[StreamSessionOut]:
    """The sessions in [low, high), the last one that started before `low` and the first one
    from `high` on: the ones that bound the window's gaps."""
    table = m.sessions_t
    mine = table.c.server_id == server_id
    inside = sa.select(table).where(
        mine,
        table.c.connected_at >= low,
        table.c.connected_at < high,
    )
    before = sa.select(table).where(mine, table.c.connected_at < low).order_by(table.c.connected_at.desc()).limit(1)
    after = sa.select(table).where(mine, table.c.connected_at >= high).order_by(table.c.connected_at).limit(1)
    found: dict[int, StreamSessionOut] = {}
    for query in (inside, before, after):
        for row in await conn.execute(query):
            found[row.id] = _session_out(row)
    return sorted(found.values(), key=lambda s: s.connected_at)


async def _passes(
    conn: AsyncConnection, server_id: int, low: datetime, high: datetime, gaps_from: datetime | None
) -> list[BackfillPassOut]:
    """Passes that finished in [low, high), and the ok ones after `gaps_from` that may cover a gap."""
    table = m.passes_t
    mine = table.c.server_id == server_id
    listed = sa.and_(table.c.finished_at >= low, table.c.finished_at < high)
    where, earliest = listed, low
    if gaps_from is not None:
        may_cover = sa.and_(table.c.outcome == "ok", table.c.finished_at >= gaps_from, table.c.since_at < high)
        where, earliest = sa.or_(listed, may_cover), min(low, gaps_from)
    # the common lower bound spelled out, so that both engines read the (server_id, finished_at) index
    query = sa.select(table).where(mine, table.c.finished_at >= earliest, where)
    rows = await conn.execute(query.order_by(table.c.finished_at, table.c.id))
    return [_pass_out(row) for row in rows]


async def collection(
    conn: AsyncConnection, window_from: datetime, window_to: datetime, now: datetime, *, server: str | None = None
) -> list[ServerCollection]:
    """Every known Gerrit server's timeline (or `server`'s alone; [] when it is unknown)."""
    servers = await server_names(conn)
    if server is not None:
        servers = {server: servers[server]} if server in servers else {}
    timelines = []
    for name, server_id in servers.items():
        sessions = await _sessions(conn, server_id, window_from, window_to)
        ends = [s.disconnected_at or s.last_seen_at for s in sessions]
        gaps_from = min(ends, default=None)
        passes = await _passes(conn, server_id, window_from, window_to, gaps_from)
        timelines.append(server_timeline(name, sessions, passes, window_from, window_to, now))
    return timelines
