"""Making values fit their columns, so one odd comment can never fail a whole batch."""

from __future__ import annotations

import re

_SURROGATE = re.compile("[\ud800-\udfff]")


def clean(value: str) -> str:
    """`value` encodable as UTF-8 (lone surrogates become U+FFFD)."""
    if value.isascii():
        return value
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return _SURROGATE.sub("\ufffd", value)
    return value


def clip(value: str | None, length: int) -> str | None:
    """`value` cleaned and cut to `length` characters (VARCHAR lengths count characters)."""
    if value is None:
        return None
    if len(value) > length:
        value = value[:length]
    return clean(value)


def clip_required(value: str | None, length: int, default: str = "") -> str:
    clipped = clip(value, length)
    return default if clipped is None else clipped


def decode_raw(raw: bytes | str) -> tuple[str, int]:
    """Text to store for raw input and the input's length in bytes."""
    if isinstance(raw, bytes):
        return raw.decode("utf-8", "replace"), len(raw)
    text = clean(raw)
    return text, len(raw.encode("utf-8", "surrogatepass"))
