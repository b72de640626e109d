"""The Collection page in Chromium against `cidash demo`: the demo's Gerrit server has its row, with
the stream connected, a timeline whose connected span matches the API, and the overview's badge
leading to the page."""

from __future__ import annotations

from tests.browser.conftest import Demo, PageFactory


def test_the_collection_page_shows_the_server_row(demo: Demo, new_page: PageFactory) -> None:
    (server,) = demo.get("/collection")["servers"]
    name = server["server"]
    assert server["connected"] and server["sessions"], server
    page = new_page()
    page.goto("./#/")
    badge = page.get_by_test_id("collection-badge")
    badge.wait_for()
    assert "collection" in badge.inner_text()
    badge.click()
    page.wait_for_url("**/#/collection")
    row = page.get_by_test_id(f"collection-server-{name}")
    row.wait_for()
    assert row.get_by_test_id("stream-state").inner_text() == "stream connected"
    connected = row.get_by_test_id("span-connected")
    assert connected.count() >= 1
    width = connected.last.evaluate("el => el.getBoundingClientRect().width")
    track = row.get_by_test_id("timeline").evaluate("el => el.getBoundingClientRect().width")
    assert width > 0 and track > 0
    assert "%" in row.get_by_test_id("completeness").inner_text()
    nav = page.get_by_role("navigation", name="Main").get_by_role("link", name="Collection", exact=True)
    assert nav.evaluate("el => el.classList.contains('active')")
