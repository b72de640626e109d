"""Human time spans: read on the command line (`90s`, `15m`, `6h`, `7d`, `2w`), written for
operators (`45 min`, `6 h`, `3 d`) in health reasons and incident summaries."""

from __future__ import annotations

import re
from datetime import timedelta

_SPAN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w)\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_span(text: str) -> timedelta:
    """Raise ValueError with a readable message when `text` is not a span."""
    match = _SPAN.match(text)
    if not match:
        raise ValueError(f"{text!r} is not a time span; use a number and a unit s, m, h, d or w (e.g. 7d)")
    return timedelta(seconds=float(match.group(1)) * _UNIT_SECONDS[match.group(2)])


def duration_text(seconds: float) -> str:
    """45 min, 6 h, 3 d: the coarse unit an operator reads at a glance."""
    if seconds < 3600:
        return f"{max(1, round(seconds / 60))} min"
    if seconds < 2 * 86400:
        return f"{round(seconds / 3600)} h"
    return f"{round(seconds / 86400)} d"
