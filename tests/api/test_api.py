"""The HTTP API on both engines, over a few hours of simulated Gerrit history: every endpoint,
filters, cursor pagination under concurrent inserts, CSV, errors, auth, badges, probes, metrics,
the dashboard's static files and the security headers."""

from __future__ import annotations

import asyncio
import csv
import io
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
import websockets
from fastapi import APIRouter
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr

from cidash import metrics
from cidash.api import create_app
from cidash.api.app import content_security_policy
from cidash.api.routes.runs import CSV_COLUMNS
from cidash.api.ws import CLOSE_UNAVAILABLE
from cidash.domain.comments import AccountRef
from cidash.domain.views import ServerStatus
from cidash.sim.world import World
from cidash.store import Store
from cidash.store import schema as m
from cidash.store.engine import create_engine
from cidash.store.rollups import rebuild_rollups
from cidash.store.schema import rollups_t
from tests.support.api import SERVER, WRITE, client_for, load_history, served, settings_for
from tests.support.paths import REPO
from tests.support.store_fixtures import observed, parsed
from tests.support.stored import ci_systems
from tests.support.wait import until_awaited

READ = "read-secret"
STATES = {"healthy", "degraded", "failing", "silent", "unknown"}
CSP = content_security_policy("cidash.test")  # the test client's Host


# -- data and clients ----------------------------------------------------------------------------


@dataclass
class Loaded:
    store: Store
    world: World
    client: httpx.AsyncClient
    app: Any


@pytest.fixture
async def loaded(store: Store, tmp_path: Path) -> AsyncIterator[Loaded]:
    world = await load_history(store)
    app = create_app(settings_for(store, write_token=SecretStr(WRITE)), store, frontend_dir=tmp_path / "none")
    async with client_for(app) as client:
        yield Loaded(store, world, client, app)


async def all_runs(client: httpx.AsyncClient, path: str = "/api/v1/runs", **params: Any) -> list[dict[str, Any]]:
    """Every run a filter matches, walking the cursor."""
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        query = {**params, "limit": 500, **({"cursor": cursor} if cursor else {})}
        response = await client.get(path, params=query)
        assert response.status_code == 200, response.text
        page = response.json()
        items.extend(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            return items


async def run_count(store: Store) -> int:
    return await store.run_count()


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


# -- systems ---------------------------------------------------------------------------------------


async def test_systems_summary_windows_and_detail(loaded: Loaded) -> None:
    client = loaded.client
    response = await client.get("/api/v1/systems")
    assert response.status_code == 200
    systems = response.json()
    names = {s["name"] for s in systems}
    stored = await ci_systems(loaded.store)
    assert names == {s.account_key for s in stored} and "zuul" in names
    assert all(s["state"] in STATES and s["state_reason"] for s in systems)
    assert all(s["health"]["window"] == "24h" and len(s["sparkline"]) == 24 for s in systems)
    # the rollups count every stored run (the history is 4 h long)
    assert sum(s["health"]["runs"] for s in systems) == await run_count(loaded.store)
    zuul = next(s for s in systems if s["name"] == "zuul")
    assert zuul["is_reference"] and zuul["source"] == "config" and zuul["display_name"] == "Zuul"
    assert zuul["health"]["runs"] >= 5 and zuul["health"]["latency_p50_s"] > 0
    assert any(s["health"]["agreement"] is not None for s in systems if not s["is_reference"])

    # the 1 h window is counted exactly from the runs of the last hour
    hour = (await client.get("/api/v1/systems", params={"window": "1h"})).json()
    since = datetime.now(UTC) - timedelta(hours=1)
    recent = await all_runs(client, **{"from": iso(since + timedelta(seconds=5))})
    assert abs(sum(s["health"]["runs"] for s in hour) - len(recent)) <= 3  # a few seconds apart
    for window, points in (("7d", 14), ("30d", 14)):
        body = (await client.get("/api/v1/systems", params={"window": window})).json()
        assert {s["health"]["window"] for s in body} == {window}
        assert all(len(s["sparkline"]) == points for s in body)
        if window == "30d":  # computed in the background: null and pending at first, then as for 7 d
            assert all(s["health"]["metrics_pending"] or s["health"]["coverage"] is not None for s in body)

            async def computed(window: str = window) -> list[dict[str, Any]] | None:
                again = (await client.get("/api/v1/systems", params={"window": window})).json()
                return None if any(s["health"]["metrics_pending"] for s in again) else again

            body = await until_awaited(computed, 60, "the 30 d metrics to be computed")
            seven = (await client.get("/api/v1/systems", params={"window": "7d"})).json()
            week = {s["name"]: s["health"] for s in seven}
            for s in body:  # the history is 4 h long: the same patch sets in both windows
                assert (s["health"]["eligible"], s["health"]["covered"]) == (
                    week[s["name"]]["eligible"],
                    week[s["name"]]["covered"],
                )
                assert s["health"]["agreement"] == week[s["name"]]["agreement"]

    measures = (await client.get("/api/v1/measures")).json()
    assert "eligible" in measures["coverage"] and "branch" in measures["coverage"]
    for s in systems:
        h = s["health"]
        assert 0 <= h["covered"] <= h["eligible"]
        assert h["coverage"] == (pytest.approx(h["covered"] / h["eligible"]) if h["eligible"] else None)

    nova = (await client.get("/api/v1/systems", params={"project": "openstack/nova"})).json()
    assert nova and all("openstack/nova" in s["projects"] for s in nova)
    assert len(nova) < len(systems)
    by_name = {s["name"]: s for s in systems}
    assert all(s["health"]["runs"] <= by_name[s["name"]]["health"]["runs"] for s in nova)

    detail = await client.get("/api/v1/systems/zuul", params={"server": SERVER})
    assert detail.status_code == 200
    body = detail.json()
    assert [w["window"] for w in body["windows"]] == ["1h", "24h", "7d", "30d"]
    assert body["health"] == body["windows"][1] and body["state"] == zuul["state"]
    for path in ("/api/v1/systems/zuul?server=elsewhere", "/api/v1/systems/no-such-ci"):
        missing = await client.get(path)
        assert missing.status_code == 404 and "no CI system" in missing.json()["detail"]


async def test_systems_search_by_name_display_name_or_owner(loaded: Loaded) -> None:
    client = loaded.client
    every = (await client.get("/api/v1/systems")).json()
    other = next(s["name"] for s in every if s["name"] != "zuul")
    patched = await client.patch(
        f"/api/v1/systems/{other}",
        json={"owner": "Ops-Team@Example.org", "display_name": "Nightly Hardware Lab"},
        headers={"Authorization": f"Bearer {WRITE}"},
    )
    assert patched.status_code == 200, patched.text

    async def found(q: str) -> list[str]:
        response = await client.get("/api/v1/systems", params={"q": q})
        assert response.status_code == 200, response.text
        return sorted(s["name"] for s in response.json())

    assert await found("ops-team@example") == [other]  # owner, case-insensitive
    assert await found("  hardware LAB ") == [other]  # display name, blanks around ignored
    assert await found("ZUU") == ["zuul"]  # name (and display name "Zuul")
    assert other in await found(other[2:-1].upper())  # any part of the name
    assert await found("no such thing anywhere") == []
    assert await found("") == sorted(s["name"] for s in every)
    too_long = await client.get("/api/v1/systems", params={"q": "x" * 256})
    assert too_long.status_code == 422


# -- runs ------------------------------------------------------------------------------------------


async def test_run_filters_and_single_runs(loaded: Loaded) -> None:
    client = loaded.client
    runs = await all_runs(client)
    assert len(runs) == await run_count(loaded.store) > 50
    keys = [(r["posted_at"], r["id"]) for r in runs]
    assert keys == sorted(keys, reverse=True)  # newest first

    busiest = Counter(r["ci"] for r in runs if r["ci"] != "zuul").most_common(1)[0][0]
    theirs = await all_runs(client, ci=busiest)
    assert theirs and {r["ci"] for r in theirs} == {busiest}
    assert len(theirs) == sum(1 for r in runs if r["ci"] == busiest)
    nova = await all_runs(client, project="openstack/nova", branch="master")
    assert nova and all(r["project"] == "openstack/nova" and r["branch"] == "master" for r in nova)
    assert len(nova) == sum(1 for r in runs if r["project"] == "openstack/nova" and r["branch"] == "master")
    by_class = {cls: await all_runs(client, result=cls) for cls in ("success", "failure", "infra", "other")}
    assert sum(len(items) for items in by_class.values()) == len(runs)
    for cls, items in by_class.items():
        assert all(r["result_class"] == cls for r in items)
    words = Counter(r["result"] for r in runs)
    word, count = words.most_common(2)[-1]
    assert len(await all_runs(client, result=word.lower())) == count  # a raw result word, any case
    middle = runs[len(runs) // 2]["posted_at"]
    since = datetime.fromisoformat(middle)
    window = await all_runs(client, **{"from": iso(since), "to": iso(since + timedelta(hours=1))})
    assert window and all(since <= datetime.fromisoformat(r["posted_at"]) < since + timedelta(hours=1) for r in window)

    one = runs[3]
    response = await client.get(f"/api/v1/runs/{one['id']}")
    assert response.status_code == 200
    full = response.json()
    assert (
        full["comment"]
        and full["id"] == one["id"]
        and {k: full[k] for k in one if k != "comment"} == {k: v for k, v in one.items() if k != "comment"}
    )
    assert one["comment"] is None  # lists leave the raw comment out
    with_url = next(r for r in runs if any((j["url"] or "").startswith("http") for j in r["jobs"]))
    first_http = next(j["url"] for j in with_url["jobs"] if (j["url"] or "").startswith(("http://", "https://")))
    assert with_url["log_url"] == first_http
    assert (await client.get("/api/v1/runs/999999999")).status_code == 404


async def test_cursor_walk_sees_every_run_once_under_inserts(loaded: Loaded) -> None:
    client, store = loaded.client, loaded.store
    before = {r["id"] for r in await all_runs(client)}
    seen: list[int] = []
    cursor: str | None = None
    page_no = 0
    while True:
        params: dict[str, Any] = {"limit": 7}
        if cursor:
            params["cursor"] = cursor
        page = (await client.get("/api/v1/runs", params=params)).json()
        seen.extend(r["id"] for r in page["items"])
        page_no += 1
        if page_no in (1, 3):  # new runs arrive between pages: newer ones and backfilled older ones
            newest = datetime.now(UTC)
            oldest = min(datetime.fromisoformat(r["posted_at"]) for r in page["items"])
            await store.write_comments(
                [
                    (
                        observed(f"Build succeeded {page_no} {i}", posted_at=when, change=77000 + i, project="x/y"),
                        parsed(result="SUCCESS"),
                    )
                    for i, when in enumerate([newest, oldest - timedelta(minutes=1), oldest - timedelta(hours=1)])
                ]
            )
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)), "a run was served twice"
    assert before <= set(seen), "a run that existed before the walk was skipped"
    assert page_no > 10


async def test_csv_export(loaded: Loaded) -> None:
    client = loaded.client
    response = await client.get("/api/v1/runs", params={"format": "csv", "ci": "zuul"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    rows = list(csv.reader(io.StringIO(response.text)))
    assert tuple(rows[0]) == CSV_COLUMNS
    json_runs = await all_runs(client, ci="zuul")
    assert len(rows) - 1 == len(json_runs)
    assert [int(row[0]) for row in rows[1:]] == [r["id"] for r in json_runs]
    record = dict(zip(CSV_COLUMNS, rows[1], strict=True))
    assert record["ci"] == "zuul" and record["result_class"] in {"success", "failure", "infra", "other"}
    busy = Counter(r["ci"] for r in await all_runs(client) if r["ci"] != "zuul").most_common(1)[0][0]
    limited = await client.get(f"/api/v1/systems/{busy}/runs", params={"format": "csv", "limit": 5})
    assert limited.status_code == 200
    lines = list(csv.reader(io.StringIO(limited.text)))
    assert len(lines) == 6 and all(row[2] == busy for row in lines[1:])
    page = (await client.get(f"/api/v1/systems/{busy}/runs", params={"limit": 5})).json()
    assert [r["id"] for r in page["items"]] == [int(row[0]) for row in lines[1:]] and page["next_cursor"]


async def test_bad_parameters_are_422_with_a_message(loaded: Loaded) -> None:
    client = loaded.client
    cases = {
        "/api/v1/systems?window=2d": "window",
        "/api/v1/runs?limit=0": "limit",
        "/api/v1/runs?limit=501": "limit",
        "/api/v1/runs?cursor=garbage": "cursor",
        "/api/v1/runs?cursor=eyJ0IjoiMjAyNiJ9": "cursor",  # base64 JSON, but not a cursor
        "/api/v1/runs?from=notadate": "from",
        "/api/v1/runs?to=2026-13-45": "to",
        "/api/v1/runs?result=bad%20word!": "result",
        "/api/v1/runs?format=xml": "format",
        "/api/v1/runs/abc": "run_id",
        "/api/v1/systems/zuul/series?bucket=week": "bucket",
        "/api/v1/systems/zuul/series?from=2026-01-02&to=2026-01-01": "from",
        "/api/v1/systems/zuul/runs?from=yesterday": "from",
        "/api/v1/systems/zuul/jobs?window=1y": "window",
        "/api/v1/grid?limit=0": "limit",
        "/api/v1/changes/0": "number",
    }
    for path, word in cases.items():
        response = await client.get(path)
        assert response.status_code == 422, (path, response.text)
        detail = response.json()["detail"]
        assert isinstance(detail, str) and word in detail, (path, detail)
    csv_cursor = await client.get("/api/v1/runs?format=csv&cursor=garbage")
    assert csv_cursor.status_code == 422


# -- per system --------------------------------------------------------------------------------------


async def test_series_and_job_breakdown(loaded: Loaded) -> None:
    client = loaded.client
    until = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    since = until - timedelta(hours=6)
    response = await client.get(
        "/api/v1/systems/zuul/series", params={"bucket": "hour", "from": iso(since), "to": iso(until)}
    )
    assert response.status_code == 200
    points = response.json()
    assert len(points) == 6
    assert [datetime.fromisoformat(p["t"]) for p in points] == [since + timedelta(hours=i) for i in range(6)]
    runs = await all_runs(client, ci="zuul", **{"from": iso(since), "to": iso(until)})
    assert sum(p["runs"] for p in points) == len(runs) > 0
    assert sum(p["failures"] for p in points) == sum(1 for r in runs if r["result_class"] == "failure")
    busy = [p for p in points if p["runs"]]
    assert all(p["success_rate"] == pytest.approx(p["successes"] / p["runs"]) for p in busy)
    assert any(p["latency_p95_s"] and p["latency_p95_s"] >= p["latency_p50_s"] for p in busy)
    days = (await client.get("/api/v1/systems/zuul/series", params={"bucket": "day"})).json()
    assert len(days) in (30, 31) and sum(p["runs"] for p in days) == len(await all_runs(client, ci="zuul"))

    jobs = (await client.get("/api/v1/systems/zuul/jobs", params={"window": "7d"})).json()
    assert jobs and all(0 <= j["failures"] <= j["runs"] for j in jobs)
    assert [(-j["failures"]) for j in jobs] == sorted(-j["failures"] for j in jobs)
    failing = next(j for j in jobs if j["failures"])
    assert failing["last_failure_at"] and failing["failure_rate"] == pytest.approx(
        failing["failures"] / failing["runs"]
    )
    zuul_runs = await all_runs(client, ci="zuul")
    job_total = Counter(job["name"] for r in zuul_runs for job in r["jobs"])
    assert {j["name"]: j["runs"] for j in jobs} == dict(job_total)
    assert (await client.get("/api/v1/systems/nobody/jobs")).status_code == 404


# -- grid, changes, projects ---------------------------------------------------------------------------


async def test_grid_change_view_and_projects(loaded: Loaded) -> None:
    client = loaded.client
    runs = await all_runs(client)
    per_patchset = Counter((r["change"], r["patchset"], r["ci"]) for r in runs)
    grid = (await client.get("/api/v1/grid", params={"limit": 8})).json()
    assert 0 < len(grid["rows"]) <= 8
    assert grid["systems"][0] == "zuul" and grid["systems"][1:] == sorted(grid["systems"][1:])
    created = [row["created_at"] for row in grid["rows"]]
    assert created == sorted(created, reverse=True)
    by_id = {r["id"]: r for r in runs}
    for row in grid["rows"]:
        for ci, cell in row["cells"].items():
            assert ci in grid["systems"]
            run = by_id[cell["run_id"]]
            assert (run["ci"], run["change"], run["patchset"]) == (ci, row["change"], row["patchset"])
            assert cell["runs"] == per_patchset[(row["change"], row["patchset"], ci)]
            newest = max(
                (r for r in runs if (r["change"], r["patchset"], r["ci"]) == (row["change"], row["patchset"], ci)),
                key=lambda r: (r["posted_at"], r["id"]),
            )
            assert cell["run_id"] == newest["id"] and cell["log_url"] == newest["log_url"]

    projects = (await client.get("/api/v1/projects")).json()
    assert projects == sorted({r["project"] for r in runs})
    nova = (await client.get("/api/v1/grid", params={"project": "openstack/nova"})).json()
    assert nova["project"] == "openstack/nova" and nova["rows"]
    assert all(row["project"] == "openstack/nova" for row in nova["rows"])

    row = grid["rows"][0]
    view = await client.get(f"/api/v1/changes/{row['change']}", params={"server": SERVER})
    assert view.status_code == 200
    change = view.json()
    assert change["project"] == row["project"] and change["server"] == SERVER
    numbers = [ps["patchset"] for ps in change["patchsets"]]
    assert numbers == sorted(numbers, reverse=True) and row["patchset"] in numbers
    same = next(ps for ps in change["patchsets"] if ps["patchset"] == row["patchset"])
    assert same["cells"] == row["cells"]
    assert {ci for ps in change["patchsets"] for ci in ps["cells"]} == set(change["systems"])
    assert (await client.get("/api/v1/changes/123")).status_code == 404
    assert (await client.get(f"/api/v1/changes/{row['change']}", params={"server": "other"})).status_code == 404


# -- writes and auth ---------------------------------------------------------------------------------


async def test_writes_need_the_write_token(loaded: Loaded) -> None:
    client = loaded.client
    body = {"display_name": "Cisco Systems CI", "owner": "ci@cisco.example", "confirmed": True}
    missing = await client.patch("/api/v1/systems/cisco-ci", json=body)
    assert missing.status_code == 401 and missing.headers["www-authenticate"] == "Bearer"
    wrong = await client.patch("/api/v1/systems/cisco-ci", json=body, headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 403 and wrong.json()["detail"] == "invalid token"
    good = await client.patch("/api/v1/systems/cisco-ci", json=body, headers={"Authorization": f"Bearer {WRITE}"})
    assert good.status_code == 200
    assert (good.json()["display_name"], good.json()["owner"], good.json()["confirmed"]) == (
        "Cisco Systems CI",
        "ci@cisco.example",
        True,
    )
    listed = {s["name"]: s for s in (await client.get("/api/v1/systems")).json()}
    assert listed["cisco-ci"]["display_name"] == "Cisco Systems CI"

    # one reference per server
    moved = await client.patch(
        "/api/v1/systems/cisco-ci", json={"is_reference": True}, headers={"Authorization": f"Bearer {WRITE}"}
    )
    assert moved.status_code == 200 and moved.json()["is_reference"]
    listed = {s["name"]: s for s in (await client.get("/api/v1/systems")).json()}
    assert listed["cisco-ci"]["is_reference"] and not listed["zuul"]["is_reference"]
    invalid = await client.patch(
        "/api/v1/systems/cisco-ci", json={"confirmed": "maybe"}, headers={"Authorization": f"Bearer {WRITE}"}
    )
    assert invalid.status_code == 422 and "confirmed" in invalid.json()["detail"]
    unknown = await client.patch("/api/v1/systems/nobody", json={}, headers={"Authorization": f"Bearer {WRITE}"})
    assert unknown.status_code == 404

    disabled = create_app(settings_for(loaded.store), loaded.store)
    async with client_for(disabled) as other:
        for response in (
            await other.patch("/api/v1/systems/cisco-ci", json=body, headers={"Authorization": f"Bearer {WRITE}"}),
            await other.post("/api/v1/runs/reparse", headers={"Authorization": f"Bearer {WRITE}"}),
        ):
            assert response.status_code == 403
            assert response.json()["detail"] == "writes disabled: set api.write_token"


async def test_read_token_guards_reads(store: Store, tmp_path: Path) -> None:
    settings = settings_for(store, read_token=SecretStr(READ), write_token=SecretStr(WRITE))
    app = create_app(settings, store, frontend_dir=tmp_path)
    async with client_for(app) as client:
        assert (await client.get("/api/v1/systems")).status_code == 401
        assert (await client.get("/api/v1/systems", params={"token": "wrong"})).status_code == 403
        assert (await client.get("/api/v1/systems", params={"token": READ})).status_code == 200
        assert (await client.get("/api/v1/projects", headers={"Authorization": f"Bearer {READ}"})).status_code == 200
        assert (await client.get("/api/v1/projects", headers={"Authorization": f"Bearer {WRITE}"})).status_code == 200
        assert (await client.get("/metrics")).status_code == 401
        assert (await client.get("/metrics", params={"token": READ})).status_code == 200
        assert (await client.get("/healthz")).status_code == 200  # probes stay open
        assert (await client.get("/api/v1/readyz")).status_code == 200
        # a read token is no write token
        patch = await client.patch(
            "/api/v1/systems/x", json={}, headers={"Authorization": f"Bearer {READ}"}, params={"token": READ}
        )
        assert patch.status_code == 403


async def test_reparse_restores_results_and_rollups(loaded: Loaded) -> None:
    client, store = loaded.client, loaded.store
    runs = await all_runs(client)
    victim = next(r for r in runs if r["result"] == "SUCCESS" and r["jobs"])
    async with store.engine.begin() as conn:
        await conn.execute(sa.update(m.runs_t).where(m.runs_t.c.id == victim["id"]).values(result="WEIRD", vote=None))
        await conn.execute(sa.delete(m.jobs_t).where(m.jobs_t.c.run_id == victim["id"]))
    assert (await client.get(f"/api/v1/runs/{victim['id']}")).json()["result"] == "WEIRD"
    response = await client.post("/api/v1/runs/reparse", headers={"Authorization": f"Bearer {WRITE}"})
    assert response.status_code == 200
    counts = response.json()
    assert counts["runs"] == len(runs) and counts["changed"] >= 1
    assert counts["changed"] + counts["unchanged"] + counts["not_results"] == counts["runs"]
    restored = (await client.get(f"/api/v1/runs/{victim['id']}")).json()
    assert (restored["result"], restored["jobs"], restored["vote"]) == (
        "SUCCESS",
        victim["jobs"],
        victim["vote"],
    )
    async with store.engine.connect() as conn:
        total = (await conn.execute(sa.select(sa.func.sum(rollups_t.c.runs)))).scalar_one()
        successes = (await conn.execute(sa.select(sa.func.sum(rollups_t.c.successes)))).scalar_one()
    assert total == len(runs) and successes == sum(1 for r in runs if r["result"] == "SUCCESS")
    again = (await client.post("/api/v1/runs/reparse?ci=zuul", headers={"Authorization": f"Bearer {WRITE}"})).json()
    assert again["changed"] == 0 and again["runs"] == sum(1 for r in runs if r["ci"] == "zuul")


# -- badge, probes, metrics, static files, headers -------------------------------------------------


async def test_badge_is_escaped_svg(loaded: Loaded) -> None:
    client = loaded.client
    evil = "<b>\"Evil\" & 'Co'</b>"
    name = next(s["name"] for s in (await client.get("/api/v1/systems")).json() if s["health"]["runs"])
    patched = await client.patch(
        f"/api/v1/systems/{name}", json={"display_name": evil}, headers={"Authorization": f"Bearer {WRITE}"}
    )
    assert patched.status_code == 200
    response = await client.get(f"/api/v1/badge/{name}.svg")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("image/svg+xml")
    assert "max-age=" in response.headers["cache-control"]
    assert "<b>" not in response.text and "&lt;b&gt;" in response.text
    root = ET.fromstring(response.text)  # well-formed XML
    title = root.find("{http://www.w3.org/2000/svg}title")
    assert title is not None and title.text is not None
    summary = next(s for s in (await client.get("/api/v1/systems")).json() if s["name"] == name)
    rate = round(summary["health"]["success_rate"] * 100)
    assert title.text == f"{evil}: {summary['state']} {rate}%"
    fills = {element.get("fill") for element in root.iter("{http://www.w3.org/2000/svg}rect")}
    assert len(fills) == 2
    assert (await client.get("/api/v1/badge/nobody.svg")).status_code == 404


async def test_probes_and_metrics(store: Store, tmp_path: Path) -> None:
    statuses = [ServerStatus(name=SERVER, stream_connected=True, last_backfill_at=None, last_error=None, fatal=None)]
    app = create_app(settings_for(store), store, status=lambda: statuses, frontend_dir=tmp_path)
    async with client_for(app) as client:
        assert (await client.get("/healthz")).json() == {"ok": True}
        assert (await client.get("/api/v1/healthz")).json() == {"ok": True}
        ready = await client.get("/api/v1/readyz")
        assert ready.status_code == 200
        assert ready.json() == {"ready": True, "database": True, "servers": [statuses[0].model_dump(mode="json")]}
        statuses[0] = statuses[0].model_copy(update={"fatal": "authentication failed"})
        failed = await client.get("/readyz")
        assert failed.status_code == 503 and failed.json()["ready"] is False and failed.json()["database"] is True

        metrics.EVENTS_RECEIVED.labels(server=SERVER, source="stream").inc(3)
        metrics.QUEUE_DEPTH.labels(queue="ingest:review").set(5)
        await client.get("/api/v1/projects")
        exposition = await client.get("/api/v1/metrics")
        assert exposition.status_code == 200 and exposition.headers["content-type"].startswith("text/plain")
        families = {family.name: family for family in text_string_to_metric_families(exposition.text)}
        assert {
            "cidash_events_received",
            "cidash_runs_stored",
            "cidash_dead_lettered",
            "cidash_stream_reconnects",
            "cidash_backfill_duration_seconds",
            "cidash_websocket_clients",
            "cidash_queue_depth",
            "cidash_http_requests",
        } <= set(families)
        requests = {
            (s.labels["route"], s.labels["status"]): s.value
            for s in families["cidash_http_requests"].samples
            if s.name == "cidash_http_requests_total"
        }
        assert requests[("/api/v1/projects", "200")] >= 1
        queue = next(s for s in families["cidash_queue_depth"].samples if s.labels["queue"] == "ingest:review")
        assert queue.value == 5
        assert (await client.get("/metrics")).status_code == 200

    for url in ("sqlite+aiosqlite:////nonexistent-dir/cidash.db", "mysql+aiomysql://nobody@127.0.0.1:1/none"):
        broken = Store(create_engine(url))
        try:
            async with client_for(create_app(settings_for(store), broken, frontend_dir=tmp_path)) as client:
                response = await client.get("/api/v1/readyz")
                assert response.status_code == 503
                assert response.json() == {"ready": False, "database": False, "servers": []}
                assert (await client.get("/healthz")).status_code == 200
                unavailable = await client.get("/api/v1/projects")
                assert unavailable.status_code == 503
                assert unavailable.json()["detail"] == "the database is unavailable"
                assert unavailable.headers["retry-after"] == "5"
        finally:
            await broken.close()


async def test_dashboard_files_fallback_and_security_headers(store: Store, tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    (dist / "assets").mkdir(parents=True)
    (dist / "index.html").write_text("<!doctype html><title>dash</title><script src='assets/app.js'></script>")
    (dist / "assets" / "app.js").write_text("console.log('hi')")
    settings = settings_for(store, cors_origins=["https://dash.example"])
    extra = APIRouter(prefix="/api/v1")  # a router of the caller's own, included as it is

    @extra.get("/extra-thing")
    async def extra_thing() -> dict[str, int]:
        return {"x": 1}

    app = create_app(settings, store, frontend_dir=dist, extra_routers=[extra])
    async with client_for(app) as client:
        assert (await client.get("/api/v1/extra-thing")).json() == {"x": 1}
        page = await client.get("/")
        assert page.status_code == 200 and "<title>dash</title>" in page.text
        script = await client.get("/assets/app.js")
        assert script.status_code == 200 and "console.log" in script.text
        api = await client.get("/api/v1/projects")
        missing = await client.get("/api/v1/nothing-here")
        assert missing.status_code == 404
        for response in (page, script, api, missing):
            assert response.headers["x-content-type-options"] == "nosniff"
            assert response.headers["content-security-policy"] == CSP
        preflight = await client.options(
            "/api/v1/systems",
            headers={"Origin": "https://dash.example", "Access-Control-Request-Method": "GET"},
        )
        assert preflight.headers["access-control-allow-origin"] == "https://dash.example"
        other = await client.get("/api/v1/projects", headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in other.headers
        schema = await client.get("/openapi.json")
        assert schema.status_code == 200 and {"/api/v1/systems", "/api/v1/extra-thing"} <= set(schema.json()["paths"])

    bare = create_app(settings_for(store), store, frontend_dir=tmp_path / "empty")
    async with client_for(bare) as client:
        fallback = await client.get("/")
        assert fallback.status_code == 200 and fallback.headers["content-type"].startswith("text/html")
        assert "npm ci &amp;&amp; npm run build" in fallback.text
        assert fallback.headers["content-security-policy"] == CSP


async def test_default_frontend_dir_is_the_repository_build(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    from cidash.api.app import default_frontend_dir

    assert default_frontend_dir() == REPO / "frontend" / "dist"
    monkeypatch.setenv("CIDASH_FRONTEND_DIR", "/somewhere/else")
    assert default_frontend_dir() == Path("/somewhere/else")


async def test_names_with_special_characters(store: Store) -> None:
    """Account keys that are e-mail addresses or carry spaces still route, page and badge."""
    author = AccountRef(name="Weird CI <x>", email="ci+bot@example.org")
    an_hour_ago = datetime.now(UTC) - timedelta(hours=1)  # inside the detail's 24 h health window
    comments: Sequence[Any] = [
        (
            observed(f"Build succeeded {i}", author=author, change=500 + i, posted_at=an_hour_ago),
            parsed(result="SUCCESS", ci=author.key),
        )
        for i in range(3)
    ]
    await store.write_comments(comments)
    async with store.engine.begin() as conn:
        await rebuild_rollups(conn)
    async with client_for(create_app(settings_for(store), store)) as client:
        name = "ci+bot@example.org"
        detail = await client.get(f"/api/v1/systems/{httpx.URL(name)}")
        quoted = await client.get("/api/v1/systems/ci%2Bbot%40example.org")
        assert detail.status_code == quoted.status_code == 200
        assert quoted.json()["name"] == name and quoted.json()["health"]["runs"] == 3
        page = (await client.get("/api/v1/runs", params={"ci": name})).json()
        assert len(page["items"]) == 3
        badge = await client.get("/api/v1/badge/ci%2Bbot%40example.org.svg")
        assert badge.status_code == 200 and "Weird CI &lt;x&gt;" in badge.text


async def test_same_ci_name_on_two_servers(loaded: Loaded) -> None:
    """`zuul` also votes on a second Gerrit: ?server= picks one, /runs?ci= merges both."""
    client, store = loaded.client, loaded.store
    zuul = AccountRef(account_id=1, username="zuul", name="Zuul")
    now = datetime.now(UTC)
    await store.write_comments(
        [
            (
                observed(f"Build failed {i}", server="another", author=zuul, posted_at=now - timedelta(minutes=7 * i)),
                parsed(result="FAILURE", ci="zuul"),
            )
            for i in range(12)
        ]
    )
    async with store.engine.begin() as conn:
        await rebuild_rollups(conn)
    first = (await client.get("/api/v1/systems/zuul")).json()
    assert first["server"] == "another"  # the first server by name
    chosen = (await client.get("/api/v1/systems/zuul", params={"server": SERVER})).json()
    assert chosen["server"] == SERVER and chosen["is_reference"] and chosen["health"]["runs"] > 12
    merged = await all_runs(client, ci="zuul")
    review_only = await all_runs(client, ci="zuul", server=SERVER)
    assert {r["server"] for r in merged} == {"another", SERVER}
    assert len(merged) == len(review_only) + 12 and {r["server"] for r in review_only} == {SERVER}
    walked: list[int] = []
    cursor = None
    while True:
        page = (
            await client.get(
                "/api/v1/runs", params={"ci": "zuul", "limit": 5, **({"cursor": cursor} if cursor else {})}
            )
        ).json()
        walked.extend(r["id"] for r in page["items"])
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert walked == [r["id"] for r in merged]  # same order, each once
    systems = (await client.get("/api/v1/systems")).json()
    assert sorted(s["server"] for s in systems if s["name"] == "zuul") == ["another", SERVER]
    badge = await client.get("/api/v1/badge/zuul.svg", params={"server": SERVER})
    assert badge.status_code == 200 and "Zuul" in badge.text


async def test_create_app_alone_serves_every_route_and_says_when_it_has_no_live_feed(
    store: Store, tmp_path: Path
) -> None:
    app = create_app(settings_for(store), store, frontend_dir=tmp_path)  # no runtime, no bus, no engine
    documented = set(app.openapi()["paths"])
    assert {"/api/v1/events", "/api/v1/incidents", "/api/v1/alerts/rules", "/api/v1/systems"} <= documented
    async with client_for(app) as client:
        events = await client.get("/api/v1/events")
        assert events.status_code == 503 and "no live feed" in events.json()["detail"]
        assert (await client.get("/api/v1/incidents")).json()["items"] == []
    async with served(app) as url:
        async with websockets.connect(url.replace("http", "ws", 1) + "/api/v1/ws") as socket:
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await asyncio.wait_for(socket.recv(), 10)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == CLOSE_UNAVAILABLE
