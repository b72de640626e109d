"""`cidash explain`: show an operator how the parser read a comment, and why.

Any line it can find a comment's text and author in is read: a stream ``comment-added`` event
(``comment`` + ``author``), or a REST ChangeMessageInfo (``message`` + ``author``). Context the
line lacks (change, patch set, time, project) is filled with placeholders and named in
``missing``, so a clipped or hand-written line is still explained instead of refused.

The rule tester's reading (``POST /api/v1/explain``) is here too: a candidate rule added to a
CI's entry (`with_rule`), comments read with and without it (`RuleTrial`), the entry as TOML
(`ci_toml`); the stored comments it reads come from `cidash.store.rule_trial`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import orjson

from cidash.config import CISystemConfig, ResultPatterns, Settings
from cidash.domain.comments import AccountRef, ObservedComment, ObservedPatchSet, Source
from cidash.domain.views import CandidateRule, ExplainedText, JobOut, ReadCounts, Verdict
from cidash.gerrit.events import EventParseError, StreamEvent
from cidash.gerrit.normalize import account_from_wire, comment_from_event, read_approvals
from cidash.gerrit.wire import from_epoch, loose_int
from cidash.parsing.model import CommentKind, ParsedComment
from cidash.parsing.parser import CommentParser


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
    return verdict(parser.parse(pasted_comment(server, AccountRef(username=author), text)))


def pasted_comment(server: str, author: AccountRef, text: str) -> ObservedComment:
    """A comment text on its own, as if `author` had just posted it (no change, patch set or project)."""
    return ObservedComment(
        server=server,
        project="",
        branch="",
        change_number=0,
        change_id=None,
        patchset=ObservedPatchSet(number=0),
        author=author,
        posted_at=datetime.now(UTC),
        message=text,
        source=Source.ARCHIVE,
    )


# -- the rule tester (POST /api/v1/explain) ------------------------------------------------------


def _verdict_out(parsed: ParsedComment) -> Verdict:
    return Verdict(
        kind=parsed.kind.value,
        result=parsed.result,
        vote=parsed.vote,
        pipeline=parsed.pipeline,
        jobs=[
            JobOut(name=j.name, url=j.url, result=j.result, duration_s=j.duration_s, voting=j.voting)
            for j in parsed.jobs
        ],
        why=parsed.why,
    )


def _same(a: ParsedComment, b: ParsedComment) -> bool:
    return (a.kind, a.result, a.vote, a.jobs) == (b.kind, b.result, b.vote, b.jobs)


def with_rule(configs: Sequence[CISystemConfig], ci: str, server: str, rule: CandidateRule) -> list[CISystemConfig]:
    """The configuration with `rule` added to CI `ci`'s entry (a new entry when it has none).
    Raises ConfigError when a pattern is not a valid regex."""
    changes: dict[str, Any] = {
        key: value
        for key, value in rule.model_dump().items()
        if value is not None and key not in ("success_pattern", "failure_pattern")
    }
    pair = (
        ResultPatterns(success_pattern=rule.success_pattern, failure_pattern=rule.failure_pattern)
        if rule.success_pattern is not None or rule.failure_pattern is not None
        else None
    )
    updated: list[CISystemConfig] = []
    found = False
    for config in configs:
        if config.account == ci and config.server in (None, server) and not found:
            found = True
            config = config.model_copy(update={**changes, "patterns": [*config.patterns, *([pair] if pair else [])]})
        updated.append(config)
    if not found:
        updated.append(CISystemConfig(account=ci, **changes, patterns=[pair] if pair else []))
    CommentParser(updated)  # compiles every pattern: a bad one is a ConfigError here
    return updated


def _toml_string(value: str) -> str:
    if "'" not in value and "\n" not in value and value.isprintable():
        return f"'{value}'"
    return json.dumps(value)  # a TOML basic string: the same escapes


def ci_toml(config: CISystemConfig) -> str:
    """The ``[[ci]]`` entry of one CI, as it goes into cidash.toml."""
    lines = ["[[ci]]"]
    defaults = CISystemConfig(account=config.account)
    for key, value in config.model_dump(exclude={"patterns"}).items():
        if value == getattr(defaults, key) and key != "account":
            continue
        if isinstance(value, bool):
            lines.append(f"{key} = {'true' if value else 'false'}")
        elif isinstance(value, list):
            lines.append(f"{key} = [{', '.join(_toml_string(str(item)) for item in value)}]")
        else:
            lines.append(f"{key} = {_toml_string(str(value))}")
    for pair in config.patterns:
        lines.append("[[ci.patterns]]")
        lines.extend(f"{key} = {_toml_string(value)}" for key, value in pair.model_dump().items() if value is not None)
    return "\n".join(lines) + "\n"


class RuleTrial:
    """Comments read twice: with the rules in effect (`now`) and with a candidate rule added
    (`candidate`, None without one). What `read` reads is counted for `counts`."""

    def __init__(self, now: CommentParser, candidate: CommentParser | None) -> None:
        self._now = now
        self._candidate = candidate
        self._now_read: list[ParsedComment] = []
        self._candidate_read: list[ParsedComment] = []

    def read(self, comment: ObservedComment) -> tuple[Verdict, Verdict | None, bool]:
        """(reading now, reading with the candidate, whether they differ) of a stored comment."""
        now = self._now.parse(comment)
        self._now_read.append(now)
        if self._candidate is None:
            return _verdict_out(now), None, False
        candidate = self._candidate.parse(comment)
        self._candidate_read.append(candidate)
        return _verdict_out(now), _verdict_out(candidate), not _same(now, candidate)

    def read_text(self, comment: ObservedComment) -> ExplainedText:
        """A pasted comment text, not counted."""
        now = self._now.parse(comment)
        candidate = self._candidate.parse(comment) if self._candidate is not None else None
        return ExplainedText(now=_verdict_out(now), candidate=_verdict_out(candidate) if candidate else None)

    def counts(self) -> tuple[ReadCounts, ReadCounts | None]:
        """Results, starts and unread comments among what `read` read, now and with the candidate."""
        return _counts(self._now_read), _counts(self._candidate_read) if self._candidate is not None else None


def _counts(verdicts: Sequence[ParsedComment]) -> ReadCounts:
    kinds = [verdict.kind for verdict in verdicts]
    return ReadCounts(
        results=kinds.count(CommentKind.RESULT),
        starts=kinds.count(CommentKind.START),
        unread=kinds.count(CommentKind.OTHER),
    )
