"""cidash.urls: the one definition of a linkable URL and of a URL printed without its credentials."""

from __future__ import annotations

import pytest

from cidash.urls import redact_url


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
    from cidash import bus, webhooks

    assert bus.redact_url is redact_url and webhooks.redact_url is redact_url


@pytest.mark.parametrize("url", ["redis://:pw@127.0.0.1:99999/0", "redis://:pw@[::1]:1/0"])
async def test_an_unreachable_redis_is_reported_without_crashing_the_report(url: str) -> None:
    from cidash.bus import RedisBus
    from cidash.errors import CidashError

    with pytest.raises(CidashError) as raised:
        await RedisBus(url, connect_timeout_s=1).start()
    assert "is unreachable" in str(raised.value) and "pw" not in str(raised.value)
    assert redact_url(url) in str(raised.value)
