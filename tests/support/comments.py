"""One observed comment, built for the parsing tests: a Zuul-ish account on openstack/nova, at a
fixed instant (parsing reads no clock)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from cidash.domain.comments import AccountRef, ObservedComment, ObservedPatchSet, Source

SAMPLE_AT = datetime(2020, 7, 15, 23, 1, 13, tzinfo=UTC)


def make_comment(
    message: str,
    *,
    username: str | None = "zuul",
    name: str | None = None,
    email: str | None = None,
    account_id: int | None = None,
    server: str = "review",
    tag: str | None = None,
    approvals: dict[str, int] | None = None,
    changed: Sequence[str] = (),
    source: Source = Source.STREAM,
    patchset: int = 3,
) -> ObservedComment:
    return ObservedComment(
        server=server,
        project="openstack/nova",
        branch="master",
        change_number=21905,
        change_id="I7c926701b9e2b57b934917672bb1397851119ae0",
        patchset=ObservedPatchSet(patchset),
        author=AccountRef(account_id=account_id, username=username, name=name, email=email),
        posted_at=SAMPLE_AT,
        message=message,
        source=source,
        tag=tag,
        approvals=dict(approvals or {}),
        changed_labels=frozenset(changed),
    )
