"""The recheck burden through the API: per window on ``/api/v1/systems/{name}`` beside the
recheck recovery share, the comments behind it on ``/rechecks``, its definition on ``/measures``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from cidash.api import create_app
from cidash.config import ApiConfig, CISystemConfig, Settings
from cidash.parsing import CommentParser
from cidash.store import Store
from cidash.store.rollups import rebuild_rollups
from tests.support.store_fixtures import HUMAN, THIRD_PARTY, ZUUL, observed
from tests.support.wait import until_awaited

FAILED = "Build failed.\n\n- tempest-full https://logs.example/1 : FAILURE in 1h 00m 00s"
PASSED = "Build succeeded.\n\n- tempest-full https://logs.example/1 : SUCCESS in 1h 00m 00s"


async def _settled(client: httpx.AsyncClient, url: str) -> dict[str, Any]:
    """The system's detail once its 30 d metrics, computed in the background, are in."""

    async def computed() -> dict[str, Any] | None:
        body: dict[str, Any] = (await client.get(url)).json()
        return None if any(row["metrics_pending"] for row in body["windows"]) else body

    return await until_awaited(computed, 30, "the 30 d metrics to be computed")


async def test_system_windows_count_rechecks_and_link_the_comments(store: Store, tmp_path: Path) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    config = [CISystemConfig(account="zuul", reference=True), CISystemConfig(account="acme-ci")]
    parser = CommentParser(config)
    hour, day = timedelta(hours=1), timedelta(days=1)
    comments = []
    for change, at in ((1, now - 2 * hour), (2, now - 2 * hour), (3, now - 3 * day)):
        comments += [
            observed(FAILED, change=change, author=THIRD_PARTY, posted_at=at, created_at=at - hour),
            observed(PASSED, change=change, author=ZUUL, posted_at=at, created_at=at - hour),
        ]
    comments += [
        observed("Patch Set 1:\n\nrecheck", change=1, author=HUMAN, posted_at=now - hour),  # acme failed: acme
        observed("Patch Set 1:\n\nrecheck-acme", change=2, author=HUMAN, posted_at=now - hour * 1.5),
        observed("recheck bug 1", change=3, author=HUMAN, posted_at=now - 3 * day + hour),  # 7 d only
        observed(PASSED, change=1, author=THIRD_PARTY, posted_at=now - hour / 2, created_at=now - 3 * hour),
    ]
    await store.write_comments([(comment, parser.parse(comment)) for comment in comments])
    async with store.engine.begin() as conn:
        await rebuild_rollups(conn)
    settings = Settings(database_url=str(store.engine.url), ci=config, api=ApiConfig())
    app = create_app(settings, store, frontend_dir=tmp_path / "none")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://cidash.test") as client:
        detail = await _settled(client, "/api/v1/systems/acme-ci")
        zuul = (await client.get("/api/v1/systems/zuul")).json()
        cases = (await client.get("/api/v1/systems/acme-ci/rechecks", params={"window": "24h"})).json()
        week = (await client.get("/api/v1/systems/acme-ci/rechecks", params={"window": "7d", "limit": 1})).json()
        measures = (await client.get("/api/v1/measures")).json()
        missing = await client.get("/api/v1/systems/nobody/rechecks")
        bad_limit = await client.get("/api/v1/systems/acme-ci/rechecks", params={"limit": 0})
    windows = {row["window"]: row for row in detail["windows"]}
    assert {w: (row["rechecks"], row["runs"]) for w, row in windows.items()} == {
        "1h": (0, 1),
        "24h": (2, 3),
        "7d": (3, 4),
        "30d": (3, 4),
    }
    assert windows["24h"]["rechecks_per_100_runs"] == 2 * 100 / 3
    assert windows["1h"]["rechecks_per_100_runs"] == 0
    assert windows["24h"]["recheck_recovery"] == 0.5  # beside it: change 1 passed after the recheck
    assert all(row["rechecks"] == 0 for row in zuul["windows"])  # it passed: nothing was aimed at it
    assert cases["total"] == 2
    assert [(row["change"], row["aimed"], row["text"], row["author"]) for row in cases["rechecks"]] == [
        (1, "plain", "recheck", "Alice"),
        (2, "named", "recheck-acme", "Alice"),
    ]
    assert (week["total"], len(week["rechecks"])) == (3, 1)
    assert "recheck-<name>" in measures["rechecks"]
    assert missing.status_code == 404
    assert bad_limit.status_code == 422
