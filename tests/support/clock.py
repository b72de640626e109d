"""The tests' clock: the fixtures' base instant `T0` (relative to the real now, so that no test
depends on the date) and a clock a test moves by hand, for code that takes a `clock` callable."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


def _recent_morning() -> datetime:
    """10:00 UTC four days before today: the fixtures' base instant, relative to the real clock.

    Code under test reads windows back from the real now (the API's 24 h / 7 d / 30 d), so the
    fixtures cannot sit at a fixed date. Four days back keeps builders' offsets (up to T0 + 31 h)
    in the past and outside the 24 h window, and everything inside the 7 d window, on any date.
    """
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return today - timedelta(days=4) + timedelta(hours=10)


T0 = _recent_morning()


class ManualClock:
    """Monotonic seconds that move only when the test says so: pass the clock where a `clock`
    callable is taken, and `advance` it."""

    def __init__(self, start_s: float = 1000.0) -> None:
        self.now_s = start_s

    def __call__(self) -> float:
        return self.now_s

    def advance(self, seconds: float) -> None:
        self.now_s += seconds
