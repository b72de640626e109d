"""What the parser returns: a comment's kind, its overall result, and its jobs."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from cidash.parsing.rechecks import Recheck

# Bumped whenever the same comment text could parse differently (the store records it per run).
PARSER_VERSION = "2"


class CommentKind(enum.StrEnum):
    RESULT = "result"  # a CI reporting an outcome: becomes one stored CI run
    START = "start"  # "Starting check jobs." and friends, a vote taken back to start again
    NOTICE = "notice"  # Gerrit's own message in the CI's name (merged, new patch set)
    OTHER = "other"  # anything else (humans, rechecks, CI chatter); by a CI: an unread comment


@dataclass(frozen=True, slots=True)
class JobResult:
    name: str
    url: str | None
    result: str  # a Result value, or the raw word when the CI used an unknown one
    duration_s: int | None
    voting: bool = True
    detail: str | None = field(default=None, compare=False)  # Zuul error detail after the result word


@dataclass(frozen=True, slots=True)
class ParsedComment:
    kind: CommentKind
    is_ci: bool
    ci: str | None  # the CI account key (AccountRef.key) when is_ci
    result: str | None  # overall result when kind is RESULT
    pipeline: str | None
    vote: int | None  # Verified (or VRIF) value this comment carries
    jobs: tuple[JobResult, ...] = field(default_factory=tuple)
    why: str = ""
    recheck: Recheck | None = None  # a human's recheck comment (kind OTHER, not a CI), see cidash.parsing.rechecks
