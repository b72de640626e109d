"""The built dashboard in Debian's Chromium against `cidash demo` (simulated Gerrit + cidash).

What a person would check: the overview lists the CI systems, a new result shows up in the grid
without a reload, an alert pops up a toast, Gerrit text is never markup, nothing logs an error,
and every page renders (screenshots in tests/artifacts/).
"""

from __future__ import annotations

import collections
import re
import time
import urllib.parse
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import DESKTOP, PHONE, Demo, Feed, FeedMessage, PageFactory, PageProblems, Watcher

HOSTILE = "<script>alert(1)</script>"  # what the simulator's vmware-ci writes in some job lines
STATES = {"healthy", "degraded", "failing", "silent", "unknown"}
FAILURE_ALERTS = {"failure", "consecutive_failures", "failure_rate"}
LIVE_WITHIN_S = 2.0  # a published run must show in the grid this soon
TOAST_WITHIN_S = 3.0


def wait_live(page: Any, timeout_ms: float = 15_000) -> None:
    """The page's websocket (`api/v1/ws`) is connected: the indicator says "live"."""
    indicator = page.get_by_test_id("conn-state")
    try:
        indicator.filter(has_text="live").wait_for(timeout=timeout_ms)
    except Exception:
        state = indicator.all_inner_texts()
        pytest.fail(f"the dashboard at {page.url} is not live after {timeout_ms / 1000:.0f} s (conn-state: {state})")


def grid_url(project: str) -> str:
    return "./#/grid?" + urllib.parse.urlencode({"project": project})


@pytest.fixture(scope="package")
def newest_run(demo: Demo) -> dict[str, Any]:
    runs = demo.get("/runs?limit=1")["items"]
    assert runs, "the demo has no CI run after its backfill"
    run: dict[str, Any] = runs[0]
    return run


@pytest.fixture(scope="package")
def hostile_run(demo: Demo) -> int:
    """A stored vmware-ci run whose comment carries `<script>alert(1)</script>`."""
    failures = demo.get("/runs?ci=vmware-ci&result=failure&limit=100")["items"]
    for run in failures:
        detail = demo.get(f"/runs/{run['id']}")
        if HOSTILE in (detail.get("comment") or "") or HOSTILE in str(detail.get("jobs")):
            return int(run["id"])
    pytest.fail(f"none of the {len(failures)} failed vmware-ci runs of the demo carries {HOSTILE!r}", pytrace=False)


def test_overview_lists_the_ci_systems_with_state_lights(demo: Demo, new_page: PageFactory) -> None:
    expected = {system["name"] for system in demo.get("/systems")}
    page = new_page()
    page.goto("./#/")
    page.get_by_test_id("system-row-zuul").wait_for()
    rows = page.locator('[data-testid^="system-row-"]')
    shown = {name.removeprefix("system-row-") for name in rows.evaluate_all("els => els.map(e => e.dataset.testid)")}
    assert "zuul" in shown
    assert len(shown) >= 10, f"only {sorted(shown)} on the overview"
    assert shown == expected, f"overview rows differ from /api/v1/systems: {sorted(shown ^ expected)}"
    lights = rows.locator("[data-state]").evaluate_all("els => els.map(e => e.dataset.state)")
    assert len(lights) == len(shown), "every row has one state light"
    assert set(lights) <= STATES, f"unknown states: {set(lights) - STATES}"
    assert set(lights) - {"unknown"}, "every state light says unknown after a day of history"
    assert page.get_by_test_id("system-row-zuul").get_by_text("reference").is_visible()


def test_the_overview_search_box_finds_by_name_display_name_or_owner(demo: Demo, new_page: PageFactory) -> None:
    systems = demo.get("/systems")
    target = next(s for s in systems if not s["is_reference"])
    word = (target["display_name"] or target["name"]).split()[0][:6].upper()
    expected = {s["name"] for s in demo.get(f"/systems?q={urllib.parse.quote(word)}")}
    assert target["name"] in expected and len(expected) < len(systems)
    page = new_page()
    page.goto("./#/")
    page.get_by_test_id("system-row-zuul").wait_for()
    page.get_by_test_id("system-search").fill(word)
    page.wait_for_function(
        "n => document.querySelectorAll('[data-testid^=\"system-row-\"]').length === n", arg=len(expected)
    )
    rows = page.locator('[data-testid^="system-row-"]')
    shown = {name.removeprefix("system-row-") for name in rows.evaluate_all("els => els.map(e => e.dataset.testid)")}
    assert shown == expected
    assert f"q={urllib.parse.quote(word)}" in page.url  # the search is in the address, so a link keeps it
    page.get_by_test_id("system-search").fill("no such CI anywhere")
    page.get_by_text("No CI system matches").wait_for()


def _eligible(run: dict[str, Any], rows: list[tuple[int, int]]) -> bool:
    """Whether the grid must show this run: its patch set is a row (not one of the oldest, which a
    new row may push out), or it is newer than every row (it goes on top)."""
    key = (int(run["change"]), int(run["patchset"]))
    return key > max(rows) or key in sorted(rows, reverse=True)[: max(1, len(rows) - 5)]


def busiest_project(demo: Demo) -> str:
    """The project with the most of the latest 200 runs: the simulator's projects differ a lot in
    traffic (a quiet one can go a minute without a new result; the busiest gets one every few s)."""
    recent = demo.get("/runs?limit=200")["items"]
    assert recent, "the demo has no CI run after its backfill"
    return str(collections.Counter(run["project"] for run in recent).most_common(1)[0][0])


def test_a_new_result_appears_in_the_grid_without_reload(demo: Demo, feed: Feed, new_page: PageFactory) -> None:
    project = busiest_project(demo)
    page = new_page()
    page.goto(grid_url(project))
    page.locator('[data-testid^="grid-row-"]').first.wait_for()
    wait_live(page)
    start = len(feed.snapshot())
    cells = set(page.locator('[data-testid^="cell-"]').evaluate_all("els => els.map(e => e.dataset.testid)"))
    rows = [
        (int(change), int(patchset))
        for change, patchset in (
            testid.split("-")[2:4]
            for testid in page.locator('[data-testid^="grid-row-"]').evaluate_all(
                "els => els.map(e => e.dataset.testid)"
            )
        )
    ]
    assert cells and rows, f"the grid of {project} is empty"
    navigations: list[str] = []
    page.on("framenavigated", lambda frame: navigations.append(frame.url))

    def new_cell(message: FeedMessage) -> bool:
        run = message.data
        return (
            message.type == "run"
            and run.get("project") == project
            and f"cell-{run['change']}-{run['patchset']}-{run['ci']}" not in cells
            and _eligible(run, rows)
        )

    arrived = feed.wait_for(new_cell, timeout=45, after=start, what=f"new result on {project}")
    run = arrived.data
    testid = f"cell-{run['change']}-{run['patchset']}-{run['ci']}"
    left_ms = max(0.0, arrived.received + LIVE_WITHIN_S - time.time()) * 1000
    cell = page.get_by_test_id(testid)
    try:
        cell.wait_for(state="attached", timeout=left_ms or 1)
    except Exception:
        pytest.fail(
            f"run {run['id']} ({testid}, {run['result']}) was on the feed at {arrived.received:.3f} but not in "
            f"the grid {LIVE_WITHIN_S} s later",
            pytrace=False,
        )
    shown_after = time.time() - arrived.received
    latest = [m.data for m in feed.snapshot() if m.type == "run" and m.data.get("ci") == run["ci"]]
    classes = {r["result_class"] for r in latest if (r["change"], r["patchset"]) == (run["change"], run["patchset"])}
    assert cell.locator("xpath=..").get_attribute("data-result") in classes
    assert navigations == [], f"the page navigated: {navigations}"
    assert shown_after <= LIVE_WITHIN_S + 0.5


def test_a_failure_alert_shows_a_toast(demo: Demo, feed: Feed, watcher: Watcher, new_page: PageFactory) -> None:
    page = watcher.page
    wait_live(page)
    live_at = page.evaluate("window.__cidashConn.find(c => c.state === 'live').at") / 1000

    def failure_alert(message: FeedMessage) -> bool:
        alert = message.data
        return (
            message.type == "alert"
            and alert.get("kind") in FAILURE_ALERTS
            and not alert.get("muted")
            and message.received > live_at + 0.5
        )

    remaining = max(15.0, 75.0 - (time.time() - watcher.opened_at))
    arrived = feed.wait_for(failure_alert, timeout=remaining, what="alert for a failing CI")
    alert = arrived.data
    deadline = arrived.received + TOAST_WITHIN_S
    toast: dict[str, Any] | None = None
    while toast is None:
        toasts = page.evaluate("window.__cidashToasts")
        toast = next((t for t in toasts if alert["message"] in t["text"]), None)
        if toast is None and time.time() > deadline:
            pytest.fail(
                f"no toast with {alert['message']!r} within {TOAST_WITHIN_S} s of the alert; toasts: {toasts}",
                pytrace=False,
            )
        time.sleep(0.05)
    assert alert["ci"] in toast["text"]
    assert toast["at"] / 1000 - arrived.received <= TOAST_WITHIN_S

    alerts = new_page()
    alerts.goto(f"./#/alerts?ci={urllib.parse.quote(alert['ci'])}")  # live incidents come by the second
    alerts.get_by_test_id("alert-item").filter(has_text=alert["message"]).first.wait_for()


def test_a_script_in_a_comment_is_shown_as_text(
    demo: Demo, new_page: PageFactory, problems: PageProblems, hostile_run: int
) -> None:
    page = new_page()
    page.goto(f"./#/run/{hostile_run}")
    page.get_by_test_id("run-detail").wait_for()
    comment = page.get_by_test_id("run-comment")
    comment.wait_for()
    assert HOSTILE in comment.inner_text(), "the comment's <script> text is not shown literally"
    assert comment.locator("script").count() == 0
    scripts = page.evaluate("[...document.querySelectorAll('script')].filter(s => s.textContent.includes('alert(1)'))")
    assert scripts == [], "a <script> element with the comment's content is in the DOM"
    page.wait_for_timeout(500)
    assert problems.dialogs == [], f"a dialog opened: {problems.dialogs}"


def _shoot(page: Any, artifacts: Path, name: str) -> None:
    page.wait_for_timeout(300)  # charts and transitions settle
    path = artifacts / f"{name}.png"
    page.screenshot(path=str(path), full_page=False)
    assert path.stat().st_size > 5_000, f"{path} looks empty"


def test_an_open_dashboard_offers_a_badge_snippet_without_a_token(demo: Demo, new_page: PageFactory) -> None:
    page = new_page()
    page.goto("./#/system/zuul")
    snippet = page.get_by_label("Badge markdown")
    snippet.wait_for()  # reads are open: the badge is public
    assert re.fullmatch(r"!\[zuul CI health\]\(http://127\.0\.0\.1:\d+/api/v1/badge/zuul\.svg\)", snippet.input_value())


def test_screenshots_of_every_page(
    demo: Demo, new_page: PageFactory, artifacts: Path, newest_run: dict[str, Any], hostile_run: int
) -> None:
    page = new_page()
    views = [
        ("overview", "./#/", page.get_by_test_id("system-row-zuul")),
        ("grid", grid_url(newest_run["project"]), page.locator('[data-testid^="grid-row-"]').first),
        ("system", "./#/system/vmware-ci", page.get_by_test_id("system-state")),
        (
            "change",
            f"./#/change/{newest_run['change']}",
            page.locator(f'[data-testid^="cell-{newest_run["change"]}-"]').first,
        ),
        ("alerts", "./#/alerts", page.get_by_test_id("alert-item").first),
        ("runs", "./#/runs", page.locator('[data-testid^="run-row-"]').first),
        ("run", f"./#/run/{hostile_run}", page.get_by_test_id("run-detail")),
    ]
    for name, url, ready in views:
        page.goto(url)
        ready.wait_for()
        assert page.get_by_test_id("api-banner").count() == 0, f"{name}: the API banner is up"
        _shoot(page, artifacts, name)
    assert page.viewport_size == DESKTOP

    phone = new_page(viewport=PHONE)
    phone.goto("./#/")
    phone.get_by_test_id("system-row-zuul").wait_for()
    _shoot(phone, artifacts, "overview-phone")
    width = phone.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"the phone overview scrolls sideways ({width} px wide)"

    dark = new_page(color_scheme="dark")
    dark.goto("./#/")
    dark.get_by_test_id("system-row-zuul").wait_for()
    _shoot(dark, artifacts, "overview-dark")
    red, green, blue = dark.evaluate(
        "getComputedStyle(document.body).backgroundColor.match(/\\d+/g).slice(0, 3).map(Number)"
    )
    assert red + green + blue < 3 * 90, f"the dark overview's background is rgb({red}, {green}, {blue})"


def test_load_more_pages_through_without_duplicates(demo: Demo, new_page: PageFactory) -> None:
    """The runs, system and alerts pages load the next 50 rows per click, none twice."""
    page = new_page()
    for url, api_path, rows, attribute in (
        ("./#/runs", "/runs", '[data-testid^="run-row-"]', "data-testid"),
        ("./#/system/zuul", "/systems/zuul/runs", '[data-testid^="run-row-"]', "data-testid"),
        ("./#/alerts", "/alerts", '[data-testid="alert-item"]', "data-alert-id"),
    ):
        two_pages = len(demo.get(f"{api_path}?limit=100")["items"])
        assert two_pages > 50, f"{api_path}: the demo has only {two_pages} items, one page"
        page.goto(url)
        listed = page.locator(rows)
        listed.nth(49).wait_for()  # the first page (a live row can show before the page arrives)
        assert listed.count() >= 50, f"{url}: the first page has {listed.count()} rows"
        page.get_by_test_id("load-more").click()
        listed.nth(two_pages - 1).wait_for(timeout=10_000)  # live rows only ever add to these
        # in one go: a live run inserted between two reads would shift the rows under them
        keys = listed.evaluate_all("(rows, name) => rows.map((row) => row.getAttribute(name))", attribute)
        assert len(keys) == len(set(keys)), f"{url}: {len(keys)} rows, {len(set(keys))} distinct"


def test_no_console_errors(demo: Demo, new_page: PageFactory, problems: PageProblems) -> None:
    """Over every page the tests opened (this test runs last), and one more walk of its own."""
    page = new_page()
    page.goto("./#/")
    page.get_by_test_id("system-row-zuul").wait_for()
    page.goto("./#/alerts")
    page.get_by_test_id("alert-item").first.wait_for()
    wait_live(page)
    page.wait_for_timeout(300)
    assert problems.console_errors == [], "\n".join(problems.console_errors)
