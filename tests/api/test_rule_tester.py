"""``POST /api/v1/explain``: a CI's stored comments read now and under a candidate rule, on both
engines; the TOML it answers is a valid ``[[ci]]`` entry that reads them the same way."""

from __future__ import annotations

import asyncio
import tomllib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import sqlalchemy as sa
from pydantic import SecretStr

from cidash.api import create_app
from cidash.config import ApiConfig, CISystemConfig, Settings
from cidash.parsing import CommentParser
from cidash.store import Store
from cidash.store import schema as m
from tests.support.api import served
from tests.support.cli import invoke
from tests.support.store_fixtures import observed

WRITE = "write-secret"
AUTH = {"Authorization": f"Bearer {WRITE}"}
CONFIG = [CISystemConfig(account="acme-ci", owner="ci@acme.example")]


async def _client(store: Store, tmp_path: Path) -> httpx.AsyncClient:
    now = datetime.now(UTC).replace(microsecond=0)
    parser = CommentParser(CONFIG)
    comments = [
        observed("Patch Set 1:\n\nAll 3 scenarios green", posted_at=now - timedelta(minutes=30), change=1),
        observed("Patch Set 1:\n\n2 scenarios red", posted_at=now - timedelta(minutes=20), change=2),
        observed("Patch Set 1:\n\nStarting check jobs.", posted_at=now - timedelta(minutes=15), change=3),
        observed(
            "Patch Set 1: Verified-1\n\nBuild failed.\n\n- unit https://logs.example/1 : FAILURE in 1m 00s",
            posted_at=now - timedelta(minutes=10),
            change=3,
        ),
    ]
    await store.write_comments([(comment, parser.parse(comment)) for comment in comments])
    settings = Settings(database_url=str(store.engine.url), ci=CONFIG, api=ApiConfig(write_token=SecretStr(WRITE)))
    app = create_app(settings, store, frontend_dir=tmp_path / "none")
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://cidash.test")


async def test_a_candidate_pair_reads_the_unread_comments_and_gives_its_toml(store: Store, tmp_path: Path) -> None:
    rule = {"success_pattern": r"^All \d+ scenarios green", "failure_pattern": r"^\d+ scenarios? red"}
    async with await _client(store, tmp_path) as client:
        response = await client.post("/api/v1/explain", json={"ci": "acme-ci", "rule": rule}, headers=AUTH)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["now"] == {"results": 1, "starts": 1, "unread": 2}
        assert body["candidate"] == {"results": 3, "starts": 1, "unread": 0}
        assert body["changed"] == 2
        assert [c["stored_as"] for c in body["comments"]] == ["result", "start", "unread", "unread"]  # newest first
        red = body["comments"][2]
        assert (red["now"]["kind"], red["candidate"]["kind"], red["candidate"]["result"]) == (
            "other",
            "result",
            "FAILURE",
        )
        assert red["candidate"]["why"].startswith("listed in config; failure_pattern '2 scenarios red'")
        entry = tomllib.loads(body["toml"])["ci"][0]
        assert entry == {"account": "acme-ci", "owner": "ci@acme.example", "patterns": [rule]}
        # the TOML, pasted into the config, reads the comments as the tester said
        pasted = CommentParser([CISystemConfig(**entry)])
        assert pasted.parse(observed("Patch Set 1:\n\nAll 3 scenarios green")).result == "SUCCESS"

        text = await client.post(
            "/api/v1/explain", json={"ci": "acme-ci", "text": "7 scenarios red", "rule": rule, "limit": 0}, headers=AUTH
        )
        answer = text.json()
        assert (answer["comments"], answer["text"]["now"]["kind"], answer["text"]["candidate"]["result"]) == (
            [],
            "other",
            "FAILURE",
        )
        assert (answer["now"], answer["toml"] is not None) == ({"results": 0, "starts": 0, "unread": 0}, True)

        plain = (await client.post("/api/v1/explain", json={"ci": "acme-ci", "limit": 2}, headers=AUTH)).json()
        assert (plain["candidate"], plain["toml"], plain["changed"], len(plain["comments"])) == (None, None, 0, 2)


async def test_bad_rules_unknown_cis_and_missing_tokens_are_refused(store: Store, tmp_path: Path) -> None:
    async with await _client(store, tmp_path) as client:
        bad = await client.post(
            "/api/v1/explain", json={"ci": "acme-ci", "rule": {"success_pattern": "("}}, headers=AUTH
        )
        assert bad.status_code == 422 and "success_pattern" in bad.json()["detail"]
        unknown = await client.post("/api/v1/explain", json={"ci": "nobody"}, headers=AUTH)
        assert unknown.status_code == 404
        anonymous = await client.post("/api/v1/explain", json={"ci": "acme-ci"})
        assert anonymous.status_code in (401, 403)
        extra = await client.post(
            "/api/v1/explain", json={"ci": "acme-ci", "rule": {"sucess_pattern": "x"}}, headers=AUTH
        )
        assert extra.status_code == 422


async def test_reparse_with_the_rule_turns_unread_comments_into_runs(store: Store, tmp_path: Path) -> None:
    async with await _client(store, tmp_path):
        pass  # the comments are stored
    entry = CISystemConfig(account="acme-ci", success_pattern=r"^All \d+ scenarios green")
    settings = Settings(database_url=str(store.engine.url), ci=[entry], api=ApiConfig(write_token=SecretStr(WRITE)))
    app = create_app(settings, store, frontend_dir=tmp_path / "none")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://cidash.test") as client:
        idle = (await client.get("/api/v1/runs/reparse")).json()
        assert (idle["running"], idle["counts"]) == (False, None)
        counts = (await client.post("/api/v1/runs/reparse", headers=AUTH)).json()
        assert counts == {
            "runs": 1,
            "changed": 0,
            "unchanged": 1,
            "not_results": 0,
            "comments": 3,
            "now_results": 1,
            "comments_changed": 0,
        }
        progress = (await client.get("/api/v1/runs/reparse")).json()
        assert (progress["running"], progress["done"], progress["total"], progress["counts"]) == (False, 4, 4, counts)
        system = (await client.get("/api/v1/systems/acme-ci")).json()
        assert system["comments"][0] == {
            "window": "1h",
            "results": 2,
            "starts": 1,
            "unread": 1,
            "unread_share": 0.25,
        }
        assert system["windows"][0]["runs"] == 2  # the rollups follow
        runs = (await client.get("/api/v1/systems/acme-ci/runs")).json()["items"]
        green = next(run for run in runs if run["change"] == 1)
        assert (green["result"], green["comment"]) == ("SUCCESS", None)
        again = (await client.post("/api/v1/runs/reparse", headers=AUTH)).json()
        assert (again["runs"], again["now_results"], again["comments"]) == (2, 0, 2)  # nothing moves twice


async def test_cidash_reparse_reports_progress_and_counts(store: Store, tmp_path: Path) -> None:
    async with await _client(store, tmp_path):
        pass  # the comments are stored
    entry = CISystemConfig(account="acme-ci", failure_pattern=r"^\d+ scenarios? red")
    settings = Settings(database_url=str(store.engine.url), ci=[entry], api=ApiConfig(write_token=SecretStr(WRITE)))
    app = create_app(settings, store, frontend_dir=tmp_path / "none")
    async with served(app) as url:
        done = await asyncio.to_thread(invoke, "reparse", "--ci", "acme-ci", "--url", url, "--token", WRITE)
        assert done.exit_code == 0, done.output
        assert done.stdout.splitlines()[-2:] == [
            "runs read 1: 0 changed, 1 unchanged, 0 no longer results (left as they were)",
            "starts and unread comments read 3: 1 now results (became runs), 0 changed between start and unread",
        ]
        shown = await asyncio.to_thread(invoke, "system", "acme-ci", "--url", url)
        assert shown.exit_code == 0, shown.output
        assert "comments read (results/starts/unread): 1h 2/1/1 · 24h 2/1/1" in shown.stdout
        assert "latest unread: 1/1 — listed in config; no report in the text" in shown.stdout
        refused = await asyncio.to_thread(invoke, "reparse", "--url", url)
        assert refused.exit_code == 1 and "cidash: error:" in refused.output
    async with store.engine.connect() as conn:
        red = (await conn.execute(sa.select(m.runs_t.c.result).where(m.runs_t.c.change_number == 2))).scalar_one()
    assert red == "FAILURE"


async def test_a_catastrophic_rule_is_cut_off_without_holding_the_api(store: Store, tmp_path: Path) -> None:
    # (a+)+$ against a's and a b backtracks through 2^40 splits: hours, were it not killed
    rule = {"success_pattern": r"^(a+)+$", "failure_pattern": r"^never$"}
    body = {"ci": "acme-ci", "text": "a" * 40 + "b", "rule": rule, "limit": 0}
    async with await _client(store, tmp_path) as client:
        trial = asyncio.create_task(client.post("/api/v1/explain", json=body, headers=AUTH))
        await asyncio.sleep(0.2)  # the trial is reading in its child process by now
        systems = await client.get("/api/v1/systems")
        assert systems.status_code == 200
        assert not trial.done(), "the API answered only after the trial: the trial held its event loop"
        response = await trial
    assert response.status_code == 422
    assert "did not finish reading" in response.json()["detail"]
