"""The dashboard's incidents in the demo: the overview starts with the open ones, and an operator
acks and silences one from its page (with the demo's write token); the API says so afterwards."""

from __future__ import annotations

from tests.browser.conftest import Demo, PageFactory
from tests.support.wait import until_blocking


def test_an_operator_acks_and_silences_an_incident(demo: Demo, new_page: PageFactory) -> None:
    token = demo.write_token()
    firing = until_blocking(lambda: demo.get("/incidents?state=firing")["items"], 90, "a firing incident", 0.2)
    # a silent CI's incident stays open in the live demo; another one may resolve while the test runs
    fresh = [i for i in firing if not i["acked_by"] and not i["silenced_by"]] or firing
    target = next((i for i in fresh if i["kind"] == "silent"), fresh[0])
    page = new_page()
    page.goto("./#/")
    listed = page.get_by_test_id("open-incidents").locator(f'[data-incident-id="{target["id"]}"]')
    listed.wait_for()
    assert target["ci"] in listed.inner_text()
    listed.locator("a").first.click()
    page.get_by_test_id("incident-summary").wait_for()
    assert page.get_by_test_id("incident-state").inner_text() == "firing"

    page.get_by_test_id("write-token").fill(token)
    page.get_by_test_id("author").fill("Olga Operator")
    page.get_by_test_id("ack-note").fill("looking at their lab")
    page.get_by_test_id("ack").click()
    page.get_by_test_id("incident-acked").get_by_text("by Olga Operator").wait_for()
    page.get_by_test_id("silence-reason").fill("vendor is fixing it")
    page.get_by_test_id("silence").click()
    page.get_by_test_id("incident-silenced").get_by_text("until it resolves").wait_for()

    stored = demo.get(f"/incidents/{target['id']}")
    incident = stored["incident"]
    assert (incident["acked_by"], incident["ack_note"]) == ("Olga Operator", "looking at their lab")
    assert incident["silenced_until_resolved"] and incident["silence_reason"] == "vendor is fixing it"
    assert [(n["action"], n["author"]) for n in stored["notes"]] == [
        ("ack", "Olga Operator"),
        ("silence", "Olga Operator"),
    ]
    # the overview shows who acked it (unless live runs resolved it meanwhile: then it is not open)
    page.goto("./#/")
    row = page.get_by_test_id("open-incidents").locator(f'[data-incident-id="{target["id"]}"]')

    def shown_or_resolved() -> bool:
        if demo.get(f"/incidents/{target['id']}")["incident"]["state"] == "resolved":
            return row.count() == 0
        return row.count() > 0 and "acked by Olga Operator" in row.inner_text()

    until_blocking(shown_or_resolved, 30, "the overview to show who acked the incident")
