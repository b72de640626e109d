"""The system page shows what was not read and tests a rule on it: a CI whose comments are one
line of its own ("All 3 scenarios green") shows them as unread with why; the rule tester reads
them with a pasted success_pattern, offers the TOML, and the re-read turns them into runs.

Runs its own `cidash serve --role api` (with a write token; the demo has none) on a SQLite store
holding a few such comments, ingested through `cidash ingest`.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.browser.conftest import DESKTOP, serving_api
from tests.support.wait import until_blocking

WRITE = "s3cret-write"
CI_CONFIG = json.dumps([{"account": "acme-ci", "display_name": "Acme CI"}])


def _event(change: int, text: str, posted: datetime) -> bytes:
    """A comment-added stream event of acme-ci (the fields cidash needs)."""
    event = {
        "author": {"name": "Acme CI", "username": "acme-ci"},
        "comment": f"Patch Set 1:\n\n{text}",
        "patchSet": {"number": 1, "revision": f"{change:040x}", "createdOn": int(posted.timestamp()) - 600},
        "change": {"project": "openstack/nova", "branch": "master", "number": change, "subject": f"Change {change}"},
        "project": "openstack/nova",
        "type": "comment-added",
        "eventCreatedOn": int(posted.timestamp()),
    }
    return json.dumps(event).encode() + b"\n"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    directory = tmp_path_factory.mktemp("rules")
    env = {
        "CIDASH_DATABASE_URL": f"sqlite+aiosqlite:///{directory / 'cidash.db'}",
        "CIDASH_API__PORT": "0",
        "CIDASH_API__WRITE_TOKEN": WRITE,
        "CIDASH_CI": CI_CONFIG,
    }
    now = datetime.now(UTC).replace(microsecond=0)
    lines = [_event(100 + i, f"All {i + 2} scenarios green", now - timedelta(minutes=10 * i + 5)) for i in range(3)]
    lines.append(_event(200, "Starting check jobs.", now - timedelta(minutes=50)))
    with serving_api(directory, env, b"".join(lines)) as url:
        yield url


def _counts_row(page: Any, window: str) -> list[str]:
    row = page.get_by_test_id("comments-table").locator("tr", has=page.locator(f"td:text-is('{window}')"))
    return [cell.strip() for cell in row.locator("td").all_inner_texts()]


def test_unread_comments_are_shown_a_pattern_reads_them_and_the_re_read_keeps_it(browser: Any, served: str) -> None:
    context = browser.new_context(
        base_url=served, viewport=DESKTOP, service_workers="block", permissions=["clipboard-read", "clipboard-write"]
    )
    page = context.new_page()
    page.set_default_timeout(15_000)
    page.goto("./#/system/acme-ci")
    page.get_by_test_id("comments-table").wait_for()
    assert _counts_row(page, "1h") == ["1h", "0", "1", "3", "75.0%"]
    unread = page.get_by_test_id("unread-list")
    assert unread.locator("li").count() == 3
    assert "All 2 scenarios green" in unread.inner_text()
    assert unread.get_by_test_id("unread-why").first.inner_text() == "listed in config; no report in the text"

    tester = page.get_by_test_id("rule-tester")
    assert page.get_by_test_id("rule-try").is_disabled()  # no write token yet
    tester.get_by_label("Write token").fill("wrong")
    tester.get_by_label("success_pattern").fill(r"^All \d+ scenarios green")
    page.get_by_test_id("rule-try").click()
    page.get_by_role("alert").filter(has_text="403").wait_for()

    tester.get_by_label("Write token").fill(WRITE)
    tester.get_by_label("Comment text").fill("All 9 scenarios green")
    page.get_by_test_id("rule-try").click()
    result = page.get_by_test_id("rule-result")
    result.wait_for()
    summary = result.locator("p").first.inner_text()
    assert "now 0 results, 1 starts, 3 unread" in summary
    assert "with the rule 3 results, 1 starts, 0 unread (3 read differently)" in summary
    assert "with the rule result SUCCESS" in page.get_by_test_id("rule-text").inner_text()
    toml = tomllib.loads(page.get_by_test_id("rule-toml").inner_text())
    assert toml == {
        "ci": [
            {
                "account": "acme-ci",
                "display_name": "Acme CI",
                "patterns": [{"success_pattern": r"^All \d+ scenarios green"}],
            }
        ]
    }

    page.get_by_test_id("copy-toml").click()
    page.get_by_test_id("copy-toml").filter(has_text="Copied").wait_for()
    assert tomllib.loads(page.evaluate("navigator.clipboard.readText()")) == toml

    # the rules in effect do not have the pattern yet: the re-read changes nothing, and says so
    page.get_by_test_id("reparse").click()
    done = page.get_by_test_id("reparse-result")
    done.wait_for()
    assert "3 starts and unread" not in done.inner_text()
    assert "4 starts and unread comments (0 now results, 0 changed kind)" in done.inner_text()
    until_blocking(
        lambda: _counts_row(page, "1h") == ["1h", "0", "1", "3", "75.0%"],
        15,
        "the 1 h counts row to be read again",
        0.1,
    )
    context.close()
