"""The simulator's REST API (as Gerrit 3.x answers) and the SSH `gerrit query` output."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any
from urllib.parse import quote

import httpx
import orjson
import pytest

from cidash.sim.ci_texts import HOSTILE_DETAIL
from cidash.sim.faults import Faults
from cidash.sim.gerrit_query import gerrit_query_lines
from cidash.sim.query import parse_query
from cidash.sim.rest import create_rest_app
from cidash.sim.world import World

START = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
ALL = "status:open OR status:closed"
SUBMIT_KEYS = ["requirements", "submit_records"]
CHANGE_KEYS = [
    "id",
    "triplet_id",
    "project",
    "branch",
    "attention_set",
    "removed_from_attention_set",
    "hashtags",
    "change_id",
    "subject",
    "status",
    "created",
    "updated",
]


@cache
def world() -> World:
    built = World(11, start=START)
    built.generate_history(timedelta(days=4))
    return built


@cache
def legacy_world() -> World:
    built = World(11, legacy_2x=True, start=START)
    built.generate_history(timedelta(hours=12))
    return built


@pytest.fixture
def faults() -> Faults:
    return Faults()


@pytest.fixture
async def client(faults: Faults) -> AsyncIterator[httpx.AsyncClient]:
    app = create_rest_app(world(), faults, stats=lambda: {"subscribers": 3})
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://sim", auth=("admin", "secret")) as c:
        yield c


def gerrit_json(response: httpx.Response) -> Any:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json;charset=utf-8"
    assert response.text.startswith(")]}'\n")
    assert response.text.endswith("\n")
    return json.loads(response.text[5:])


async def all_pages(client: httpx.AsyncClient, query: str, n: int, **extra: Any) -> list[list[dict[str, Any]]]:
    pages: list[list[dict[str, Any]]] = []
    start = 0
    while True:
        page = gerrit_json(await client.get("/a/changes/", params={"q": query, "n": n, "S": start, **extra}))
        pages.append(page)
        start += len(page)
        if not page or not page[-1].get("_more_changes"):
            return pages
        assert all("_more_changes" not in change for change in page[:-1])


# -- auth and framing --------------------------------------------------------------------------------


async def test_auth_required_under_a(faults: Faults) -> None:
    app = create_rest_app(world(), faults, user="bot", password="pw")
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://sim") as anonymous:
        for auth in (None, ("bot", "wrong"), ("other", "pw"), ("bot", "")):
            response = await anonymous.get("/a/changes/", auth=auth)  # type: ignore[arg-type]
            assert response.status_code == 401
            assert response.headers["www-authenticate"] == 'Basic realm="Gerrit Code Review"'
            assert not response.text.startswith(")]}'")
            with pytest.raises(ValueError):
                json.loads(response.text)
        bad_header = await anonymous.get("/a/changes/", headers={"Authorization": "Basic !!!"})
        assert bad_header.status_code == 401
        ok = await anonymous.get("/a/config/server/version", auth=("bot", "pw"))
        assert gerrit_json(ok) == "3.10.1"


async def test_default_query_is_open_changes_sorted_by_update(client: httpx.AsyncClient) -> None:
    changes = gerrit_json(await client.get("/a/changes/"))
    assert changes and all(change["status"] == "NEW" for change in changes)
    expected = [c.number for c in parse_query("status:open", world()).filter(world().changes.values())]
    assert [change["_number"] for change in changes] == expected[:500]
    updated = [change["updated"] for change in changes]
    assert updated == sorted(updated, reverse=True)


async def test_change_info_fields_in_gerrit_order(client: httpx.AsyncClient) -> None:
    changes = gerrit_json(await client.get("/a/changes/", params={"q": "status:merged", "n": 3}))
    change = changes[0]
    keys = list(change)
    assert keys[: len(CHANGE_KEYS)] == CHANGE_KEYS
    assert keys[len(CHANGE_KEYS) : len(CHANGE_KEYS) + 2] == ["submitted", "submitter"]
    assert keys.index("insertions") < keys.index("deletions") < keys.index("_number") < keys.index("owner")
    # as Gerrit 3.10 ends a ChangeInfo (tests/data/real-gerrit-3.10/rest.json)
    assert keys[-3:] == ["_more_changes", "requirements", "submit_records"] or keys[-2:] == [
        "requirements",
        "submit_records",
    ]
    project = change["project"]
    assert change["id"] == f"{quote(project, safe='')}~{change['_number']}"
    assert change["triplet_id"] == f"{quote(project, safe='')}~{quote(change['branch'], safe='')}~{change['change_id']}"
    assert change["owner"] == {"_account_id": change["owner"]["_account_id"]}
    assert change["created"].endswith(".000000000") and len(change["created"]) == 29
    assert changes[-1]["_more_changes"] is True


async def test_options_on_and_off(client: httpx.AsyncClient) -> None:
    plain = gerrit_json(await client.get("/a/changes/", params={"q": ALL, "n": 5}))
    assert all("messages" not in c and "revisions" not in c and "current_revision" not in c for c in plain)
    rich = gerrit_json(
        await client.get(
            "/a/changes/",
            params=[("q", ALL), ("n", "5"), ("o", "MESSAGES"), ("o", "DETAILED_ACCOUNTS"), ("o", "ALL_REVISIONS")],
        )
    )
    for change in rich:
        number = change["_number"]
        source = world().changes[number]
        tail = [key for key in change if key != "_more_changes"][-6:]
        assert tail == ["messages", "current_revision_number", "current_revision", "revisions", *SUBMIT_KEYS]
        assert set(change["owner"]) == {"_account_id", "name", "email", "username"}
        assert len(change["messages"]) == len(source.messages)
        message = change["messages"][0]
        assert list(message)[:2] == ["id", "tag"]
        assert list(message)[2:] == ["author", "date", "message", "accounts_in_message", "_revision_number"]
        assert message["tag"] == "autogenerated:gerrit:newPatchSet"
        assert len(change["revisions"]) == len(source.patchsets)
        assert change["current_revision"] == source.current.revision
        revision = change["revisions"][source.current.revision]
        assert list(revision) == ["kind", "_number", "created", "uploader", "ref", "fetch", "branch"]
        assert revision["ref"] == f"refs/changes/{number % 100:02d}/{number}/{source.current.number}"
    current = gerrit_json(await client.get("/a/changes/", params={"q": ALL, "n": 5, "o": "CURRENT_REVISION"}))
    assert all(len(c["revisions"]) == 1 and c["current_revision"] in c["revisions"] for c in current)
    bad = await client.get("/a/changes/", params={"o": "NO_SUCH_OPTION"})
    assert bad.status_code == 400 and bad.headers["content-type"].startswith("text/plain")


async def test_paging_collects_every_change_once(client: httpx.AsyncClient) -> None:
    pages = await all_pages(client, ALL, 37)
    assert len(pages) > 5
    numbers = [change["_number"] for page in pages for change in page]
    assert len(numbers) == len(set(numbers)) == len(world().changes)
    updated = [change["updated"] for page in pages for change in page]
    assert updated == sorted(updated, reverse=True)
    assert "_more_changes" not in pages[-1][-1]


async def test_limit_capped_at_500_and_bad_parameters(client: httpx.AsyncClient) -> None:
    assert len(world().changes) > 500
    big = gerrit_json(await client.get("/a/changes/", params={"q": ALL, "n": 2000}))
    assert len(big) == 500 and big[-1]["_more_changes"] is True
    default = gerrit_json(await client.get("/a/changes/", params={"q": ALL}))
    assert len(default) == 500
    limited = gerrit_json(await client.get("/a/changes/", params={"q": f"{ALL} limit:4", "n": 10}))
    assert len(limited) == 4 and limited[-1]["_more_changes"] is True
    via_limit = gerrit_json(await client.get("/a/changes/", params={"q": ALL, "limit": 3, "start": 1}))
    assert [c["_number"] for c in via_limit] == [c["_number"] for c in big[1:4]]
    for params in ({"S": -1}, {"n": "many"}, {"q": "status:weird"}, {"q": "(status:open"}):
        response = await client.get("/a/changes/", params=params)
        assert response.status_code == 400
        assert response.headers["content-type"] == "text/plain;charset=utf-8"
        assert response.text.endswith("\n") and not response.text.startswith(")]}'")


async def test_query_operators_over_rest(client: httpx.AsyncClient) -> None:
    w = world()
    pivot = sorted(c.updated for c in w.changes.values())[len(w.changes) // 3]
    text = datetime.fromtimestamp(pivot, UTC).strftime("%Y-%m-%d %H:%M:%S")
    query = f'project:openstack/nova after:"{text}"'
    got = {c["_number"] for page in await all_pages(client, query, 100) for c in page}
    expected = {c.number for c in w.changes.values() if c.project == "openstack/nova" and c.updated >= pivot}
    assert got == expected and expected
    recent = {c["_number"] for page in await all_pages(client, "-age:1d", 500) for c in page}
    assert recent == {c.number for c in w.changes.values() if c.updated > START.timestamp() - 86400}
    two = gerrit_json(
        await client.get("/a/changes/", params=[("q", "status:merged"), ("q", "status:abandoned"), ("n", "2")])
    )
    assert [len(x) for x in two] == [2, 2] and two[1][0]["status"] == "ABANDONED"


# -- other endpoints -------------------------------------------------------------------------------


async def test_messages_endpoint_and_404(client: httpx.AsyncClient) -> None:
    change = next(c for c in world().changes.values() if len(c.messages) > 5)
    for ident in (
        str(change.number),
        f"{quote(change.project, safe='')}~{change.number}",
        change.change_id,
        f"{quote(change.project, safe='')}~{quote(change.branch, safe='')}~{change.change_id}",
    ):
        messages = gerrit_json(await client.get(f"/a/changes/{ident}/messages"))
        assert [m["id"] for m in messages] == [m.id for m in change.messages]
        assert set(messages[0]["author"]) >= {"_account_id", "name", "username"}
    missing = await client.get("/a/changes/12345/messages")
    assert missing.status_code == 404
    assert missing.text == "Not found: 12345\n"
    assert missing.headers["content-type"] == "text/plain;charset=utf-8"
    detail = gerrit_json(await client.get(f"/a/changes/{change.number}", params={"o": "MESSAGES"}))
    assert detail["_number"] == change.number and len(detail["messages"]) == len(change.messages)
    assert (await client.get("/a/nothing/here")).status_code == 404


async def test_group_members(client: httpx.AsyncClient) -> None:
    w = world()
    by_name = gerrit_json(await client.get("/a/groups/Third-Party%20CI/members/"))
    by_uuid = gerrit_json(await client.get(f"/a/groups/{w.group_uuid}/members/"))
    assert by_name == by_uuid
    assert len(by_name) == 40
    assert all(list(m) == ["_account_id", "name", "email", "username"] for m in by_name)
    usernames = {m["username"] for m in by_name}
    assert "zuul" not in usernames and {"cisco-ci", "vmware-nsx-ci", "hyperv-ci", "ibm-powerkvm-ci"} <= usernames
    assert (await client.get("/a/groups/Nope/members/")).status_code == 404
    me = gerrit_json(await client.get("/a/accounts/self"))
    assert me["username"] == "admin"


async def test_truth_matches_rest_messages(client: httpx.AsyncClient) -> None:
    dates: dict[str, tuple[int, str, int]] = {}
    for page in await all_pages(client, ALL, 200, o="MESSAGES"):
        for change in page:
            for message in change["messages"]:
                dates[message["id"]] = (change["_number"], message["date"], message["_revision_number"])
    response = await client.get("/__sim/truth")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/x-ndjson")
    records = [orjson.loads(line) for line in response.content.splitlines()]
    assert len(records) == len(world().truth) > 5000
    for record in records:
        assert dates[record["message_id"]] == (record["change"], record["posted_at"], record["patchset"])


async def test_hostile_text_is_escaped_json(client: httpx.AsyncClient) -> None:
    w = world()
    record = next(r for r in w.truth if any(job.detail == HOSTILE_DETAIL for job in r.jobs))
    response = await client.get(f"/a/changes/{record.change}/messages")
    assert "<script>" not in response.text
    assert "\\u003cscript\\u003ealert(1)\\u003c/script\\u003e" in response.text
    messages = gerrit_json(response)
    assert any(HOSTILE_DETAIL in m["message"] for m in messages if m["id"] == record.message_id)


async def test_stats_endpoint(client: httpx.AsyncClient) -> None:
    stats = (await client.get("/__sim/stats")).json()
    w = world()
    assert stats["changes"] == len(w.changes)
    assert stats["messages"] == sum(len(c.messages) for c in w.changes.values())
    assert stats["truth_records"] == len(w.truth)
    assert stats["subscribers"] == 3


# -- faults ------------------------------------------------------------------------------------------


async def test_429_storm_without_retry_after_then_ok(client: httpx.AsyncClient) -> None:
    snapshot = (await client.post("/__sim/faults", json={"rest_429_s": 0.4})).json()
    assert 0 < snapshot["rest_429_for_s"] <= 0.4
    assert (await client.get("/__sim/faults")).json()["rest_429_for_s"] > 0
    response = await client.get("/a/changes/")
    assert response.status_code == 429
    assert response.text == "Quota limit reached\n"
    assert "retry-after" not in response.headers
    assert response.headers["content-type"] == "text/plain;charset=utf-8"
    await asyncio.sleep(0.45)  # the point: past the 0.4 s storm, it answers again
    assert (await client.get("/a/changes/")).status_code == 200
    assert (await client.get("/__sim/faults")).json()["injected"]["rest_429"] >= 1


async def test_500_storm(client: httpx.AsyncClient) -> None:
    await client.post("/__sim/faults", json={"rest_500_s": 0.3})
    response = await client.get("/a/config/server/version")
    assert response.status_code == 500 and response.text == "Internal server error\n"
    await asyncio.sleep(0.35)  # the point: past the 0.3 s storm
    assert gerrit_json(await client.get("/a/config/server/version")) == "3.10.1"
    bad = await client.post("/__sim/faults", json={"rest_500_s": -1})
    assert bad.status_code == 400


async def test_slow_rest(client: httpx.AsyncClient) -> None:
    await client.post("/__sim/faults", json={"rest_delay_s": 0.3})
    began = time.monotonic()
    gerrit_json(await client.get("/a/config/server/version"))
    assert time.monotonic() - began >= 0.3
    await client.post("/__sim/faults", json={"rest_delay_s": 0})
    began = time.monotonic()
    gerrit_json(await client.get("/a/config/server/version"))
    assert time.monotonic() - began < 0.25


async def test_legacy_rest_shape(faults: Faults) -> None:
    w = legacy_world()
    app = create_rest_app(w, faults)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://sim", auth=("admin", "secret")) as c:
        changes = gerrit_json(await c.get("/a/changes/", params={"q": ALL, "n": 3, "o": "MESSAGES"}))
        assert gerrit_json(await c.get("/a/config/server/version")).startswith("2.")
    change = changes[0]
    assert change["id"].count("~") == 2 and "triplet_id" not in change
    assert "real_author" not in change["messages"][0]


# -- SSH gerrit query ------------------------------------------------------------------------------


def test_gerrit_query_lines_shape_and_stats() -> None:
    w = world()
    lines, status = gerrit_query_lines(w, ["--format=JSON", "status:open", "limit:3"])
    assert status == 0 and len(lines) == 4
    assert all(line.endswith(b"\n") for line in lines)
    first = orjson.loads(lines[0])
    assert list(first) == [
        "project",
        "branch",
        "id",
        "number",
        "subject",
        "owner",
        "url",
        "createdOn",
        "lastUpdated",
        "open",
        "status",
    ]
    assert first["open"] is True and isinstance(first["number"], int)
    assert first["url"] == f"{w.base_url}/c/{first['project']}/+/{first['number']}"
    stats = orjson.loads(lines[-1])
    assert list(stats) == ["type", "rowCount", "runTimeMilliseconds", "moreChanges"]
    assert stats["type"] == "stats" and stats["rowCount"] == 3 and stats["moreChanges"] is True
    assert lines[-1].startswith(b'{"type":"stats","rowCount":3,"runTimeMilliseconds":')


def test_gerrit_query_options_and_paging() -> None:
    w = world()
    args = ["--format", "JSON", "--current-patch-set", "--patch-sets", "--comments", "--commit-message"]
    lines, status = gerrit_query_lines(w, [*args, "status:merged", "limit:2"])
    assert status == 0
    change = orjson.loads(lines[0])
    keys = list(change)
    assert keys[keys.index("url") + 1] == "commitMessage"
    assert keys[-3:] == ["comments", "currentPatchSet", "patchSets"]
    source = w.changes[change["number"]]
    assert len(change["comments"]) == len(source.messages)
    assert list(change["comments"][0]) == ["timestamp", "reviewer", "message"]
    current = change["currentPatchSet"]
    assert list(current)[:7] == ["number", "revision", "parents", "ref", "uploader", "createdOn", "author"]
    assert {"type", "description", "value", "grantedOn", "by"} <= set(current["approvals"][0])
    assert any(a["type"] == "Verified" and a["value"] == "2" for a in current["approvals"])
    assert len(change["patchSets"]) == len(source.patchsets)
    assert b"\\u003d" in lines[0] or "=" not in lines[0].decode()  # Gson escaping
    everything = [orjson.loads(x)["number"] for x in gerrit_query_lines(w, ["--format=JSON", "status:merged"])[0][:-1]]
    page = [
        orjson.loads(x)["number"]
        for x in gerrit_query_lines(w, ["--format=JSON", "-S", "5", "status:merged", "limit:4"])[0][:-1]
    ]
    assert page == everything[5:9]
    spaced = gerrit_query_lines(w, ["--format=JSON", "after:2026-03-01 06:00:00", "status:open"])
    assert spaced[1] == 0 and len(spaced[0]) > 1


def test_gerrit_query_errors_and_legacy() -> None:
    lines, status = gerrit_query_lines(world(), ["--format=JSON", "status:sleeping"])
    assert status == 1 and lines == [b"fatal: Unrecognized value: sleeping\n"]
    for args in (
        ["status:open"],
        ["--format=TEXT", "status:open"],
        ["--format=JSON", "--bogus", "x"],
        ["--format=JSON"],
    ):
        lines, status = gerrit_query_lines(world(), args)
        assert status == 1 and len(lines) == 1 and lines[0].startswith(b"fatal: ")
    lines, status = gerrit_query_lines(
        legacy_world(), ["--format=JSON", "--current-patch-set", "status:open", "limit:1"]
    )
    change = orjson.loads(lines[0])
    assert status == 0 and isinstance(change["number"], str)
    assert isinstance(change["currentPatchSet"]["number"], str)
    assert change["currentPatchSet"]["isDraft"] is False
