"""Request parameters every route shares, bounded to what the store can hold, so that a huge
number or a year-1 date is a 422 with a clear message instead of a database error:

* :data:`StoredId`: a path id (runs, alerts, ...), 1 to 2^63 - 1.
* :data:`Instant`: an ISO 8601 query date-time, aware UTC, years 1970 to 9998 in UTC.
* :func:`parse_id`: a feed id or cursor id given as text (``Last-Event-ID``, websocket ``since``),
  length-checked before it is turned into a number.
* :func:`encode_id_cursor` / :func:`decode_id_cursor`: the opaque cursor of a list paged by id
  (the alert history), bounded like :data:`StoredId`.
* :func:`feed_filter` / :func:`resume_point`: a live-feed subscription's filters and ``since``, as
  the websocket and SSE endpoints take them (URL, subscribe message, ``Last-Event-ID``).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable
from datetime import datetime
from typing import Annotated

from fastapi import HTTPException, Path
from pydantic import AfterValidator
from pydantic_core import PydanticCustomError

from cidash.store import MAX_ID, FeedFilter, OutOfRangeError, bounded_id, bounded_utc

MAX_ID_DIGITS = len(str(MAX_ID))

StoredId = Annotated[int, Path(ge=1, le=MAX_ID, description=f"An id, 1 to {MAX_ID}")]


def _instant(value: datetime) -> datetime:
    try:
        return bounded_utc(value, "date-time")
    except OutOfRangeError as exc:  # said as "from: ... is out of range (...)", like the other errors
        raise PydanticCustomError("datetime_out_of_range", str(exc).removeprefix("date-time: ")) from None


Instant = Annotated[datetime, AfterValidator(_instant)]
"""A datetime query parameter: naive is UTC, the result is aware UTC; out of range is a 422."""


def parse_id(value: object, what: str, *, minimum: int = 1) -> int:
    """An id given as text or as a JSON number: digits only, `minimum` to 2^63 - 1; a ValueError
    naming `what` otherwise (its digits are counted before anything turns them into a number)."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError(f"{what}: {type(value).__name__} is not a whole number")
    if isinstance(value, str):
        text = value.strip()
        if not (text.isascii() and text.isdigit()):
            raise ValueError(f"{what}: {text[:32]!r} is not a whole number")
        if len(text.lstrip("0")) > MAX_ID_DIGITS:
            raise OutOfRangeError(f"{what}: a {len(text)}-digit number is out of range ({minimum} to {MAX_ID})")
        value = int(text)
    return bounded_id(value, what, minimum=minimum)


def encode_id_cursor(prefix: str, row_id: int) -> str:
    """The opaque cursor resuming after `row_id` of a list whose cursors start with `prefix`."""
    return base64.urlsafe_b64encode(f"{prefix}:{row_id}".encode()).decode().rstrip("=")


def decode_id_cursor(prefix: str, cursor: str) -> int:
    """The id inside a cursor :func:`encode_id_cursor` made with `prefix`; a 422 otherwise."""
    bad = HTTPException(422, "cursor: not a cursor this endpoint returned (pass next_cursor back unchanged)")
    if len(cursor) > 64:
        raise bad
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise bad from None
    found, _, number = text.partition(":")
    if found != prefix:
        raise bad
    try:
        return parse_id(number, "cursor")
    except ValueError:
        raise bad from None


def _names(values: Iterable[object]) -> list[str]:
    """The comma-separated names in `values` (what is not text is left out)."""
    found: list[str] = []
    for value in values:
        if isinstance(value, str):
            found.extend(part.strip() for part in value.split(",") if part.strip())
    return found


def feed_filter(kinds: Iterable[object], ci: Iterable[object], projects: Iterable[object]) -> FeedFilter:
    """A live-feed filter from comma-separated (or repeated) values; none means everything."""
    return FeedFilter.of(_names(kinds), _names(ci), _names(projects))


def resume_point(value: object, what: str = "since") -> int | None:
    """A live-feed resume point: None when absent, a feed id 0 to 2^63 - 1, else a ValueError
    naming `what`."""
    if value is None or value == "":
        return None
    return parse_id(value, what, minimum=0)
