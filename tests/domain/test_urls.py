"""cidash.domain.urls: the one definition of a linkable URL and of a URL printed without its credentials."""

from __future__ import annotations

from datetime import timedelta

import pytest

from cidash.domain.urls import redact_url
from cidash.domain.views import RunOut
from cidash.parsing import JobResult
from cidash.store import Store, reads
from cidash.store import feed as feed_module
from tests.support.store_fixtures import T0, observed, parsed


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://:s3cret@host:6380/0", "redis://host:6380/0"),
        ("redis://user:s3cret@host/0", "redis://host/0"),
        ("https://u:p@hooks.example/x?token=abc&x=1#frag", "https://hooks.example/x?token=%2A%2A%2A&x=%2A%2A%2A"),
        ("http://[::1]:8080/hook", "http://[::1]:8080/hook"),  # IPv6 keeps its brackets
        ("redis://:pw@[fe80::1]/0", "redis://[fe80::1]/0"),
        ("redis://:pw@host:99999/0", "redis://host:99999/0"),  # out-of-range port: no ValueError
        ("redis://:pw@[::1]:70000/0", "redis://[::1]:70000/0"),
        ("redis://:pw@host:notaport/0", "redis://host:?/0"),  # not a number: not echoed
        ("http://[::1/x", "<invalid url>"),
    ],
)
def test_redact_url_never_raises_and_never_shows_credentials(url: str, shown: str) -> None:
    assert redact_url(url) == shown
    assert "s3cret" not in shown and "pw" not in shown and "abc" not in shown


def test_the_bus_and_the_webhooks_share_redact_url() -> None:
    from cidash.alerts import webhooks
    from cidash.live import bus

    assert bus.redact_url is redact_url and webhooks.redact_url is redact_url


@pytest.mark.parametrize("url", ["redis://:pw@127.0.0.1:99999/0", "redis://:pw@[::1]:1/0"])
async def test_an_unreachable_redis_is_reported_without_crashing_the_report(url: str) -> None:
    from cidash.errors import CidashError
    from cidash.live.bus import RedisBus

    with pytest.raises(CidashError) as raised:
        await RedisBus(url, connect_timeout_s=1).start()
    assert "is unreachable" in str(raised.value) and "pw" not in str(raised.value)
    assert redact_url(url) in str(raised.value)


LINK_CASES = [
    # the job URLs of a run, in job order -> its log link
    (["https://logs.example/ok"], "https://logs.example/ok"),
    (["HTTPS://logs.example/ok"], "HTTPS://logs.example/ok"),
    (["https://"], None),  # no host
    (["https://logs/a b"], None),  # a space
    (["http://x/\x00y"], None),  # NUL
    (["http://x/\x1ey"], None),  # the grid's own cell separator
    (["http://h:99999/x"], None),  # port out of range
    (["javascript:alert(1)", None, "ftp://x/y", "https://logs.example/ok"], "https://logs.example/ok"),
    (["https://logs/a b", "https://logs.example/later"], None),  # the first http(s) URL decides
    ([None], None),
]


@pytest.mark.parametrize(("urls", "link"), LINK_CASES)
def test_log_url_cases(urls: list[str | None], link: str | None) -> None:
    from cidash.domain.urls import log_url

    assert log_url(urls) == link


async def test_one_run_has_one_log_url_on_the_feed_the_runs_api_and_the_grid(store: Store) -> None:
    """The websocket's `run` message (feed.run_out), GET /runs (queries, Python) and the grid (SQL
    LIKE plus Python) give the same link for every case."""
    items = []
    for index, (urls, _) in enumerate(LINK_CASES):
        jobs = [JobResult(f"job-{n}", url, "FAILURE", None) for n, url in enumerate(urls)]
        comment = observed(
            change=5000 + index, posted_at=T0 + timedelta(minutes=index), message=f"Build failed {index}"
        )
        items.append((comment, parsed(jobs=jobs)))
    store.after_insert = feed_module.append_run_messages
    stats = await store.write_comments(items)
    assert isinstance(stats.after_insert, list)
    live = {RunOut.model_validate(m.data).change: RunOut.model_validate(m.data).log_url for m in stats.after_insert}
    async with store.engine.connect() as conn:
        page = await reads.runs.runs_page(conn, reads.runs.RunFilters(), limit=100)
        grid = await reads.grid.grid(conn, limit=100)
    rest = {run.change: run.log_url for run in page.items}
    cells = {row.change: cell.log_url for row in grid.rows for cell in row.cells.values()}
    expected = {5000 + index: link for index, (_, link) in enumerate(LINK_CASES)}
    assert live == expected
    assert rest == expected
    assert cells == expected
