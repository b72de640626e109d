"""What the reads share about their callers' parameters: :class:`QueryError` (a parameter the
caller got wrong; the API answers 422 with its message) and :func:`parse_time` for the
``from``/``to``/``end`` date-times."""

from __future__ import annotations

from datetime import datetime

from cidash.store.types import OutOfRangeError, bounded_utc


class QueryError(ValueError):
    """A parameter the caller got wrong (the API answers 422 with this message)."""


def parse_time(value: str | None, what: str) -> datetime | None:
    """An ISO 8601 date-time (or date) from a query parameter; naive means UTC."""
    if value is None or value == "":
        return None
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise QueryError(f"{what}: {value[:64]!r} is not an ISO 8601 date-time (e.g. 2026-11-25T10:00:00Z)") from None
    try:
        return bounded_utc(moment, what)
    except OutOfRangeError as exc:
        raise QueryError(str(exc)) from None
