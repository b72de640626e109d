"""Collector completeness on hand-built stream sessions and backfill passes, on both engines:
gaps covered, uncovered and open, the pass that covered each, the window's completeness, the
sessions a killed process left open, retention, and ``GET /api/v1/collection``."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest

from cidash.api import create_app
from cidash.domain.views import BackfillPassOut, StreamSessionOut
from cidash.store import Store
from cidash.store.collection import (
    PROCESS_ENDED,
    STALE_AFTER,
    PassIndex,
    covering_pass,
    find_gaps,
    server_timeline,
)
from tests.support.api import client_for, settings_for
from tests.support.clock import T0
from tests.support.collection import MIN, SERVER, backfill_pass, history, start_hour, stream_session


async def _timeline(store: Store, low: datetime, high: datetime, now: datetime) -> dict[str, object]:
    from cidash.store.collection import collection

    async with store.engine.connect() as conn:
        (server,) = await collection(conn, low, high, now, server=SERVER)
    return server.model_dump()


async def test_gaps_covered_uncovered_and_open(store: Store) -> None:
    t0 = start_hour()
    ids = await history(store, t0)
    now = t0 + 250 * MIN
    timeline = await _timeline(store, t0, now, now)
    gaps = [(g["start"], g["end"], g["state"], g["covered_by"]) for g in timeline["gaps"]]  # type: ignore[attr-defined]
    assert gaps == [
        (t0 + 60 * MIN, t0 + 70 * MIN, "covered", ids["A"]),
        (t0 + 120 * MIN, t0 + 130 * MIN, "uncovered", None),
        (t0 + 200 * MIN, t0 + 210 * MIN, "covered", ids["E"]),  # D alone read only half of it
        (t0 + 240 * MIN, None, "open", None),
    ]
    summary = timeline["summary"]
    assert summary == {
        "observed_from": t0,
        "observed_to": now,
        "connected_s": 210 * 60.0,
        "covered_s": 25 * 60.0,  # the two covered gaps and the half of the third that B read
        "uncovered_s": 5 * 60.0,
        "open_s": 10 * 60.0,
        "completeness": pytest.approx(235 / 250),
        "uncovered_gaps": 1,
        "open_gap": True,
        "passes_ok": 4,
        "passes_failed": 1,
        "passes_stalled": 0,
    }
    assert timeline["connected"] is False
    assert [g["read_until"] for g in timeline["gaps"]] == [  # type: ignore[attr-defined]
        t0 + 70 * MIN,
        t0 + 125 * MIN,
        t0 + 210 * MIN,
        None,
    ]
    assert [p["id"] for p in timeline["passes"]] == sorted(ids.values())  # type: ignore[attr-defined]
    assert timeline["sessions"][1]["reason"] == "TimeoutError: no data for 60 s (watchdog)"  # type: ignore[index]


async def test_a_window_inside_the_history_and_a_cover_after_it(store: Store) -> None:
    t0 = start_hour()
    ids = await history(store, t0)
    # the window 65-128: it starts inside the first gap, ends inside the second; the first gap's pass
    # finished inside it, the second gap is read to 125 only; every instant is clipped to the window
    timeline = await _timeline(store, t0 + 65 * MIN, t0 + 128 * MIN, t0 + 250 * MIN)
    states = [(g["start"], g["state"]) for g in timeline["gaps"]]  # type: ignore[attr-defined]
    assert states == [(t0 + 60 * MIN, "covered"), (t0 + 120 * MIN, "uncovered")]
    summary = timeline["summary"]
    assert isinstance(summary, dict)
    assert (summary["connected_s"], summary["covered_s"], summary["uncovered_s"]) == (3000.0, 600.0, 180.0)
    assert summary["completeness"] == pytest.approx(60 / 63)
    # a later pass that reads the whole second gap covers it, in a window that ended before it ran
    late = await backfill_pass(store, t0 + 115 * MIN, t0 + 300 * MIN, t0 + 301 * MIN)
    timeline = await _timeline(store, t0 + 65 * MIN, t0 + 128 * MIN, t0 + 302 * MIN)
    assert [g["covered_by"] for g in timeline["gaps"]] == [ids["A"], late]  # type: ignore[attr-defined]
    assert late in [p["id"] for p in timeline["passes"]]  # type: ignore[attr-defined]
    assert timeline["summary"]["completeness"] == 1.0  # type: ignore[index]


async def test_a_killed_process_leaves_a_session_its_successor_closes(store: Store) -> None:
    t0 = start_hour()
    killed = await store.open_stream_session(SERVER, t0)
    await store.touch_stream_session(killed, t0 + 10 * MIN)
    # read while its heartbeat is fresh, it is connected; once stale, it ended at the last beat
    fresh = await _timeline(store, t0, t0 + 11 * MIN, t0 + 11 * MIN)
    assert fresh["connected"] is True and fresh["gaps"] == []
    stale_now = t0 + 10 * MIN + STALE_AFTER + MIN
    stale = await _timeline(store, t0, stale_now, stale_now)
    assert stale["connected"] is False
    assert [(g["start"], g["state"]) for g in stale["gaps"]] == [(t0 + 10 * MIN, "open")]  # type: ignore[attr-defined]
    # the next collector's start writes that down
    assert await store.close_abandoned_sessions(SERVER) == 1
    assert await store.close_abandoned_sessions(SERVER) == 0
    await stream_session(store, t0 + 20 * MIN, None)
    timeline = await _timeline(store, t0, t0 + 21 * MIN, t0 + 21 * MIN)
    first, second = timeline["sessions"]  # type: ignore[misc]
    assert (first["disconnected_at"], first["reason"]) == (t0 + 10 * MIN, PROCESS_ENDED)
    assert second["disconnected_at"] is None and timeline["connected"] is True
    assert [(g["start"], g["end"], g["state"]) for g in timeline["gaps"]] == [  # type: ignore[attr-defined]
        (t0 + 10 * MIN, t0 + 20 * MIN, "uncovered")
    ]


async def test_retention_keeps_open_sessions(store: Store) -> None:
    t0 = start_hour()
    await history(store, t0)
    still_open = await store.open_stream_session(SERVER, t0 + 300 * MIN)
    removed = await store.purge_collection(t0 + 150 * MIN)
    assert removed == 2 + 3  # sessions that ended at 60 and 120; passes that finished by 136
    timeline = await _timeline(store, t0, t0 + 301 * MIN, t0 + 301 * MIN)
    assert [s["id"] for s in timeline["sessions"]][-1] == still_open  # type: ignore[attr-defined]
    assert len(timeline["passes"]) == 2  # type: ignore[arg-type]


def _s(start: int, end: int | None, t0: datetime) -> StreamSessionOut:
    stop = t0 + end * MIN if end is not None else None
    return StreamSessionOut(id=start, connected_at=t0 + start * MIN, last_seen_at=t0, disconnected_at=stop, reason=None)


def test_overlapping_sessions_leave_no_gap() -> None:
    t0 = T0  # pure arithmetic: any instant does
    # a takeover: the new collector connected before the old one's session ended
    assert find_gaps([_s(0, 30, t0), _s(25, 60, t0), _s(70, None, t0)]) == [(t0 + 60 * MIN, t0 + 70 * MIN)]
    assert find_gaps([_s(0, None, t0), _s(10, 20, t0)]) == []  # one still connected covers the rest


def test_a_pass_starting_inside_the_gap_does_not_cover_it() -> None:
    t0 = T0

    def made(pass_id: int, since: int, until: int, outcome: str = "ok") -> BackfillPassOut:
        return BackfillPassOut(
            id=pass_id,
            started_at=t0 + until * MIN,
            finished_at=t0 + (until + 1) * MIN,
            since=t0 + since * MIN,
            until=t0 + until * MIN,
            changes=0,
            comments=0,
            runs_new=0,
            outcome=outcome,  # type: ignore[arg-type]
            error=None,
        )

    start, end = t0 + 10 * MIN, t0 + 20 * MIN
    assert covering_pass(start, end, [made(1, 11, 30)]) is None
    assert covering_pass(start, end, [made(1, 11, 30), made(2, 5, 12)]) == 1  # 2 first, then 1 completes it
    assert covering_pass(start, end, [made(1, 0, 30, "stalled")]) is None
    assert covering_pass(start, end, [made(1, 0, 19)]) is None
    # how far the passes read a gap they do not cover, without a hole from its start
    assert PassIndex([made(1, 5, 12), made(2, 14, 30)]).read_until(start, end) == t0 + 12 * MIN
    assert PassIndex([made(1, 5, 12), made(2, 14, 30), made(3, 11, 15)]).read_until(start, end) == end
    assert PassIndex([made(1, 11, 30)]).read_until(start, end) is None


def test_a_fully_covered_window_is_exactly_complete() -> None:
    """Spans whose float seconds sum to a hair under the window (CI saw 0.9999999999999998)."""
    first, gap, second = (
        timedelta(hours=2, minutes=31, seconds=49, microseconds=153009),
        timedelta(seconds=44, microseconds=653592),
        timedelta(hours=2, minutes=20, seconds=49, microseconds=103791),
    )
    t0 = T0
    end = t0 + first + gap + second
    sessions = [
        StreamSessionOut(id=1, connected_at=t0, last_seen_at=t0 + first, disconnected_at=t0 + first, reason=None),
        StreamSessionOut(id=2, connected_at=t0 + first + gap, last_seen_at=end, disconnected_at=None, reason=None),
    ]
    cover = BackfillPassOut(
        id=1,
        started_at=t0 + first + gap,
        finished_at=t0 + first + gap + MIN,
        since=t0,
        until=t0 + first + gap,
        changes=0,
        comments=0,
        runs_new=0,
        outcome="ok",
        error=None,
    )
    summary = server_timeline(SERVER, sessions, [cover], t0, end, end + MIN).summary
    assert summary.uncovered_gaps == 0 and not summary.open_gap
    assert summary.completeness == 1.0


async def test_collection_route(store: Store, tmp_path: Path) -> None:
    t0 = start_hour()
    ids = await history(store, t0)
    app = create_app(settings_for(store), store, frontend_dir=tmp_path / "none")
    async with client_for(app) as client:
        params = {"from": t0.isoformat(), "to": (t0 + 250 * MIN).isoformat()}
        response = await client.get("/api/v1/collection", params=params)
        assert response.status_code == 200, response.text
        body = response.json()
        (server,) = body["servers"]
        assert server["server"] == SERVER
        assert [g["state"] for g in server["gaps"]] == ["covered", "uncovered", "covered", "open"]
        assert server["gaps"][0]["covered_by"] == ids["A"]
        assert server["summary"]["completeness"] == pytest.approx(235 / 250)
        assert (await client.get("/api/v1/collection", params={"server": SERVER})).status_code == 200
        missing = await client.get("/api/v1/collection", params={"server": "nope"})
        assert missing.status_code == 404 and "nope" in missing.json()["detail"]
        for bad in (
            {"from": "yesterday"},
            {"to": "0001-01-01T00:00:00+14:00"},
            {"from": params["to"], "to": params["from"]},
        ):
            answer = await client.get("/api/v1/collection", params=bad)
            assert answer.status_code == 422, bad
            assert answer.json()["detail"]
