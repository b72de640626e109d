"""Gerrit's encodings: Gson-style JSON, REST timestamps, the XSSI prefix, loose numbers."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import orjson

XSSI_PREFIX = ")]}'\n"
REST_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"

# Gson escapes these for HTML safety; they only ever occur inside JSON strings, so a replace on
# the finished text is exact (structural JSON never contains them).
_GSON_ESCAPES = (
    ("'", "\\u0027"),
    ("<", "\\u003c"),
    (">", "\\u003e"),
    ("&", "\\u0026"),
    ("=", "\\u003d"),
    ("\u2028", "\\u2028"),
    ("\u2029", "\\u2029"),
)
_NEEDS_ESCAPE = frozenset("'<>&=\u2028\u2029")


def gson_dumps(value: Any) -> str:
    """Compact JSON exactly as Gerrit's Gson writes it: no spaces, raw UTF-8, HTML chars escaped."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    if not _NEEDS_ESCAPE.isdisjoint(text):
        for raw, escaped in _GSON_ESCAPES:
            text = text.replace(raw, escaped)
    return text


def loads(data: bytes | str) -> Any:
    """Strict JSON parse (orjson); raises orjson.JSONDecodeError (a ValueError)."""
    return orjson.loads(data)


def strip_xssi(body: bytes | str) -> str:
    """Drop the `)]}'` line Gerrit puts before every REST JSON body."""
    text = body.decode("utf-8") if isinstance(body, bytes) else body
    if text.startswith(")]}'"):
        newline = text.find("\n")
        return text[newline + 1 :] if newline >= 0 else ""
    return text


def format_timestamp(moment: datetime) -> str:
    """`2026-11-25 10:00:00.000000000`: UTC, millisecond precision padded to nine digits."""
    utc = moment.astimezone(UTC) if moment.tzinfo else moment
    return f"{utc.strftime(REST_TIME_FORMAT)}.{utc.microsecond // 1000:03d}000000"


def parse_timestamp(text: str) -> datetime:
    """Parse a REST timestamp (`YYYY-MM-DD HH:MM:SS[.fffffffff]`, UTC) into an aware datetime."""
    base, _, fraction = text.strip().partition(".")
    if len(base) != 19:  # fromisoformat (10x faster than strptime) also takes other shapes: refuse them
        raise ValueError(f"not a Gerrit timestamp: {text!r}")
    moment = datetime.fromisoformat(base).replace(tzinfo=UTC)
    if fraction:
        digits = (fraction + "000000")[:6]
        moment = moment.replace(microsecond=int(digits))
    return moment


def from_epoch(seconds: int | float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def to_epoch(moment: datetime) -> int:
    return int(moment.timestamp())


def loose_int(value: Any) -> int | None:
    """Gerrit numbers are ints since 2.14 and strings before; accept both, and None."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    try:
        return int(str(value).strip())
    except ValueError:
        return None
