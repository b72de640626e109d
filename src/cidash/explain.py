"""`cidash explain`: show an operator how the parser read a comment, and why.

Any line it can find a comment's text and author in is read: a stream ``comment-added`` event
(``comment`` + ``author``), or a REST ChangeMessageInfo (``message`` + ``author``). Context the
line lacks (change, patch set, time, project) is filled with placeholders and named in
``missing``, so a clipped or hand-written line is still explained instead of refused.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

import orjson

from cidash.config import Settings
from cidash.gerrit.events import EventParseError, StreamEvent
from cidash.gerrit.normalize import account_from_wire, comment_from_event, read_approvals
from cidash.gerrit.wire import from_epoch, loose_int
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


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, dict) else {}


def loose_comment(raw: Mapping[str, Any], server: str) -> tuple[ObservedComment, list[str]] | None:
    """The comment in a line that lacks context: (comment, names of the missing fields), or None
    when there is no text or no author to read."""
    text = raw.get("comment")
    if not isinstance(text, str):
        text = raw.get("message")
    author = raw.get("author")
    if not isinstance(text, str) or not isinstance(author, dict) or not author:
        return None
    change, patchset = _mapping(raw.get("change")), _mapping(raw.get("patchSet"))
    number = loose_int(change.get("number", raw.get("_number")))
    ps_number = loose_int(patchset.get("number", raw.get("_revision_number")))
    posted = loose_int(raw.get("eventCreatedOn"))
    project = raw.get("project", change.get("project"))
    missing = [
        name
        for name, value in (
            ("change", number),
            ("patch set", ps_number),
            ("time", posted if posted is not None else raw.get("date")),
            ("project", project),
        )
        if value is None
    ]
    approvals, changed = read_approvals(raw.get("approvals"))
    comment = ObservedComment(
        server=server,
        project=project if isinstance(project, str) else "",
        branch="",
        change_number=number or 0,
        change_id=None,
        patchset=ObservedPatchSet(number=ps_number or 0),
        author=account_from_wire(author),
        posted_at=from_epoch(posted) if posted is not None else datetime.now(UTC),
        message=text,
        source=Source.ARCHIVE,
        tag=raw.get("tag") if isinstance(raw.get("tag"), str) else None,
        approvals=approvals,
        changed_labels=changed,
    )
    return comment, missing


def _explain_raw(parser: CommentParser, raw: Mapping[str, Any], server: str, number: int) -> dict[str, Any]:
    found = loose_comment(raw, server)
    if found is None:
        what = raw.get("type") or "object without a type"
        lacks = "text" if not isinstance(raw.get("comment", raw.get("message")), str) else "author"
        return {
            "is_ci": False,
            "line": number,
            "error": f"no comment {lacks} in this {what} line",
            "why": f"line {number} ({what}) has no comment {lacks} to read",
        }
    comment, missing = found
    answer = verdict(parser.parse(comment))
    answer["line"] = number
    answer["missing"] = missing
    if missing:
        answer["why"] += f" (read without its {', '.join(missing)}: not in the line)"
    return answer


def explain_lines(settings: Settings, lines: Iterable[bytes], server: str) -> Iterator[dict[str, Any]]:
    """One verdict per non-blank input line; what a line lacks is named in `missing` and `why`."""
    parser = CommentParser(settings.ci, auto_detect=settings.auto_detect_ci)
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            event = StreamEvent.from_json(line.strip())
        except EventParseError as exc:
            try:
                value = orjson.loads(line)
            except orjson.JSONDecodeError:
                value = None
            if isinstance(value, dict):  # JSON without a type (a REST message, a clipped event)
                yield _explain_raw(parser, value, server, number)
                continue
            yield {"is_ci": False, "line": number, "error": str(exc), "why": f"line {number} is not an event: {exc}"}
            continue
        comment = comment_from_event(event, server, Source.ARCHIVE)
        if comment is None:
            yield _explain_raw(parser, event.raw, server, number)
            continue
        answer = verdict(parser.parse(comment))
        answer["missing"] = []
        yield answer


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
