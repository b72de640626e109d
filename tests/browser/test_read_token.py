"""A dashboard behind `api.read_token`: it asks for the token, then reads and goes live with it,
and never offers a badge snippet that would carry the token into a README.

Runs its own `cidash serve --role api` on a SQLite store holding an hour of simulated stream
events (the demo has no token).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from cidash.sim.world import World
from tests.browser.conftest import DESKTOP, serving_api
from tests.support.wait import until_blocking

TOKEN = "s3cret-read"


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The URL of a dashboard whose reads need TOKEN."""
    directory = tmp_path_factory.mktemp("guarded")
    env = {
        "CIDASH_DATABASE_URL": f"sqlite+aiosqlite:///{directory / 'cidash.db'}",
        "CIDASH_API__PORT": "0",
        "CIDASH_API__READ_TOKEN": TOKEN,
    }
    with serving_api(directory, env, _an_hour_of_events()) as url:
        yield url


def _an_hour_of_events() -> bytes:
    """An hour of simulated stream events (the reference Zuul among the CIs)."""
    world = World(3, start=datetime.now(UTC) - timedelta(hours=1))
    lines: list[bytes] = []
    while len(lines) < 300:
        lines.extend(event.to_line() for event in world.next_activity())
    return b"".join(lines)


def _page(browser: Any, url: str) -> Any:
    context = browser.new_context(base_url=url, viewport=DESKTOP, service_workers="block")
    page = context.new_page()
    page.set_default_timeout(15_000)
    return page


def test_the_dashboard_asks_for_the_read_token_then_goes_live(browser: Any, guarded: str) -> None:
    page = _page(browser, guarded)
    page.goto("./#/")
    banner = page.get_by_test_id("token-banner")
    banner.wait_for()
    assert page.get_by_test_id("api-banner").count() == 0, "a refused read is not an unreachable API"

    banner.get_by_label("Read token").fill("wrong")
    banner.get_by_role("button", name="Use token").click()
    banner.wait_for()  # 403: asked again

    banner.get_by_label("Read token").fill(TOKEN)
    banner.get_by_role("button", name="Use token").click()
    banner.wait_for(state="detached")
    until_blocking(
        lambda: page.get_by_test_id("conn-state").inner_text() == "live",
        15,
        "the live feed to connect with the token",
        0.1,
    )
    assert page.evaluate("localStorage.getItem('cidash.token')") == TOKEN
    page.context.close()


def test_a_link_carrying_the_token_works_and_drops_it_from_the_address(browser: Any, guarded: str) -> None:
    page = _page(browser, guarded)
    page.goto(f"./?token={TOKEN}#/alerts")
    page.wait_for_function("() => !location.search.includes('token')")
    assert page.url.endswith("/#/alerts")
    page.wait_for_function("() => document.querySelector('[data-testid=conn-state]')?.textContent === 'live'")
    assert page.get_by_test_id("token-banner").count() == 0
    page.context.close()


def test_the_badge_snippet_never_carries_the_read_token(browser: Any, guarded: str) -> None:
    page = _page(browser, guarded)
    page.goto(f"./?token={TOKEN}#/system/zuul")
    page.get_by_test_id("badge-private").wait_for()  # badges need the token here: no snippet
    assert "api.public_badges = true" in page.get_by_test_id("badge-private").inner_text()
    assert page.get_by_label("Badge markdown").count() == 0
    badge = page.get_by_alt_text("health badge of zuul")
    assert badge.get_attribute("src") == f"api/v1/badge/zuul.svg?token={TOKEN}"  # the page itself may show it
    page.wait_for_function("() => document.querySelector('img[alt=\"health badge of zuul\"]').naturalWidth > 0")
    for field in page.locator("input").all():
        assert TOKEN not in (field.input_value() or "")
    page.context.close()
