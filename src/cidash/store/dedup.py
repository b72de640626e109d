"""Recognising the same CI comment when it arrives more than once.

One CI comment reaches us from the SSH stream (no message id; ``posted_at`` is the event's
``eventCreatedOn``: whole seconds, 0-2 s after the real message time, sometimes without the
``Patch Set N:`` header) and from REST backfills (message id and the canonical message time),
in any order and possibly several times from each.

Two copies are the same run when they have the same message id, or when their content keys are
equal and their times are at most :data:`DEDUP_WINDOW` apart, unless both carry message ids and
those differ (REST says they are two messages, and REST is authoritative). Two identical
``Build failed.`` comments a minute apart are therefore two runs.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta

from cidash.domain.comments import ObservedComment
from cidash.gerrit.messages import strip_patchset_header

DEDUP_WINDOW = timedelta(seconds=20)
CONTENT_KEY_CHARS = 32
_SEPARATOR = "\x1f"


def _body(message: str) -> str:
    """The message without Gerrit's ``Patch Set N: ...`` header, whitespace-trimmed.

    Content keys are stored: a change to this rule (or to ``strip_patchset_header``) splits old
    and new copies of the same comment into two runs for comments already in the database.
    """
    return strip_patchset_header(message)[0].strip()


def content_key(comment: ObservedComment) -> str:
    """Hex digest of server, change, patch set, author and normalised body."""
    text = _SEPARATOR.join(
        (
            comment.server,
            str(comment.change_number),
            str(comment.patchset.number),
            comment.author.key,
            _body(comment.message),
        )
    )
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:CONTENT_KEY_CHARS]


def dedup_key(content: str, posted_at: datetime, taken: set[str] | frozenset[str] = frozenset()) -> str:
    """``<content key>@<epoch seconds>``; a ``~n`` suffix only if that is already taken by another run."""
    base = f"{content}@{int(posted_at.timestamp())}"
    key = base
    suffix = 1
    while key in taken:
        suffix += 1
        key = f"{base}~{suffix}"
    return key


@dataclass(slots=True)
class KnownRun:
    """A stored run (``id`` set) or one this batch will insert (``id`` None)."""

    content_key: str
    posted_at: datetime  # aware UTC
    message_id: str | None
    dedup_key: str
    id: int | None = None


def find_match(runs: list[KnownRun], message_id: str | None, posted_at: datetime) -> KnownRun | None:
    """The known run (same content key) this copy belongs to, if any; the closest in time wins."""
    best: KnownRun | None = None
    best_gap: timedelta | None = None
    for run in runs:
        if message_id is not None and run.message_id is not None:
            if run.message_id == message_id:
                return run
            continue  # two different REST messages are two runs
        gap = abs(run.posted_at - posted_at)
        if gap <= DEDUP_WINDOW and (best_gap is None or gap < best_gap):
            best, best_gap = run, gap
    return best
