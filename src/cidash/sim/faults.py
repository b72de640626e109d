"""Fault injection state shared by the simulator's SSH and REST servers.

Set from the command line at start and at run time through `POST /__sim/faults`.
Times are `time.monotonic()` deadlines; rates are probabilities per streamed event.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from pydantic import BaseModel, Field


class FaultRequest(BaseModel):
    """Body of `POST /__sim/faults` (every field optional; absent means unchanged)."""

    drop_ssh: bool = False  # close every SSH connection now
    refuse_ssh_s: float | None = Field(default=None, ge=0)  # refuse new SSH connections for T s
    malformed_rate: float | None = Field(default=None, ge=0, le=1)  # extra non-JSON lines
    malformed_limit: int | None = Field(default=None, ge=0)  # ...but no more than N of them in all
    truncated_rate: float | None = Field(default=None, ge=0, le=1)  # extra cut-short copies of events
    oversized_rate: float | None = Field(default=None, ge=0, le=1)  # extra lines over the client's limit
    dropped_output: int | None = Field(default=None, ge=0)  # lose the next N events on every connection
    rest_429_s: float | None = Field(default=None, ge=0)  # answer 429 "Quota limit reached" for T s
    rest_500_s: float | None = Field(default=None, ge=0)  # answer 500 for T s
    rest_delay_s: float | None = Field(default=None, ge=0)  # add this latency to every REST answer...
    rest_delay_for_s: float | None = Field(default=None, ge=0)  # ...for T s (default: until changed)


@dataclass
class Faults:
    ssh_refused_until: float = 0.0
    malformed_rate: float = 0.0
    malformed_limit: int | None = None
    truncated_rate: float = 0.0
    oversized_rate: float = 0.0
    pending_drops: int = 0
    rest_429_until: float = 0.0
    rest_500_until: float = 0.0
    rest_delay_s: float = 0.0
    rest_delay_until: float = float("inf")
    rng: random.Random = field(default_factory=lambda: random.Random(0))
    counts: dict[str, int] = field(default_factory=dict)  # what was injected, by kind
    _drop_listeners: list[Callable[[], None]] = field(default_factory=list)

    def on_drop_ssh(self, listener: Callable[[], None]) -> None:
        self._drop_listeners.append(listener)

    def count(self, kind: str, n: int = 1) -> None:
        self.counts[kind] = self.counts.get(kind, 0) + n

    def apply(self, request: FaultRequest) -> None:
        now = time.monotonic()
        if request.refuse_ssh_s is not None:
            self.ssh_refused_until = now + request.refuse_ssh_s
        if request.malformed_rate is not None:
            self.malformed_rate = request.malformed_rate
        if request.malformed_limit is not None:
            self.malformed_limit = request.malformed_limit
        if request.truncated_rate is not None:
            self.truncated_rate = request.truncated_rate
        if request.oversized_rate is not None:
            self.oversized_rate = request.oversized_rate
        if request.dropped_output is not None:
            self.pending_drops = request.dropped_output
        if request.rest_429_s is not None:
            self.rest_429_until = now + request.rest_429_s
        if request.rest_500_s is not None:
            self.rest_500_until = now + request.rest_500_s
        if request.rest_delay_s is not None:
            self.rest_delay_s = request.rest_delay_s
            self.rest_delay_until = now + request.rest_delay_for_s if request.rest_delay_for_s else float("inf")
        if request.drop_ssh:
            self.count("ssh_drop")
            for listener in list(self._drop_listeners):
                listener()

    def malformed_due(self) -> bool:
        """Whether to inject a malformed line now (the rate, within the limit)."""
        if not self.malformed_rate:
            return False
        if self.malformed_limit is not None and self.counts.get("malformed", 0) >= self.malformed_limit:
            return False
        return self.rng.random() < self.malformed_rate

    def ssh_refused(self) -> bool:
        return time.monotonic() < self.ssh_refused_until

    def rest_status(self) -> int | None:
        """The error status REST must answer now, if a storm is on."""
        now = time.monotonic()
        if now < self.rest_429_until:
            return 429
        if now < self.rest_500_until:
            return 500
        return None

    def rest_delay(self) -> float:
        return self.rest_delay_s if time.monotonic() < self.rest_delay_until else 0.0

    def snapshot(self) -> dict[str, object]:
        now = time.monotonic()
        return {
            "ssh_refused_for_s": max(0.0, self.ssh_refused_until - now),
            "malformed_rate": self.malformed_rate,
            "malformed_limit": self.malformed_limit,
            "truncated_rate": self.truncated_rate,
            "oversized_rate": self.oversized_rate,
            "pending_drops": self.pending_drops,
            "rest_429_for_s": max(0.0, self.rest_429_until - now),
            "rest_500_for_s": max(0.0, self.rest_500_until - now),
            "rest_delay_s": self.rest_delay(),
            "injected": dict(self.counts),
        }
