"""What the writer hands to the derived tables (rollups, feed) for every newly inserted CI run."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from cidash.parsing import JobResult


@dataclass(frozen=True, slots=True)
class InsertedRun:
    id: int
    server: str
    ci_system_id: int
    ci: str  # account key of the CI system
    project: str
    branch: str
    change_number: int
    patchset_number: int
    result: str
    vote: int | None
    pipeline: str | None
    posted_at: datetime
    latency_s: float | None
    message_id: str | None
    source: str
    jobs: tuple[JobResult, ...]
