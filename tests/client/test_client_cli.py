"""The API client commands (`cidash systems`, `system`, `runs`, `grid`, `alerts`, `watch`) end to end.

Every test runs the commands through typer's CliRunner against a real HTTP server on a loopback
port: a small FastAPI app serving fixture JSON built from the :mod:`cidash.domain.views` models (plus a
websocket speaking the live-feed protocol) under uvicorn in a background thread, and the real
API (`cidash.api.app.create_app`) over a store filled through `cidash.store.Store`.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import orjson
import pytest
import uvicorn
from fastapi import FastAPI, Query, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import JSONResponse, Response
from pydantic import TypeAdapter
from typer.testing import Result

from cidash.client.http import backoff_delay, printable
from cidash.client.render import NOTE_INDENT, column_key, duration, pct, time_ago
from cidash.client.report_card import markdown, report_csv, report_html
from cidash.config import CISystemConfig, Settings
from cidash.domain.views import (
    AlertOut,
    AlertPage,
    FeedMessage,
    Grid,
    GridCell,
    GridRow,
    HealthWindow,
    IncidentPage,
    ReportCard,
    RunOut,
    RunPage,
    SystemDetail,
    SystemSummary,
)
from cidash.store import Store
from tests.support.api import served
from tests.support.cli import invoke
from tests.support.paths import REPO
from tests.support.store_fixtures import ZUUL, observed, parsed
from tests.support.wait import until

pytestmark = pytest.mark.timeout(60)

NOW = datetime.now(UTC).replace(microsecond=0)
EVIL_NAME = "[bold]evil-ci[/bold]"
EVIL_DISPLAY = "<script>alert(1)</script>"
EVIL_REASON = "[red]boom[/red] \x1b[31mred"
TOKEN = "s3cret-token"


# -- fixture data, built from the read models ---------------------------------------------------


def health(window: str = "24h", **values: Any) -> HealthWindow:
    base: dict[str, Any] = {
        "window": window,
        "runs": 120,
        "success_rate": 0.953,
        "failure_rate": 0.04,
        "infra_error_rate": 0.007,
        "latency_p50_s": 2520.0,
        "latency_p95_s": 5400.0,
        "coverage": 0.99,
        "agreement": None,
        "disagreements": 0,
        "flakiness": 0.01,
    }
    return HealthWindow.model_validate({**base, **values})


def summary(name: str, **values: Any) -> SystemSummary:
    base: dict[str, Any] = {
        "id": 1,
        "name": name,
        "server": "review",
        "display_name": name,
        "owner": None,
        "is_reference": False,
        "confirmed": True,
        "source": "config",
        "projects": ["openstack/nova"],
        "state": "healthy",
        "state_reason": "",
        "last_seen": NOW - timedelta(hours=3),
        "health": health(),
        "sparkline": [1.0, None, 0.5],
    }
    return SystemSummary.model_validate({**base, **values})


SYSTEMS = [
    summary(
        "zuul",
        display_name="OpenDev Zuul",
        is_reference=True,
        owner="infra@opendev.org",
        state="healthy",
        state_reason="all good",
    ),
    summary(
        "acme-ci",
        id=2,
        display_name="ACME CI",
        owner="ci-team@acme.example",
        state="failing",
        state_reason="3 consecutive failures",
        last_seen=NOW - timedelta(minutes=5),
        health=health(runs=40, success_rate=0.5, infra_error_rate=0.25, latency_p50_s=600.0, agreement=0.8),
    ),
    summary(EVIL_NAME, id=3, display_name=EVIL_DISPLAY, state="degraded", state_reason=EVIL_REASON, last_seen=None),
]


def detail(s: SystemSummary) -> SystemDetail:
    quality = {
        "both_passed": 5,
        "failed_reference_passed": 2,
        "passed_reference_failed": 1,
        "both_failed": 1,
        "negatives": 4,
        "positives": 6,
        "false_negatives": 1,
        "false_negative_share": 0.25,
        "false_positive_share": 1 / 6,
    }
    windows = [
        health(
            w,
            runs=n,
            queue_p50_s=600.0,
            vote_quality=quality if w == "7d" else None,
            rechecks=9 if w == "7d" else 0,
            rechecks_per_100_runs=3.0 if w == "7d" else None,
            recheck_recovery=0.5 if w == "7d" else None,
        )
        for w, n in (("1h", 2), ("24h", 40), ("7d", 300), ("30d", 1234))
    ]
    return SystemDetail.model_validate({**s.model_dump(), "windows": windows})


def run(i: int, **values: Any) -> RunOut:
    base: dict[str, Any] = {
        "id": i,
        "server": "review",
        "ci": "acme-ci" if i % 2 else "zuul",
        "project": "openstack/nova",
        "branch": "master",
        "change": 1000 + i,
        "patchset": 1 + i % 3,
        "result": "FAILURE" if i % 2 else "SUCCESS",
        "result_class": "failure" if i % 2 else "success",
        "vote": -1 if i % 2 else 1,
        "pipeline": "check",
        "posted_at": NOW - timedelta(minutes=10 * i),
        "latency_s": 60.0 * 42 + i,
        "message_id": f"m-{i}",
        "source": "rest",
        "log_url": f"https://logs.example/{i}/",
        "jobs": [],
    }
    return RunOut.model_validate({**base, **values})


RUNS = [run(i) for i in range(1, 6)]
RUNS[2] = run(3, ci=EVIL_NAME, log_url="javascript:alert(1)")

GRID = Grid(
    project="openstack/nova",
    systems=["zuul", "acme-ci"],
    rows=[
        GridRow(
            server="review",
            change=2000,
            patchset=2,
            project="openstack/nova",
            branch="master",
            subject="Fix the [b]thing[/b]",
            url="https://review.example/c/2000",
            created_at=NOW - timedelta(hours=1),
            cells={
                "zuul": GridCell(
                    run_id=10,
                    result="SUCCESS",
                    result_class="success",
                    vote=1,
                    posted_at=NOW,
                    log_url=None,
                    runs=1,
                ),
                "acme-ci": GridCell(
                    run_id=11,
                    result="FAILURE",
                    result_class="failure",
                    vote=-1,
                    posted_at=NOW,
                    log_url=None,
                    runs=2,
                ),
            },
        ),
        GridRow(
            server="review",
            change=2000,
            patchset=1,
            project="openstack/nova",
            branch="master",
            subject=None,
            url=None,
            created_at=None,
            cells={
                "zuul": GridCell(
                    run_id=9,
                    result="NODE_FAILURE",
                    result_class="infra",
                    vote=None,
                    posted_at=NOW,
                    log_url=None,
                    runs=1,
                )
            },
        ),
    ],
)


def alert(i: int, **values: Any) -> AlertOut:
    base: dict[str, Any] = {
        "id": i,
        "rule": "acme-failing",
        "kind": "consecutive_failures",
        "ci": "acme-ci",
        "server": "review",
        "project": "openstack/nova",
        "severity": "critical" if i == 3 else "warning",
        "message": f"acme-ci failed {i} times in a row",
        "created_at": NOW - timedelta(minutes=i),
        "run_id": i,
        "muted": i == 1,
    }
    return AlertOut.model_validate({**base, **values})


ALERTS = [alert(i) for i in (3, 2, 1)]


def _numbers(**values: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "runs": 40,
        "success_rate": 0.5,
        "infra_error_rate": 0.25,
        "coverage": 0.8,
        "eligible": 10,
        "covered": 8,
        "agreement": 0.6,
        "false_negative_share": 0.5,
        "false_negatives": 2,
        "negatives": 4,
        "latency_p50_s": 600.0,
        "latency_p95_s": 5400.0,
        "queue_p50_s": 300.0,
        "recheck_recovery": 0.5,
        "rechecks": 6,
        "rechecks_per_100_runs": 15.0,
        "incidents_open": 1,
        "incidents_opened": 3,
    }
    return {**base, **values}


REPORT = ReportCard.model_validate(
    {
        "start": NOW - timedelta(days=7),
        "end": NOW,
        "previous_start": NOW - timedelta(days=14),
        "project": None,
        "rows": [
            {
                "name": "acme-ci",
                "server": "review",
                "display_name": "ACME CI",
                "is_reference": False,
                "state": "failing",
                "state_reason": "fails | often",
                "week": _numbers(),
                "previous": _numbers(success_rate=0.9, runs=38),
                "sparkline": [1.0, None, 0.5],
                "links": {
                    key: f"#/runs?ci=acme-ci&k={key}"
                    for key in ("runs", "success", "infra", "failures", "latency", "coverage", "agreement")
                }
                | {
                    "false_negative": "#/cases/acme-ci?kind=false_negative",
                    "incidents": "#/incidents?ci=acme-ci",
                    "rechecks": "#/rechecks/acme-ci?from=2026-11-23T00:00:00Z&to=2026-11-30T00:00:00Z",
                    "recovery": "#/runs?ci=acme-ci&result=failure",
                },
            }
        ],
    }
)


# -- the live feed -------------------------------------------------------------------------------


def feed_message(i: int) -> dict[str, Any]:
    """Feed message `i`: runs, alerts and state changes in turn."""
    if i % 3 == 1:
        data: dict[str, Any] = {"ci": "acme-ci", "state": "failing", "state_reason": f"reason {i} [i]x[/i]"}
        return {"type": "state", "id": i, "data": data}
    if i % 3 == 2:
        return {"type": "run", "id": i, "data": run(i, change=5000 + i).model_dump(mode="json")}
    return {"type": "alert", "id": i, "data": alert(i, message=f"alert number {i}").model_dump(mode="json")}


# -- the fake API server -------------------------------------------------------------------------


@dataclass
class FakeState:
    token: str | None = None
    ws_mode: str = "scenario"  # "scenario": 4008 then resume; "hold": hello, one message, wait
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    subscribes: list[dict[str, Any]] = field(default_factory=list)
    pongs: int = 0
    ws_headers: list[dict[str, str]] = field(default_factory=list)
    extra_systems: list[SystemSummary] = field(default_factory=list)

    def reset(self) -> None:
        self.extra_systems = []
        self.token = None
        self.ws_mode = "scenario"
        self.requests.clear()
        self.subscribes.clear()
        self.pongs = 0
        self.ws_headers.clear()


def _page(items: list[Any], limit: int, cursor: str | None) -> dict[str, Any]:
    start = int(cursor or 0)
    chunk = items[start : start + limit]
    nxt = str(start + limit) if start + limit < len(items) else None
    return {"items": [item.model_dump(mode="json") for item in chunk], "next_cursor": nxt}


def fake_app(state: FakeState) -> FastAPI:
    app = FastAPI()

    @app.middleware("http")
    async def check_token(request: Request, call_next: Any) -> Response:
        state.requests.append((request.url.path, dict(request.query_params)))
        if state.token is not None:
            given = request.headers.get("authorization")
            if given is None:
                return JSONResponse({"detail": "a token is required"}, status_code=401)
            if given != f"Bearer {state.token}":
                return JSONResponse({"detail": "invalid token"}, status_code=403)
        response: Response = await call_next(request)
        return response

    @app.get("/api/v1/systems")
    async def systems(window: str = "24h", project: str | None = None) -> Any:
        return [
            s.model_copy(update={"health": s.health.model_copy(update={"window": window})}).model_dump(mode="json")
            for s in [*SYSTEMS, *state.extra_systems]
        ]

    @app.get("/api/v1/systems/{name}")
    async def system(name: str) -> Any:
        for s in SYSTEMS:
            if s.name == name:
                return detail(s).model_dump(mode="json")
        return JSONResponse({"detail": f"no CI system named {name!r}"}, status_code=404)

    @app.get("/api/v1/runs")
    async def runs(
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
        cursor: str | None = None,
        ci: str | None = None,
    ) -> Any:
        return _page([r for r in RUNS if ci is None or r.ci == ci], limit, cursor)

    @app.get("/api/v1/grid")
    async def grid(project: str | None = None, limit: int = 20) -> Any:
        return GRID.model_dump(mode="json")

    @app.get("/api/v1/report")
    async def report(end: str | None = None, project: str | None = None) -> Any:
        return REPORT.model_dump(mode="json")

    @app.get("/api/v1/alerts")
    async def alerts(limit: Annotated[int, Query(ge=1, le=500)] = 50, cursor: str | None = None) -> Any:
        return _page(ALERTS, limit, cursor)

    @app.websocket("/api/v1/ws")
    async def ws(websocket: WebSocket) -> None:
        state.ws_headers.append(dict(websocket.headers))
        if state.token is not None and websocket.headers.get("authorization") != f"Bearer {state.token}":
            await websocket.close(code=1008)  # before accept: the handshake gets HTTP 403
            return
        await websocket.accept()
        try:
            subscribe = await websocket.receive_json()
            state.subscribes.append(subscribe)
            if state.ws_mode == "hold":
                await websocket.send_json({"type": "hello", "id": 10})
                await websocket.send_json(feed_message(11))
                while True:
                    await websocket.receive_text()
            elif len(state.subscribes) == 1:
                # first connection: live from 10; a ping, junk, three messages, then "slow consumer"
                await websocket.send_json({"type": "hello", "id": 10})
                await websocket.send_json({"type": "ping", "id": 10})
                pong = await asyncio.wait_for(websocket.receive_json(), 5)
                if pong == {"type": "pong"}:
                    state.pongs += 1
                await websocket.send_text("not json at all")
                await websocket.send_json({"type": "weird", "id": 99, "data": {}})
                for i in (11, 12, 13):
                    await websocket.send_json(feed_message(i))
                await websocket.close(code=4008, reason="slow consumer")
            else:
                # a resume: replay from `since` INCLUSIVE (one duplicate on purpose), then live
                since = subscribe.get("since")
                await websocket.send_json({"type": "hello", "id": 15})
                if isinstance(since, int):
                    for i in range(since, 16):
                        await websocket.send_json(feed_message(i))
                await websocket.send_json(feed_message(16))
                while True:
                    await websocket.receive_text()
        except WebSocketDisconnect:
            pass

    return app


class ServerThread:
    """uvicorn serving `app` on a free loopback port, in a background thread."""

    def __init__(self, app: Any) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, log_level="warning", lifespan="off", ws_ping_interval=None)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def __enter__(self) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            assert self.thread.is_alive(), "uvicorn died on start"
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.02)
        return self

    def __exit__(self, *_exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        self.sock.close()


STATE = FakeState()


@pytest.fixture(scope="module")
def fake_server() -> Iterator[ServerThread]:
    with ServerThread(fake_app(STATE)) as server:
        yield server


@pytest.fixture
def api(fake_server: ServerThread) -> Iterator[str]:
    STATE.reset()
    yield fake_server.url
    STATE.reset()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# -- helpers -------------------------------------------------------------------------------------


def rows(output: str) -> list[list[str]]:
    """The body rows of a rich table, as stripped cells."""
    return [[cell.strip() for cell in line.split("│")] for line in output.splitlines() if "│" in line]


def row_with(output: str, first: str) -> list[str]:
    found = [r for r in rows(output) if first in r]
    assert len(found) == 1, f"expected one row with {first!r} in:\n{output}"
    return found[0]


def note_after(output: str, first: str) -> str:
    """The note line printed under the one table row holding cell `first` (stripped)."""
    lines = output.splitlines()
    found = [i for i, line in enumerate(lines) if "│" in line and first in [c.strip() for c in line.split("│")]]
    assert len(found) == 1, f"expected one row with {first!r} in:\n{output}"
    following = lines[found[0] + 1] if found[0] + 1 < len(lines) else ""
    assert following.startswith("    ") and "│" not in following, f"no note under {first!r} in:\n{output}"
    return following.strip()


def assert_one_line_error(result: Result, message: str) -> None:
    assert result.exit_code == 1, result.output
    assert result.stderr == f"cidash: error: {message}\n"
    assert result.stdout == ""
    assert "Traceback" not in result.output
    assert isinstance(result.exception, SystemExit)


# -- formatting ----------------------------------------------------------------------------------


def test_formatting_helpers() -> None:
    assert duration(2520) == "42m"
    assert duration(45) == "45s"
    assert duration(3720) == "1h02m"
    assert duration(None) == "—"
    assert pct(0.953) == "95.3%" and pct(1.0) == "100%" and pct(0) == "0%" and pct(None) == "—"
    assert time_ago(NOW - timedelta(hours=3, minutes=5), NOW) == "3 h ago"
    assert time_ago(None, NOW) == "never"
    assert printable("a\x1b[31mb\u202ec\n") == "a\\x1b[31mb\\u202ec\\n"
    delays = [backoff_delay(a, 1.0, 30.0, rand=lambda: 1.0) for a in range(8)]
    assert delays == [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0]
    assert [column_key(i) for i in (0, 1, 25, 26, 27, 51, 52)] == ["A", "B", "Z", "AA", "AB", "AZ", "BA"]
    assert backoff_delay(3, 1.0, 30.0, rand=lambda: 0.0) == 4.0


# -- systems / system ----------------------------------------------------------------------------


def test_systems_table(api: str) -> None:
    result = invoke("systems", "--url", api, "--window", "7d")
    assert result.exit_code == 0, result.output
    assert "CI systems — last 7d" in result.stdout
    assert row_with(result.stdout, "zuul (ref)") == [
        "● healthy",
        "zuul (ref)",
        "120",
        "95.3%",
        "0.7%",
        "42m",
        "1h30m",
        "99.0%",
        "—",
        "3 h ago",
    ]
    assert note_after(result.stdout, "zuul (ref)") == "OpenDev Zuul · all good"  # the reason on its own line
    acme = row_with(result.stdout, "acme-ci")
    assert acme[0] == "● failing" and acme[3:5] == ["50.0%", "25.0%"] and acme[5] == "10m"
    # the fixture's times are fixed at import; the CLI renders against the clock of this moment
    assert acme[8:] == ["80.0%", time_ago(NOW - timedelta(minutes=5), datetime.now(UTC))]
    assert note_after(result.stdout, "acme-ci") == "ACME CI · 3 consecutive failures"
    assert STATE.requests == [("/api/v1/systems", {"window": "7d"})]


def test_systems_json_round_trips(api: str) -> None:
    result = invoke("systems", "--url", api, "--json", "--project", "openstack/nova")
    assert result.exit_code == 0, result.output
    parsed = TypeAdapter(list[SystemSummary]).validate_python(orjson.loads(result.stdout))
    assert parsed == SYSTEMS  # the fake answers the 24h window, as these fixtures are built
    assert STATE.requests == [("/api/v1/systems", {"window": "24h", "project": "openstack/nova"})]


def test_user_data_is_shown_literally_even_in_colour(api: str) -> None:
    result = invoke("systems", "--url", api, FORCE_COLOR="1", TERM="xterm-256color", NO_COLOR=None)
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "\x1b[1;31m● failing" in out  # states are coloured ...
    for literal in (EVIL_NAME, EVIL_DISPLAY, "[red]boom[/red]", "\\x1b[31mred"):
        assert literal in out  # ... but names and reasons are never markup
    assert "\x1b[31mred" not in out  # the escape sequence from the data does not reach the terminal
    plain = invoke("systems", "--url", api).stdout
    evil = row_with(plain, EVIL_NAME)
    assert evil[:2] == ["● degraded", EVIL_NAME] and evil[-1] == "never"
    assert note_after(plain, EVIL_NAME) == f"{EVIL_DISPLAY} · [red]boom[/red] \\x1b[31mred"


def test_system_detail(api: str) -> None:
    result = invoke("system", "acme-ci", "--url", api)
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert out.splitlines()[0] == "acme-ci — ACME CI"
    assert "state: ● failing — 3 consecutive failures" in out
    assert "owner: ci-team@acme.example" in out
    assert f"last seen: {time_ago(NOW - timedelta(minutes=5), datetime.now(UTC))}" in out
    assert [r[:2] for r in rows(out)] == [["1h", "2"], ["24h", "40"], ["7d", "300"], ["30d", "1234"]]
    assert row_with(out, "30d")[2:8] == ["95.3%", "4.0%", "0.7%", "42m", "1h30m", "10m"]  # 10m: queue p50
    assert (
        "7d votes against the reference: false -1 25.0% (1 of 4 -1s where it passed and the change merged), "
        "false +1 16.7% (1 of 6 +1s where it failed)"
    ) in out
    assert "rechecks aimed at it: 1h 0 · 24h 0 · 7d 9 (3.0/100 runs) · 30d 0" in out
    assert "7d 50.0%" in out.split("recovered after a recheck:")[1]

    as_json = invoke("system", "acme-ci", "--url", api, "--json")
    assert SystemDetail.model_validate(orjson.loads(as_json.stdout)) == detail(SYSTEMS[1])


def test_every_table_fits_a_100_column_terminal(api: str) -> None:
    long_name = "a-very-long-third-party-ci-account-name-that-would-not-fit"
    STATE.extra_systems = [summary(long_name, id=9, state_reason="x " * 120)]
    for command in (["systems"], ["system", "acme-ci"], ["runs"], ["grid", "openstack/nova"], ["alerts"]):
        result = invoke(*command, "--url", api, COLUMNS="100")
        assert result.exit_code == 0, result.output
        lines = result.stdout.splitlines()
        assert len(lines) >= 3
        assert max(len(line) for line in lines) <= 100, f"{command}:\n{result.stdout}"
    systems = invoke("systems", "--url", api, COLUMNS="100").stdout
    assert any(line.startswith(f"{NOTE_INDENT}x x x") for line in systems.splitlines())  # wrapped under its row
    assert "● healthy" in systems and "a-very-long-" in systems  # the long name is cut, the row stays one line


def test_unknown_system_is_a_404_message(api: str) -> None:
    assert_one_line_error(invoke("system", "nope", "--url", api), "no CI system named 'nope'")


# -- runs ----------------------------------------------------------------------------------------


def test_runs_table_and_next_page_hint(api: str) -> None:
    result = invoke("runs", "--url", api, "--limit", "3")
    assert result.exit_code == 0, result.output
    first = row_with(result.stdout, "1001/2")
    assert first == [
        (NOW - timedelta(minutes=10)).strftime("%Y-%m-%d %H:%M"),
        "acme-ci",
        "1001/2",
        "openstack/nova",
        "FAILURE",
        "-1",
        "42m",
    ]
    assert note_after(result.stdout, "1001/2") == "https://logs.example/1/"  # the log on its own line
    assert row_with(result.stdout, "1002/3")[4:6] == ["SUCCESS", "+1"]
    evil = row_with(result.stdout, "1003/1")
    assert evil[1] == EVIL_NAME
    with pytest.raises(AssertionError, match="no note"):
        note_after(result.stdout, "1003/1")  # a javascript: URL is not shown at all
    assert len(rows(result.stdout)) == 3
    assert "more runs match: --all fetches every page, --cursor 3 the next one" in result.stdout


def test_runs_all_follows_cursors(api: str) -> None:
    result = invoke("runs", "--url", api, "--limit", "2", "--all", "--json")
    assert result.exit_code == 0, result.output
    page = RunPage.model_validate(orjson.loads(result.stdout))
    assert page.items == RUNS and page.next_cursor is None
    assert [q.get("cursor") for _, q in STATE.requests] == [None, "2", "4"]

    table = invoke("runs", "--url", api, "--limit", "2", "--all")
    assert len(rows(table.stdout)) == 5 and "--all" not in table.stdout


def test_runs_filters_and_since(api: str) -> None:
    result = invoke("runs", "--url", api, "--ci", "zuul", "--result", "success", "--since", "24h", "--json")
    assert result.exit_code == 0, result.output
    assert [r.ci for r in RunPage.model_validate_json(result.stdout).items] == ["zuul", "zuul"]
    ((path, query),) = STATE.requests
    assert path == "/api/v1/runs" and query["ci"] == "zuul" and query["result"] == "success"
    start = datetime.fromisoformat(query["from"])
    assert abs(start - (datetime.now(UTC) - timedelta(hours=24))) < timedelta(minutes=1)
    assert "to" not in query and query["limit"] == "50"


def test_runs_from_to(api: str) -> None:
    result = invoke("runs", "--url", api, "--from", "2026-11-01", "--to", "2026-11-02T12:00+02:00", "--json")
    assert result.exit_code == 0, result.output
    ((_, query),) = STATE.requests
    assert (query["from"], query["to"]) == ("2026-11-01T00:00:00Z", "2026-11-02T10:00:00Z")


def test_bad_since_is_one_line_and_asks_nothing(api: str) -> None:
    result = invoke("runs", "--url", api, "--since", "3x")
    assert_one_line_error(result, "--since: '3x' is not a time span; use a number and a unit s, m, h, d or w (e.g. 7d)")
    assert STATE.requests == []
    both = invoke("runs", "--url", api, "--since", "1d", "--from", "2026-01-01")
    assert_one_line_error(both, "use either --since or --from/--to, not both")


def test_server_validation_error_is_shown(api: str) -> None:
    result = invoke("runs", "--url", api, "--limit", "1000")
    assert_one_line_error(
        result, "the cidash API rejected the request: limit: Input should be less than or equal to 500"
    )


# -- grid and alerts -----------------------------------------------------------------------------


def test_grid_matrix(api: str) -> None:
    result = invoke("grid", "openstack/nova", "--url", api, "--limit", "5")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "openstack/nova: newest 2 patch sets" in out
    header = next(line for line in out.splitlines() if "change/ps" in line)
    assert [cell.strip() for cell in header.split("┃")] == ["change/ps", "subject", "A", "B"]
    assert "A zuul   B acme-ci" in out  # lettered columns in the server's order, the key under the table
    assert row_with(out, "2000/2") == ["2000/2", "Fix the [b]thing[/b]", "✓", "✗2"]  # ✗2: two runs
    assert row_with(out, "2000/1") == ["2000/1", "—", "!", "·"]
    assert STATE.requests == [("/api/v1/grid", {"project": "openstack/nova", "limit": "5"})]
    as_json = invoke("grid", "openstack/nova", "--url", api, "--json")
    assert Grid.model_validate_json(as_json.stdout) == GRID


def test_alerts_table_json_and_all(api: str) -> None:
    result = invoke("alerts", "--url", api)
    assert result.exit_code == 0, result.output
    critical = row_with(result.stdout, "3")
    assert critical[2:] == ["critical", "consecutive_failures", "acme-ci", "openstack/nova"]
    assert note_after(result.stdout, "3").endswith(" ago · acme-ci failed 3 times in a row")
    assert row_with(result.stdout, "1")[2] == "warning (muted)"
    page = AlertPage.model_validate_json(invoke("alerts", "--url", api, "--json", "--limit", "2").stdout)
    assert [a.id for a in page.items] == [3, 2] and page.next_cursor == "2"
    every = AlertPage.model_validate_json(invoke("alerts", "--url", api, "--json", "--limit", "2", "--all").stdout)
    assert every.items == ALERTS and every.next_cursor is None


def test_report_card_in_every_format(api: str) -> None:
    for fmt, render in (("md", markdown), ("html", report_html), ("csv", report_csv)):
        result = invoke("report", "--week", "--format", fmt, "--url", api, "--end", "2026-11-30")
        assert result.exit_code == 0, result.output
        assert result.stdout == render(REPORT, api)
    assert STATE.requests[-1] == ("/api/v1/report", {"end": "2026-11-30"})
    md = invoke("report", "--week", "--url", api).stdout  # Markdown by default
    acme = next(line for line in md.splitlines() if line.startswith("| acme-ci |"))
    assert "| failing | 40 ↑ [1] | 50% ↓ [2] | 25% [3] |" in acme  # arrows against the week before
    assert f"[2]: {api}/#/runs?ci=acme-ci&k=success" in md.splitlines()
    assert "* acme-ci: fails | often" in md
    as_json = invoke("report", "--week", "--url", api, "--json")
    assert ReportCard.model_validate_json(as_json.stdout) == REPORT
    for args, message in (
        (["report"], "say which period: --week"),
        (["report", "--week", "--format", "pdf"], "--format must be one of md, html, csv"),
    ):
        result = invoke(*args, "--url", api)
        assert result.exit_code == 2 and message in result.stderr, result.output


# -- errors --------------------------------------------------------------------------------------


def test_unreachable_server_is_one_line() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    message = f"cannot reach the cidash API at {url}: connection refused — is `cidash serve` running?"
    for command in (["systems"], ["system", "zuul"], ["runs", "--all"], ["grid", "p"], ["alerts"], ["watch"]):
        assert_one_line_error(invoke(*command, "--url", url), message)
    assert_one_line_error(invoke("systems", CIDASH_URL=url), message)  # the env var is honoured


def test_a_password_in_the_url_is_never_repeated() -> None:
    port = free_port()
    message = f"cannot reach the cidash API at http://127.0.0.1:{port}: connection refused — is `cidash serve` running?"
    for command in (["systems"], ["watch"]):
        result = invoke(*command, "--url", f"http://admin:hunter2@127.0.0.1:{port}/")
        assert_one_line_error(result, message)
    bad = invoke("systems", "--url", "ftp://admin:hunter2@x")
    assert_one_line_error(bad, "--url must be an http:// or https:// URL such as http://127.0.0.1:8080, not 'ftp://x'")


def test_token_errors_and_token_from_env(api: str) -> None:
    STATE.token = TOKEN
    missing = invoke("systems", "--url", api)
    assert_one_line_error(
        missing, "the cidash API needs a token (401: a token is required); pass it with --token or set CIDASH_TOKEN"
    )
    wrong = invoke("alerts", "--url", api, "--token", "nope")
    assert_one_line_error(wrong, "the cidash API refused the token (403: invalid token); check --token or CIDASH_TOKEN")
    assert invoke("systems", "--url", api, "--token", TOKEN).exit_code == 0
    assert invoke("systems", CIDASH_URL=api, CIDASH_TOKEN=TOKEN).exit_code == 0
    watch = invoke("watch", "--url", api)
    assert watch.exit_code == 1 and "--token" in watch.stderr and watch.stderr.count("\n") == 1


def test_bad_url_and_window(api: str) -> None:
    assert_one_line_error(
        invoke("systems", "--url", "ftp://x"),
        "--url must be an http:// or https:// URL such as http://127.0.0.1:8080, not 'ftp://x'",
    )
    assert_one_line_error(
        invoke("systems", "--url", api, "--window", "2d"), "--window must be one of 1h, 24h, 7d, 30d, not '2d'"
    )


# -- watch ---------------------------------------------------------------------------------------


@pytest.mark.timeout(20)  # a watch that misses a message waits for it forever
def test_watch_resumes_after_slow_consumer_close_without_duplicates(api: str) -> None:
    result = invoke("watch", "--url", api, "--ci", "acme-ci", "--project", "openstack/nova", "--max-messages", "6")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert [line.split()[0] for line in lines] == ["#11", "#12", "#13", "#14", "#15", "#16"]
    assert lines[2] == "#13 state acme-ci → ● failing: reason 13 [i]x[/i]"
    assert lines[1].startswith("#12 alert ") and lines[1].endswith("warning acme-ci alert number 12")
    when = (NOW - timedelta(minutes=110)).strftime("%Y-%m-%d %H:%M")
    assert lines[0] == f"#11 run   {when} acme-ci openstack/nova 5011/3 FAILURE -1 in 42m https://logs.example/11/"
    # the first subscription starts live; the second resumes after the last message seen
    assert STATE.subscribes == [
        {"type": "subscribe", "kinds": ["run", "alert", "state"], "ci": ["acme-ci"], "projects": ["openstack/nova"]},
        {
            "type": "subscribe",
            "kinds": ["run", "alert", "state"],
            "ci": ["acme-ci"],
            "projects": ["openstack/nova"],
            "since": 13,
        },
    ]
    assert STATE.pongs == 1
    assert "slow consumer (4008)" in result.stderr and "resum" in result.stderr


@pytest.mark.timeout(20)  # a watch that misses a message waits for it forever
def test_watch_json_lines(api: str) -> None:
    STATE.token = TOKEN
    result = invoke("watch", "--url", api, "--kinds", "run,state", "--json", "--max-messages", "6", CIDASH_TOKEN=TOKEN)
    assert result.exit_code == 0, result.output
    messages = [FeedMessage.model_validate_json(line) for line in result.stdout.splitlines()]
    assert [m.id for m in messages] == [11, 12, 13, 14, 15, 16]
    assert [orjson.loads(line) for line in result.stdout.splitlines()] == [feed_message(i) for i in range(11, 17)]
    assert STATE.subscribes[0]["kinds"] == ["run", "state"]
    assert all(h.get("authorization") == f"Bearer {TOKEN}" for h in STATE.ws_headers)


def test_watch_rejects_unknown_kinds(api: str) -> None:
    assert_one_line_error(
        invoke("watch", "--url", api, "--kinds", "run,bogus"),
        "--kinds takes a comma-separated list of run, alert, state, incident, not 'run,bogus'",
    )


@pytest.mark.timeout(20)  # a watch that misses a message waits for it forever
def test_watch_ctrl_c_exits_zero(api: str) -> None:
    STATE.ws_mode = "hold"
    script = "import typer\nfrom cidash.client.commands import register\napp = typer.Typer()\nregister(app)\napp()\n"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, "-c", script, "watch", "--url", api],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        text=True,
        # a run started in the background inherits SIGINT ignored, and Python then never raises
        # KeyboardInterrupt: give the child the default disposition, as a terminal would
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()  # flushed at once although stdout is a pipe
        assert first.startswith("#11 run "), first
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert err == "" and out == ""


# -- against the real API ------------------------------------------------------------------------


async def test_against_the_real_api(migrated_db_url: str, store: Store, tmp_path: Path) -> None:
    from cidash.api.app import create_app

    zuul = CISystemConfig(account="zuul", reference=True, display_name="OpenDev Zuul")
    await store.sync_ci_configs([zuul], ["review"])
    now = datetime.now(UTC).replace(microsecond=0)
    subject = "<script>x</script> [b]y[/b]"
    items = []
    for i in range(3):
        posted = now - timedelta(hours=3 * i + 1)
        created = posted - timedelta(hours=1)
        common: dict[str, Any] = {"change": 1000 + i, "created_at": created, "subject": subject}
        items.append((observed(posted_at=posted, **common), parsed()))
        success = observed("Build succeeded.", author=ZUUL, posted_at=posted + timedelta(minutes=5), **common)
        items.append((success, parsed(result="SUCCESS", ci="zuul", vote=1)))
    stats = await store.write_comments(items)
    assert stats.runs_inserted == 6
    settings = Settings(database_url=migrated_db_url, ci=[zuul])
    app = create_app(settings, store, frontend_dir=tmp_path)

    async with served(app) as url:

        async def call(*args: str) -> Result:
            return await asyncio.to_thread(invoke, *args, "--url", url)

        systems = await call("systems")
        assert systems.exit_code == 0, systems.output
        zuul_row = row_with(systems.stdout, "zuul (ref)")
        assert zuul_row[-1] == "55 min ago" and note_after(systems.stdout, "zuul (ref)").startswith("OpenDev Zuul · ")
        assert row_with(systems.stdout, "acme-ci")[-1] == "1 h ago"
        assert note_after(systems.stdout, "acme-ci").startswith("ACME CI · ")
        as_json = await call("systems", "--json")
        parsed_systems = TypeAdapter(list[SystemSummary]).validate_json(as_json.stdout)
        assert {s.name: s.is_reference for s in parsed_systems} == {"acme-ci": False, "zuul": True}

        every = await call("runs", "--all", "--limit", "1", "--json")  # five real cursors to follow
        page = RunPage.model_validate_json(every.stdout)
        assert len(page.items) == 6 and page.next_cursor is None
        assert [r.posted_at for r in page.items] == sorted((r.posted_at for r in page.items), reverse=True)
        assert len({r.id for r in page.items}) == 6

        recent = RunPage.model_validate_json((await call("runs", "--since", "2h", "--json")).stdout)
        assert sorted(r.ci for r in recent.items) == ["acme-ci", "zuul"]
        assert {r.change for r in recent.items} == {1000}

        acme = await call("runs", "--ci", "acme-ci")
        assert acme.exit_code == 0, acme.output
        assert [r[1:] for r in rows(acme.stdout)] == [
            ["acme-ci", f"{1000 + i}/1", "openstack/nova", "FAILURE", "-1", "1h00m"] for i in range(3)
        ]
        assert note_after(acme.stdout, "1000/1") == "https://logs.example/1"

        grid = await call("grid", "openstack/nova")
        assert grid.exit_code == 0, grid.output
        for i in range(3):
            cells = row_with(grid.stdout, f"{1000 + i}/1")
            assert cells[1] == subject and sorted(cells[2:]) == ["✓", "✗"]

        assert_one_line_error(await call("system", "nope"), "no CI system named 'nope'")
        assert_one_line_error(
            await call("runs", "--limit", "1000"),
            "the cidash API rejected the request: limit: Input should be less than or equal to 500",
        )


async def test_watch_against_the_real_live_feed(store: Store, tmp_path: Path) -> None:
    """The real `/api/v1/ws` (cidash.live.hub) over runs written through the store: a replay with
    ``--since-id``, then a burst into a tiny server queue (a slow-consumer close, resumed with
    ``since``); every id once, in order."""
    from cidash.api.app import create_app
    from cidash.api.live_slots import close_live, live_clients
    from cidash.live import hub as live
    from cidash.live.bus import make_bus
    from cidash.store import feed
    from cidash.store.inserted_run import InsertedRun

    async def feed_only(conn: Any, runs: Any) -> list[FeedMessage]:
        inserted: list[InsertedRun] = list(runs)
        return await feed.append_run_messages(conn, inserted)

    store.after_insert = feed_only
    bus = make_bus(None)
    await bus.start()
    options = live.LiveOptions(queue_size=2, ping_interval_s=0.3)
    app = create_app(Settings(), store, bus=bus, live_options=options, frontend_dir=tmp_path)
    now = datetime.now(UTC).replace(microsecond=0)

    async def write(first_change: int, count: int) -> None:
        batch = [
            (observed(change=first_change + i, posted_at=now - timedelta(minutes=i)), parsed()) for i in range(count)
        ]
        stats = await store.write_comments(batch)
        messages = stats.after_insert
        assert isinstance(messages, list) and len(messages) == count
        await bus.publish(messages)

    try:
        await write(1000, 3)  # feed ids 1, 2, 3
        async with served(app) as url:
            args = ("watch", "--since-id", "1", "--max-messages", "21", "--json", "--url", url)
            watching = asyncio.ensure_future(asyncio.to_thread(invoke, *args))
            await until(lambda: live_clients() > 0, 10, "watch to connect")
            await asyncio.sleep(0.5)  # the replay (2, 3) and a ping or two
            await write(2000, 20)  # feed ids 4..23 in one burst
            result = await asyncio.wait_for(watching, 30)
        assert result.exit_code == 0, result.output
        assert "slow consumer (4008)" in result.stderr and "resuming after #3" in result.stderr
        messages = [FeedMessage.model_validate_json(line) for line in result.stdout.splitlines()]
        assert [m.id for m in messages] == list(range(2, 23))
        assert [RunOut.model_validate(m.data).change for m in messages[2:]] == list(range(2000, 2019))
    finally:
        await close_live(app)
        await bus.close()


async def test_incidents_and_ack_against_the_real_api(migrated_db_url: str, store: Store, tmp_path: Path) -> None:
    from cidash.api.app import create_app
    from tests.support.alerts_world import STREAK, fail_where_reference_passed, rule, with_reference

    rules = [rule("consecutive-failures", "consecutive_failures", **STREAK), rule("each-failure", "failure")]
    world = await with_reference(store, rules)
    for change in (1, 2, 3):
        await fail_where_reference_passed(world, change)
    settings = Settings(database_url=migrated_db_url, api={"write_token": TOKEN})  # type: ignore[arg-type]
    app = create_app(settings, store, alerts=world.engine, frontend_dir=tmp_path)

    async with served(app) as url:

        async def call(*args: str) -> Result:
            return await asyncio.to_thread(invoke, *args, "--url", url, COLUMNS="100")

        listed = await call("incidents")
        assert listed.exit_code == 0, listed.output
        lines = listed.stdout.splitlines()
        assert max(len(line) for line in lines) <= 100, listed.stdout
        streak = row_with(listed.stdout, "consecutive-failures")
        assert streak[2:] == ["warning", "acme-ci", "consecutive-failures", "firing", "—"]
        assert "3 of 3 runs failed where the reference CI passed" in note_after(listed.stdout, "consecutive-failures")
        as_json = IncidentPage.model_validate_json((await call("incidents", "--json")).stdout)
        assert sorted(i.rule for i in as_json.items) == ["consecutive-failures", "each-failure"]
        target = next(i for i in as_json.items if i.rule == "each-failure")

        acked = await call("ack", str(target.id), "--as", "Olga Operator", "--note", "looking at their lab",
                           "--token", TOKEN)  # fmt: skip
        assert acked.exit_code == 0, acked.output
        assert row_with(acked.stdout, "each-failure")[-1] == "Olga Operator"
        note = " ".join(line.strip() for line in acked.stdout.splitlines()[3:])  # the note, wrapped under the row
        at = re.search(r"acked by Olga Operator at (\d{4}-\d\d-\d\d \d\d:\d\d): looking at their lab", note)
        assert at is not None, acked.stdout
        stored = (await call("incidents", "--json")).stdout
        acked_at = next(i.acked_at for i in IncidentPage.model_validate_json(stored).items if i.id == target.id)
        assert acked_at is not None and at.group(1) == acked_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M")
        assert max(len(line) for line in (await call("incidents")).stdout.splitlines()) <= 100

        assert_one_line_error(await call("ack", "999999", "--as", "Olga", "--token", TOKEN), "no incident 999999")
        assert_one_line_error(
            await call("ack", "0", "--as", "Olga", "--token", TOKEN),
            "the cidash API rejected the request: incident_id: Input should be greater than or equal to 1",
        )
        no_token = await call("ack", str(target.id), "--as", "Olga")
        assert no_token.exit_code == 1 and "needs a token" in no_token.stderr and no_token.stdout == ""
        not_a_number = await call("ack", "x1", "--as", "Olga", "--token", TOKEN)
        assert not_a_number.exit_code == 2 and "Invalid value for 'incident'" in not_a_number.output
