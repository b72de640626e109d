"""The weekly report card in Chromium against `cidash demo`: every CI of the API's card in the
same (worst first) order with the same numbers, each number a link to the runs behind it, ten
CIs per printed page; and the demo's CIs that skip patch sets show their coverage gaps."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from tests.browser.conftest import Demo, PageFactory

STATE_ORDER = {"failing": 0, "silent": 1, "degraded": 2, "unknown": 3, "healthy": 4}
TOMORROW = (datetime.now(UTC) + timedelta(days=1)).date().isoformat()  # the week holding today so far


def test_the_report_page_shows_the_api_card_with_links_and_print_pages(demo: Demo, new_page: PageFactory) -> None:
    card: dict[str, Any] = demo.get(f"/report?end={TOMORROW}")
    names = [row["name"] for row in card["rows"]]
    assert len(names) >= 10 and "zuul" in names
    page = new_page()
    page.goto(f"./#/report?end={TOMORROW}")
    page.get_by_test_id("report-table").first.wait_for()
    shown = page.locator('[data-testid^="report-row-"]').evaluate_all(
        "els => els.map(e => e.dataset.testid.slice('report-row-'.length))"
    )
    assert sorted(shown) == sorted(names)  # every CI of the card (live runs may reorder a few)
    states = page.locator('[data-testid^="report-row-"] td.state').all_inner_texts()
    order = [STATE_ORDER[text.strip()] for text in states]
    assert order == sorted(order), states  # worst state first
    busiest = max(card["rows"], key=lambda row: row["week"]["runs"])
    row = page.get_by_test_id(f"report-row-{busiest['name']}")
    runs_cell = row.get_by_test_id("cell-runs")
    after = next(r for r in demo.get(f"/report?end={TOMORROW}")["rows"] if r["name"] == busiest["name"])
    # the demo keeps running: the page's count lies between the two API answers around it
    assert busiest["week"]["runs"] <= int(runs_cell.inner_text()) <= after["week"]["runs"]
    assert runs_cell.get_attribute("href") == busiest["links"]["runs"]
    success = row.get_by_test_id("cell-success").get_attribute("href")
    assert success == busiest["links"]["success"] and "result=success" in success

    sheets = page.get_by_test_id("report-sheet")
    assert sheets.count() == (len(names) + 9) // 10  # ten CIs per printed page
    page.emulate_media(media="print")
    assert sheets.first.evaluate("el => getComputedStyle(el).breakAfter") == "page"
    page.emulate_media(media="screen")

    runs_cell.click()  # the number leads to exactly the runs behind it
    page.wait_for_url("**/#/runs?*")
    page.get_by_test_id("runs-period").wait_for()
    listed = page.locator("tbody tr").first
    listed.wait_for()
    assert busiest["name"] in listed.inner_text()


def test_the_demo_shows_coverage_gaps_for_the_ci_that_skips_patch_sets(demo: Demo, new_page: PageFactory) -> None:
    systems = {s["name"]: s for s in demo.get("/systems")}
    skipping = systems["ovh-ci"]["health"]  # skips 40 % of its projects' patch sets in the simulator
    assert skipping["eligible"] >= 5, skipping
    assert skipping["coverage"] is not None and skipping["coverage"] < 0.9, skipping
    page = new_page()
    page.goto("./#/")
    cell = page.get_by_test_id("coverage-ovh-ci")
    cell.wait_for()
    assert cell.inner_text().strip().endswith("%") and int(cell.inner_text().strip()[:-1]) < 90
    assert f"of {skipping['eligible']} eligible" in (cell.get_attribute("title") or "") or "eligible" in (
        cell.get_attribute("title") or ""
    )
    header = page.get_by_test_id("col-coverage")
    page.wait_for_function("el => el.title.includes('eligible when')", arg=header.element_handle())


def test_the_report_card_links_rechecks_and_incidents_to_the_comments_behind_them(
    demo: Demo, new_page: PageFactory
) -> None:
    card: dict[str, Any] = demo.get(f"/report?end={TOMORROW}")
    # the simulator's humans recheck after failures, naming the flaky CIs (recheck-<name>)
    rechecked = max(card["rows"], key=lambda row: row["week"]["rechecks"])
    assert rechecked["week"]["rechecks"] > 0, [(r["name"], r["week"]["rechecks"]) for r in card["rows"]]
    page = new_page()
    page.goto(f"./#/report?end={TOMORROW}")
    row = page.get_by_test_id(f"report-row-{rechecked['name']}")
    cell = row.get_by_test_id("cell-rechecks")
    cell.wait_for()
    assert cell.get_attribute("href") == rechecked["links"]["rechecks"]
    assert row.get_by_test_id("cell-incidents_open").get_attribute("href") == f"#/incidents?ci={rechecked['name']}"
    cell.click()
    page.wait_for_url("**/#/rechecks/**")
    total = page.get_by_test_id("recheck-total")
    total.wait_for()
    # live rechecks may have come since the card was read
    assert int(total.inner_text().split()[0]) >= rechecked["week"]["rechecks"]
    assert page.get_by_test_id("recheck-row").count() >= 1

    everyone = f"/incidents?ci={rechecked['name']}&limit=200"
    before = len(demo.get(everyone)["items"])
    page.goto(f"./#/incidents?ci={rechecked['name']}&state=all")
    page.locator('[data-testid="incidents-table"], [data-testid="no-incidents"]').first.wait_for()
    listed = page.get_by_test_id("incident-row").count()
    assert before <= listed <= len(demo.get(everyone)["items"])  # incidents are never deleted

    # the system page counts them per window beside the recovery share, linking the same list
    page.goto(f"./#/system/{rechecked['name']}")
    seven = page.get_by_test_id("rechecks-7d")
    seven.wait_for()
    assert seven.locator("a").get_attribute("href") == f"#/rechecks/{rechecked['name']}?window=7d"
    # and the demo's humans name the flaky CIs: some CI carries rechecks that named it
    named = {
        row["name"]
        for row in card["rows"]
        if row["week"]["rechecks"]
        and any(r["aimed"] == "named" for r in demo.get(f"/systems/{row['name']}/rechecks?limit=500")["rechecks"])
    }
    assert named, "no recheck named a CI"
