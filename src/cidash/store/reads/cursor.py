"""The page cursor of the run lists: the ``(posted_at, id)`` of a page's last run, as an opaque
URL-safe token. :func:`encode_cursor` makes one, :func:`decode_cursor` reads back only what
:func:`encode_cursor` made (anything else is a :class:`~cidash.store.reads.params.QueryError`)."""

from __future__ import annotations

import base64
import binascii
from datetime import datetime

import orjson

from cidash.store.reads.params import QueryError
from cidash.store.types import OutOfRangeError, bounded_id, bounded_utc, to_aware_utc

MAX_CURSOR_LEN = 200

Position = tuple[datetime, int]  # (posted_at, id) of the last run seen


def encode_cursor(posted_at: datetime, run_id: int) -> str:
    raw = orjson.dumps({"t": to_aware_utc(posted_at).isoformat(), "id": run_id})
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def decode_cursor(cursor: str) -> Position:
    bad = QueryError("cursor: not a cursor this API returned (pass next_cursor back unchanged)")
    if len(cursor) > MAX_CURSOR_LEN:
        raise bad
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        data = orjson.loads(raw)
        moment = datetime.fromisoformat(data["t"])
        run_id = data["id"]
    except (binascii.Error, ValueError, TypeError, KeyError, orjson.JSONDecodeError):
        raise bad from None
    if not isinstance(run_id, int) or isinstance(run_id, bool) or moment.tzinfo is None:
        raise bad
    try:
        return bounded_utc(moment, "cursor"), bounded_id(run_id, "cursor")
    except OutOfRangeError:
        raise bad from None
