"""URLs from outside: which ones may be shown as links, and how to print one without its credentials.

One definition of each, used by the feed, the queries, the bus and the webhooks, so that the same
input never gives two answers (a run's ``log_url`` on the websocket and over REST, say).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

_CONTROL_OR_SPACE = re.compile(r"[\x00-\x20\x7f]")


def safe_http_url(url: str | None) -> str | None:
    """`url` when it is an absolute http(s) URL with a host and no control character or space
    anywhere (comment URLs are untrusted, and a link must never smuggle a second line)."""
    if not url or _CONTROL_OR_SPACE.search(url):
        return None
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on an out-of-range or non-numeric port
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return None
    return url


def looks_http(url: str | None) -> bool:
    """Whether `url` starts with ``http://`` or ``https://`` in any case: the prefix the SQL side
    selects a run's log URL by (``LIKE 'http://%'``, case-insensitive on both engines)."""
    return url is not None and url[:8].lower().startswith(("http://", "https://"))


def log_url(urls: Iterable[str | None]) -> str | None:
    """A run's one-click log link from its job URLs in job order: the first that :func:`looks_http`,
    when it is a :func:`safe_http_url` (else none: a later job's URL is not promoted, because the
    grid's SQL picks the first one by prefix and must give the same answer)."""
    for url in urls:
        if looks_http(url):
            return safe_http_url(url)
    return None


def redact_url(url: str) -> str:
    """`url` without user info, query values or fragment (what may carry credentials), for logs,
    error messages and the API. Never raises: a URL that cannot be parsed is ``<invalid url>``."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
    except ValueError:
        return "<invalid url>"
    try:
        port: int | str | None = parts.port
    except ValueError:  # out of range (shown as written) or not a number (not shown: could be anything)
        written = parts.netloc.rpartition("@")[2].rpartition(":")[2]
        port = written if written.isascii() and written.isdigit() else "?"
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{host}:{port}" if port is not None else host
    query = urlencode([(key, "***") for key, _ in parse_qsl(parts.query, keep_blank_values=True)])
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))
