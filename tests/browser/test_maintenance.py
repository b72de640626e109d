"""Maintenance windows from the dashboard: an operator declares two windows ahead for a CI on its
system page (with the demo's write token), sees them listed, withdraws one, and the API agrees."""

from __future__ import annotations

from datetime import datetime, timedelta

from tests.browser.conftest import Demo, PageFactory

LOCAL = "%Y-%m-%dT%H:%M"  # what an <input type="datetime-local"> takes


def test_an_operator_declares_and_withdraws_maintenance_windows(demo: Demo, new_page: PageFactory) -> None:
    token = demo.write_token()
    ci = next(s["name"] for s in demo.get("/systems") if not s["is_reference"])
    assert demo.get(f"/maintenance?ci={ci}") == []
    page = new_page()
    page.goto(f"./#/system/{ci}")
    section = page.get_by_test_id("maintenance")
    section.get_by_test_id("maintenance-none").wait_for()

    # without the write token nothing is sent
    tomorrow = (datetime.now() + timedelta(days=1)).replace(hour=10, minute=0, second=0, microsecond=0)
    windows = [(tomorrow, tomorrow + timedelta(hours=2), "lab power work"),
               (tomorrow + timedelta(days=1), tomorrow + timedelta(days=1, hours=1), "switch upgrade")]  # fmt: skip
    section.get_by_test_id("maintenance-author").fill("Olga Operator")
    for start, end, reason in windows:
        section.get_by_test_id("maintenance-from").fill(start.strftime(LOCAL))
        section.get_by_test_id("maintenance-to").fill(end.strftime(LOCAL))
        section.get_by_test_id("maintenance-reason").fill(reason)
        if reason == windows[0][2]:
            section.get_by_test_id("maintenance-declare").click()
            section.get_by_test_id("maintenance-error").get_by_text("write token").wait_for()
            section.get_by_test_id("maintenance-token").fill(token)
        section.get_by_test_id("maintenance-declare").click()
        section.get_by_test_id("maintenance-list").get_by_text(reason).wait_for()

    stored = demo.get(f"/maintenance?ci={ci}")
    assert [(w["reason"], w["author"]) for w in stored] == [(reason, "Olga Operator") for _, _, reason in windows]
    # the browser's local time became the instants stored
    first_start = page.evaluate("local => new Date(local).toISOString()", windows[0][0].strftime(LOCAL))
    assert datetime.fromisoformat(stored[0]["starts_at"]) == datetime.fromisoformat(first_start)

    row = section.locator(f'[data-window-id="{stored[0]["id"]}"]')
    row.get_by_test_id("maintenance-delete").click()
    row.wait_for(state="detached")
    assert "switch upgrade" in section.get_by_test_id("maintenance-list").inner_text()
    assert [w["id"] for w in demo.get(f"/maintenance?ci={ci}")] == [stored[1]["id"]]
