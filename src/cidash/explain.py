"""`cidash explain`: show an operator how the parser read a comment, and why."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

from cidash.config import Settings
from cidash.gerrit.events import EventParseError, StreamEvent
from cidash.gerrit.normalize import comment_from_event
from cidash.observations import AccountRef, ObservedComment, ObservedPatchSet, Source
from cidash.parsing import CommentParser, ParsedComment


def verdict(parsed: ParsedComment) -> dict[str, Any]:
    return {
        "is_ci": parsed.is_ci,
        "ci": parsed.ci,
        "kind": parsed.kind.value,
        "result": parsed.result,
        "pipeline": parsed.pipeline,
        "vote": parsed.vote,
        "jobs": [
            {"name": j.name, "url": j.url, "result": j.result, "duration_s": j.duration_s, "voting": j.voting}
            for j in parsed.jobs
        ],
        "why": parsed.why,
    }


def explain_lines(settings: Settings, lines: Iterable[bytes], server: str) -> Iterator[dict[str, Any]]:
    """One verdict per non-blank input line; lines that are not comment-added say so in `why`."""
    parser = CommentParser(settings.ci, auto_detect=settings.auto_detect_ci)
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            event = StreamEvent.from_json(line.strip())
        except EventParseError as exc:
            yield {"is_ci": False, "line": number, "error": str(exc), "why": f"line {number} is not an event: {exc}"}
            continue
        comment = comment_from_event(event, server, Source.ARCHIVE)
        if comment is None:
            yield {
                "is_ci": False,
                "line": number,
                "error": f"not a usable comment-added event (type {event.type})",
                "why": f"line {number} is a {event.type} event, not a comment-added with change, patch set and text",
            }
            continue
        yield verdict(parser.parse(comment))


def explain_comment_text(settings: Settings, author: str, text: str, server: str) -> dict[str, Any]:
    parser = CommentParser(settings.ci, auto_detect=settings.auto_detect_ci)
    comment = ObservedComment(
        server=server,
        project="",
        branch="",
        change_number=0,
        change_id=None,
        patchset=ObservedPatchSet(number=0),
        author=AccountRef(username=author),
        posted_at=datetime.now(UTC),
        message=text,
        source=Source.ARCHIVE,
    )
    return verdict(parser.parse(comment))
