"""``POST /api/v1/explain``: a CI's stored comments read now and under a candidate rule, on both
engines; the TOML it answers is a valid ``[[ci]]`` entry that reads them the same way."""

from __future__ import annotations

import tomllib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from pydantic import SecretStr

from cidash.api import create_app
from cidash.config import ApiConfig, CISystemConfig, Settings
from cidash.parsing import CommentParser
from cidash.store import Store
from tests.store_fixtures import observed

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
