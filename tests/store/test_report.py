"""The weekly report card on both engines, from hand-built runs whose numbers are known: the
week's and the previous week's numbers, worst first, the links behind them (the runs they name
are the runs counted), and the Markdown, HTML and CSV forms."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qsl

import httpx
import pytest
import sqlalchemy as sa

from cidash.api import create_app
from cidash.client.report_card import ROWS_PER_PAGE, arrow, markdown, report_csv, report_html, sparkline
from cidash.config import CISystemConfig, Settings
from cidash.domain.views import ReportCard
from cidash.health.report import week_end
from cidash.parsing import CommentParser
from cidash.store import Store
from cidash.store import schema as m
from cidash.store.rollups import rebuild_rollups
from tests.support.store_fixtures import HUMAN, THIRD_PARTY, ZUUL, observed, parsed

REFERENCE = [CISystemConfig(account="zuul", display_name="Zuul", reference=True)]
END = week_end(datetime.now(UTC)) - timedelta(days=1)  # a week that ended yesterday at midnight
BASE = "https://dash.example.org/"


async def _post(store: Store, author: object, change: int, result: str, posted: datetime, status: str = "NEW") -> None:
    comment = observed(
        f"Build {result.lower()} at {posted.isoformat()}",
        change=change,
        author=author,  # type: ignore[arg-type]
        posted_at=posted,
        created_at=posted - timedelta(minutes=30),
        status=status,
        message_id=f"{change}-{posted.timestamp()}-{result}",
    )
    await store.write_comments([(comment, parsed(result=result, ci=comment.author.key, jobs=(), vote=None))])


async def _history(store: Store) -> None:
    """Previous week: 10 patch sets, acme passes all. This week: 10, acme fails 4 where Zuul
    passed (3 of them merged). After the week: one more run, which the card must leave out."""
    await store.sync_ci_configs(REFERENCE, ["review"])
    for week, base in ((0, END - timedelta(days=14)), (1, END - timedelta(days=7))):
        for i in range(10):
            posted = base + timedelta(hours=12 + 12 * i)
            change = 100 * (week + 1) + i
            failed = week == 1 and i < 4
            status = "MERGED" if failed and i < 3 else "NEW"
            await _post(store, ZUUL, change, "SUCCESS", posted - timedelta(minutes=10), status)
            await _post(store, THIRD_PARTY, change, "FAILURE" if failed else "SUCCESS", posted, status)
    await _post(store, THIRD_PARTY, 999, "FAILURE", END + timedelta(hours=2))
    # humans' rechecks this week: a plain one after acme's failure, one naming it, one after Zuul's pass only
    parser = CommentParser(REFERENCE)
    rechecks = [
        observed("recheck", change=200, author=HUMAN, posted_at=END - timedelta(days=7, hours=-13), status="MERGED"),
        observed("recheck-acme", change=205, author=HUMAN, posted_at=END - timedelta(days=2)),
        observed("recheck", change=100, author=HUMAN, posted_at=END - timedelta(days=13)),  # the week before
    ]
    await store.write_comments([(comment, parser.parse(comment)) for comment in rechecks])
    async with store.engine.begin() as conn:
        await rebuild_rollups(conn)
        acme = (
            await conn.execute(
                sa.select(m.ci_systems_t.c.id)
                .join(m.accounts_t, m.accounts_t.c.id == m.ci_systems_t.c.account_id)
                .where(m.accounts_t.c.account_key == "acme-ci")
            )
        ).scalar_one()
        # (started, resolved): open across the previous week only; resolved before the week;
        # opened this week and still open; opened after the week (left out)
        spans = [
            (END - timedelta(days=9), END - timedelta(days=2)),
            (END - timedelta(days=10), END - timedelta(days=8)),
            (END - timedelta(days=3), None),
            (END + timedelta(hours=1), None),
        ]
        await conn.execute(
            sa.insert(m.incidents_t),
            [
                {
                    "ci_system_id": acme,
                    "rule": "consecutive-failures",
                    "kind": "consecutive_failures",
                    "scope": "",
                    "state": "firing" if resolved is None else "resolved",
                    "severity": "warning",
                    "started_at": started,
                    "fired_at": started,
                    "resolved_at": resolved,
                    "summary": "failing",
                    "created_at": started,
                    "updated_at": resolved or started,
                }
                for started, resolved in spans
            ],
        )


@pytest.fixture
async def client(store: Store, tmp_path: Path) -> httpx.AsyncClient:
    await _history(store)
    app = create_app(Settings(database_url=str(store.engine.url), ci=REFERENCE), store, frontend_dir=tmp_path)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://cidash.test")


async def test_the_week_and_the_week_before(client: httpx.AsyncClient) -> None:
    async with client:
        response = await client.get("/api/v1/report", params={"end": END.date().isoformat()})
        assert response.status_code == 200, response.text
        card = ReportCard.model_validate(response.json())
        assert (card.start, card.end, card.previous_start) == (END - timedelta(days=7), END, END - timedelta(days=14))
        rows = {row.name: row for row in card.rows}
        acme, zuul = rows["acme-ci"], rows["zuul"]
        assert acme.week.runs == 10 and acme.previous.runs == 10  # the run after the week is left out
        assert acme.week.success_rate == pytest.approx(0.6) and acme.previous.success_rate == 1.0
        assert acme.week.agreement == pytest.approx(0.6) and acme.previous.agreement == 1.0
        assert (acme.week.false_negatives, acme.week.negatives) == (3, 4)
        assert acme.week.false_negative_share == pytest.approx(0.75) and acme.previous.false_negative_share is None
        assert zuul.week.runs == 10 and zuul.is_reference and zuul.week.false_negative_share is None
        assert acme.week.queue_p50_s == pytest.approx(1800) and zuul.week.queue_p50_s == pytest.approx(1200)
        assert card.rows[0].name == "acme-ci"  # worse success first (same state)
        # the plain recheck after its failure on change 200 and recheck-acme; change 100's was
        # the week before, after a pass
        assert (acme.week.rechecks, acme.week.rechecks_per_100_runs) == (2, 20.0)
        assert (acme.previous.rechecks, zuul.week.rechecks) == (0, 0)
        assert (acme.week.incidents_open, acme.week.incidents_opened) == (1, 1)
        assert (acme.previous.incidents_open, acme.previous.incidents_opened) == (1, 2)
        assert (zuul.week.incidents_open, zuul.week.incidents_opened) == (0, 0)
        assert acme.links["incidents"] == "#/incidents?ci=acme-ci"
        recheck_path, recheck_query = acme.links["rechecks"].removeprefix("#/rechecks/").split("?")
        listed = (
            await client.get(f"/api/v1/systems/{recheck_path}/rechecks", params=dict(parse_qsl(recheck_query)))
        ).json()
        assert listed["total"] == 2 and {r["change"] for r in listed["rechecks"]} == {200, 205}
        # daily success over both weeks: runs on the first six days of each; this week's first day failed
        assert [v is not None for v in acme.sparkline] == ([True] * 6 + [False]) * 2
        assert acme.sparkline[0] == 1.0 and acme.sparkline[7] == 0.0

        # every runs link names exactly the runs counted
        for key, expected in (("runs", 10), ("success", 6), ("failures", 4)):
            fragment = acme.links[key]
            assert fragment.startswith("#/runs?")
            params = dict(parse_qsl(fragment.split("?", 1)[1]))
            runs = (await client.get("/api/v1/runs", params={**params, "limit": 500})).json()["items"]
            assert len(runs) == expected, key

        nova = ReportCard.model_validate(
            (await client.get("/api/v1/report", params={"end": END.isoformat(), "project": "openstack/nova"})).json()
        )
        assert {row.name for row in nova.rows} == {"acme-ci", "zuul"}
        # a week ending tomorrow holds today so far, and its states are today's (not tomorrow midnight's)
        tomorrow = (week_end(datetime.now(UTC)) + timedelta(days=1)).date().isoformat()
        current = ReportCard.model_validate((await client.get("/api/v1/report", params={"end": tomorrow})).json())
        overview = {s["name"]: s for s in (await client.get("/api/v1/systems")).json()}
        assert {r.name: (r.state, r.state_reason) for r in current.rows} == {
            name: (s["state"], s["state_reason"]) for name, s in overview.items()
        }
        assert next(r for r in current.rows if r.name == "acme-ci").week.runs == 8  # 7 from 5 days before END, 1 after
        future = await client.get("/api/v1/report", params={"end": (END + timedelta(days=30)).date().isoformat()})
        assert future.status_code == 422 and "after the end of today" in future.text


async def test_markdown_html_and_csv(client: httpx.AsyncClient) -> None:
    async with client:
        body = (await client.get("/api/v1/report", params={"end": END.date().isoformat()})).json()
    card = ReportCard.model_validate(body)
    text = markdown(card, BASE)
    lines = text.splitlines()
    last_day = (END - timedelta(days=1)).date().isoformat()
    assert lines[0] == f"# CI report card: {(END - timedelta(days=7)).date().isoformat()} to {last_day} (UTC)"
    header = next(line for line in lines if line.startswith("| CI |"))
    assert header.split(" | ")[:4] == ["| CI", "state", "runs", "success"]
    acme = next(line for line in lines if line.startswith("| acme-ci |"))
    cells = [cell.strip() for cell in acme.strip("|").split("|")]
    assert cells[2].startswith("10 [") and cells[3].startswith("60% ↓ [")  # success fell from 100 %
    assert cells[7].startswith("75% [")  # false -1 share, no arrow: no -1 the week before
    footnote = int(re.search(r"\[(\d+)\]", cells[3]).group(1))  # type: ignore[union-attr]
    links = dict(line.split(": ", 1) for line in lines if re.match(r"^\[\d+\]: ", line))
    assert links[f"[{footnote}]"] == BASE + card.rows[0].links["success"]
    assert "* acme-ci: " in text and "Rechecks: human recheck comments aimed at the CI" in text
    assert "open = still open at the week's end" in text
    assert header.split(" | ")[11:16] == ["rechecks", "/100", "recovered", "open inc.", "new inc."]
    assert cells[11:13] == [f"2 ↑ [{cells[11].split('[')[1]}", f"20.0 ↑ [{cells[12].split('[')[1]}"]
    assert cells[14].startswith("1 [") and cells[15].startswith("1 ↓ [")  # open 1 = 1; new 1 < 2
    assert all(len(line) < 400 for line in lines)  # mail clients wrap long lines; the links are their own lines

    page = report_html(card, BASE)
    assert page.count('<section class="page">') == 1 and "break-after: page" in page
    assert f'href="{BASE}{card.rows[0].links["success"]}"'.replace("&", "&amp;") in page

    table = list(csv.DictReader(io.StringIO(report_csv(card, BASE))))
    acme_row = next(r for r in table if r["ci"] == "acme-ci")
    assert acme_row["runs"] == "10" and acme_row["success"] == "0.6" and acme_row["previous_success"] == "1"
    assert acme_row["success_url"] == BASE + card.rows[0].links["success"]
    assert (acme_row["rechecks"], acme_row["rechecks_per_100_runs"], acme_row["previous_rechecks"]) == ("2", "20", "0")
    assert (acme_row["incidents_open"], acme_row["incidents_new"], acme_row["previous_incidents_new"]) == (
        "1",
        "1",
        "2",
    )
    assert acme_row["incidents_new_url"] == BASE + "#/incidents?ci=acme-ci"


def test_html_starts_a_page_every_ten_cis_and_the_small_helpers() -> None:
    row = {
        "name": "ci-0",
        "server": "review",
        "display_name": "CI",
        "is_reference": False,
        "state": "healthy",
        "state_reason": "<b>fine</b>",
        "sparkline": [None, 0.0, 0.5, 1.0],
        "links": {k: "#/runs?ci=x&a=1" for k in ("runs", "success", "infra", "coverage", "agreement")}
        | {k: "#/runs" for k in ("false_negative", "latency", "incidents", "failures", "recovery", "rechecks")},
    }
    numbers = {
        "runs": 1,
        "success_rate": 1.0,
        "infra_error_rate": 0.0,
        "coverage": None,
        "eligible": 0,
        "covered": 0,
        "agreement": None,
        "false_negative_share": None,
        "false_negatives": 0,
        "negatives": 0,
        "latency_p50_s": 60.0,
        "latency_p95_s": None,
        "queue_p50_s": None,
        "recheck_recovery": None,
        "rechecks": 0,
        "rechecks_per_100_runs": None,
        "incidents_open": 0,
        "incidents_opened": 0,
    }
    rows = [{**row, "name": f"ci-{i}", "week": numbers, "previous": numbers} for i in range(2 * ROWS_PER_PAGE + 3)]
    card = ReportCard.model_validate(
        {
            "start": END - timedelta(days=7),
            "end": END,
            "previous_start": END - timedelta(days=14),
            "project": None,
            "rows": rows,
        }
    )
    page = report_html(card, BASE)
    assert page.count('<section class="page">') == 3 and "page 3 of 3" in page
    assert "<b>fine</b>" not in page and "&lt;b&gt;fine&lt;/b&gt;" in page
    assert sparkline([None, 0.0, 0.5, 1.0]) == " ▁▅█"
    assert (arrow(0.9, 0.8, 0.01), arrow(0.8, 0.9, 0.01), arrow(0.8, 0.805, 0.01), arrow(None, 0.5, 0.01)) == (
        "↑",
        "↓",
        "=",
        "",
    )
