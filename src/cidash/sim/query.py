"""Gerrit's change search language (the subset a CI dashboard and Zuul use), over the world's changes.

Grammar (as Gerrit's ANTLR one): `OR` binds loosest, then `AND` (explicit or by juxtaposition),
then `NOT`/`-`, then `( ... )` and `operator:value` terms. Values may be quoted with "...",
'...' or {...}. Operators: project:/p: (`^regex`), projects:, branch:, status:, is:, after:/since:,
before:/until:, age:, change:, owner:, commentby:, reviewedby:, message:, topic:, limit:.
A bare number is a change number, a bare `I...` a Change-Id; anything else is an error.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cidash.sim.state import Change
    from cidash.sim.world import World

Predicate = Callable[["Change"], bool]
MAX_LIMIT = 500  # Gerrit's default Query Limit capability: the most changes one query returns


class QueryError(ValueError):
    """A query Gerrit would refuse with 400 Bad Request; the message is the response text."""


@dataclass(frozen=True, slots=True)
class Query:
    text: str
    predicate: Predicate
    limit: int | None  # the smallest `limit:` in the query

    def matches(self, change: Change) -> bool:
        return self.predicate(change)

    def filter(self, changes: Iterable[Change]) -> list[Change]:
        """Matching changes, most recently updated first (ties: higher number first)."""
        predicate = self.predicate
        found = [change for change in changes if predicate(change)]
        found.sort(key=lambda change: (change.updated, change.number), reverse=True)
        return found


# -- lexer -------------------------------------------------------------------------------------------

_LPAREN, _RPAREN, _AND, _OR, _NOT, _TERM = "(", ")", "AND", "OR", "NOT", "TERM"
_CLOSERS = {'"': '"', "'": "'", "{": "}"}


@dataclass(frozen=True, slots=True)
class _Token:
    kind: str
    op: str = ""
    value: str = ""


def _read_quoted(text: str, i: int) -> tuple[str, int]:
    """The quoted string starting at text[i] (a quote char); returns (value, index after it)."""
    closer = _CLOSERS[text[i]]
    out: list[str] = []
    j = i + 1
    while j < len(text):
        ch = text[j]
        if ch == "\\" and closer != "}" and j + 1 < len(text):
            out.append(text[j + 1])
            j += 2
            continue
        if ch == closer:
            return "".join(out), j + 1
        out.append(ch)
        j += 1
    raise QueryError(f"Unterminated quoted string in query: {text[i:]}")


def _tokens(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch.isspace():
            i += 1
            continue
        if ch == "(":
            tokens.append(_Token(_LPAREN))
            i += 1
            continue
        if ch == ")":
            tokens.append(_Token(_RPAREN))
            i += 1
            continue
        if ch == "-" and i + 1 < n and not text[i + 1].isspace():
            tokens.append(_Token(_NOT))
            i += 1
            continue
        if ch in _CLOSERS:  # a quoted bare word
            value, i = _read_quoted(text, i)
            tokens.append(_Token(_TERM, "", value))
            continue
        j = i
        while j < n and not text[j].isspace() and text[j] not in "()":
            if text[j] == ":":
                break
            j += 1
        if j < n and text[j] == ":":
            op = text[i:j]
            j += 1
            if j < n and text[j] in _CLOSERS:
                value, j = _read_quoted(text, j)
            else:
                k = j
                while k < n and not text[k].isspace() and text[k] not in "()":
                    k += 1
                value, j = text[j:k], k
            tokens.append(_Token(_TERM, op.lower(), value))
            i = j
            continue
        word = text[i:j]
        if word in (_AND, _OR, _NOT):
            tokens.append(_Token(word))
        else:
            tokens.append(_Token(_TERM, "", word))
        i = j
    return tokens


# -- parser ---------------------------------------------------------------------------------------


class _Parser:
    def __init__(self, text: str, world: World, now: float) -> None:
        self.text = text
        self.tokens = _tokens(text)
        self.pos = 0
        self.world = world
        self.now = now
        self.limit: int | None = None

    def peek(self) -> str | None:
        return self.tokens[self.pos].kind if self.pos < len(self.tokens) else None

    def take(self) -> _Token:
        token = self.tokens[self.pos]
        self.pos += 1
        return token

    def parse(self) -> Predicate:
        if not self.tokens:
            raise QueryError("Empty query")
        predicate = self.or_expr()
        if self.pos < len(self.tokens):
            raise QueryError(f"Syntax error in query near: {self._rest()}")
        return predicate

    def _rest(self) -> str:
        token = self.tokens[self.pos]
        return token.kind if token.kind != _TERM else f"{token.op}:{token.value}" if token.op else token.value

    def or_expr(self) -> Predicate:
        parts = [self.and_expr()]
        while self.peek() == _OR:
            self.take()
            parts.append(self.and_expr())
        if len(parts) == 1:
            return parts[0]
        return lambda change: any(part(change) for part in parts)

    def and_expr(self) -> Predicate:
        parts = [self.unary()]
        while True:
            kind = self.peek()
            if kind == _AND:
                self.take()
                parts.append(self.unary())
            elif kind in (_NOT, _LPAREN, _TERM):
                parts.append(self.unary())
            else:
                break
        if len(parts) == 1:
            return parts[0]
        return lambda change: all(part(change) for part in parts)

    def unary(self) -> Predicate:
        kind = self.peek()
        if kind == _NOT:
            self.take()
            inner = self.unary()
            return lambda change: not inner(change)
        if kind == _LPAREN:
            self.take()
            inner = self.or_expr()
            if self.peek() != _RPAREN:
                raise QueryError("Syntax error in query: missing )")
            self.take()
            return inner
        if kind == _TERM:
            token = self.take()
            return self.term(token.op, token.value)
        if kind is None:
            raise QueryError("Syntax error in query: unexpected end")
        raise QueryError(f"Syntax error in query near: {kind}")

    # -- operators ----------------------------------------------------------------------------------
    def term(self, op: str, value: str) -> Predicate:
        if not op:
            if value.isdigit():
                return self.term("change", value)
            if re.fullmatch(r"I[0-9a-f]{4,40}", value):
                return self.term("change", value)
            raise QueryError(f"Unsupported query: {value}")
        if not value:
            raise QueryError(f"Empty value for operator {op}")
        if op in ("project", "p"):
            return _name_predicate("project", value)
        if op == "projects":
            return lambda change: change.project.startswith(value)
        if op == "branch":
            return _name_predicate("branch", value.removeprefix("refs/heads/"))
        if op == "status":
            return _status(value)
        if op == "is":
            if value.lower() in ("open", "pending", "new", "closed", "merged", "abandoned"):
                return _status(value)
            raise QueryError(f"Unsupported query: is:{value}")
        if op in ("after", "since"):
            after = _parse_time(value)
            return lambda change: change.updated >= after
        if op in ("before", "until"):
            before = _parse_time(value)
            return lambda change: change.updated <= before
        if op == "age":
            cutoff = self.now - _parse_age(value)
            return lambda change: change.updated <= cutoff
        if op == "change":
            return _change(value)
        if op == "owner":
            owners = self._accounts(value)
            return lambda change: change.owner.account_id in owners
        if op == "commentby":
            authors = self._accounts(value)
            return lambda change: not authors.isdisjoint(change.commenters)
        if op == "reviewedby":
            reviewers = self._accounts(value)
            return lambda change: not reviewers.isdisjoint(_reviewed_by(change))
        if op == "message":
            needle = value.lower()
            return lambda change: needle in change.commit_message.lower()
        if op == "topic":
            return lambda change: False  # the simulated changes carry no topic
        if op == "limit":
            if not value.isdigit() or int(value) <= 0:
                raise QueryError(f"Invalid limit: {value}")
            limit = int(value)
            self.limit = limit if self.limit is None else min(self.limit, limit)
            return lambda change: True
        raise QueryError(f"Unsupported operator {op}:{value}")

    def _accounts(self, who: str) -> frozenset[int]:
        found = self.world.resolve_accounts(who)
        if not found:
            raise QueryError(f"Account '{who}' not found")
        return frozenset(found)


def _name_predicate(field: str, value: str) -> Predicate:
    if value.startswith("^"):
        pattern = value[1:].removesuffix("$")
        try:
            regex = re.compile(pattern)
        except re.error as exc:
            raise QueryError(f"Invalid regular expression {value}: {exc}") from None
        if field == "project":
            return lambda change: regex.fullmatch(change.project) is not None
        return lambda change: regex.fullmatch(change.branch) is not None
    if field == "project":
        return lambda change: change.project == value
    return lambda change: change.branch == value


_STATUSES = {
    "open": frozenset({"NEW"}),
    "pending": frozenset({"NEW"}),
    "new": frozenset({"NEW"}),
    "merged": frozenset({"MERGED"}),
    "abandoned": frozenset({"ABANDONED"}),
    "closed": frozenset({"MERGED", "ABANDONED"}),
}


def _status(value: str) -> Predicate:
    wanted = _STATUSES.get(value.lower())
    if wanted is None:
        raise QueryError(f"Unrecognized value: {value}")
    return lambda change: change.status in wanted


def _change(value: str) -> Predicate:
    if value.isdigit():
        number = int(value)
        return lambda change: change.number == number
    if re.fullmatch(r"I[0-9a-f]{4,40}", value):
        return lambda change: change.change_id.startswith(value)
    if "~" in value:
        project, _, number_text = value.rpartition("~")
        if number_text.isdigit():
            number = int(number_text)
            return lambda change: change.number == number and change.project == project
    raise QueryError(f"Invalid change: {value}")


def _reviewed_by(change: Change) -> set[int]:
    """Accounts that commented after the owner's last update (Gerrit's `reviewedby:`)."""
    owner = change.owner.account_id
    found: set[int] = set()
    for message in reversed(change.messages):
        author = message.author.account_id
        if author == owner:
            break
        found.add(author)
    return found


_TIME = re.compile(
    r"(\d{4})-(\d{1,2})-(\d{1,2})"
    r"(?:[ T](\d{1,2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?(?:\s*([+-]\d{2}:?\d{2}|Z|UTC))?)?"
)


def _parse_time(value: str) -> float:
    """`2006-01-02[ 15:04:05[.890][ -0700]]` (UTC unless a zone is given) -> epoch seconds."""
    match = _TIME.fullmatch(value.strip())
    if match is None:
        raise QueryError(f"Invalid timestamp: {value}")
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    tz = UTC
    if zone and zone not in ("Z", "UTC"):
        digits = zone.replace(":", "")
        offset = timedelta(hours=int(digits[1:3]), minutes=int(digits[3:5]))
        tz = timezone(-offset if digits[0] == "-" else offset)
    try:
        moment = datetime(
            int(year),
            int(month),
            int(day),
            int(hour or 0),
            int(minute or 0),
            int(second or 0),
            int((fraction or "0").ljust(6, "0")[:6]),
            tzinfo=tz,
        )
    except ValueError:
        raise QueryError(f"Invalid timestamp: {value}") from None
    return moment.timestamp()


_UNITS = {
    "s": 1,
    "sec": 1,
    "secs": 1,
    "second": 1,
    "seconds": 1,
    "m": 60,
    "min": 60,
    "mins": 60,
    "minute": 60,
    "minutes": 60,
    "h": 3600,
    "hr": 3600,
    "hour": 3600,
    "hours": 3600,
    "d": 86400,
    "day": 86400,
    "days": 86400,
    "w": 7 * 86400,
    "week": 7 * 86400,
    "weeks": 7 * 86400,
    "mon": 30 * 86400,
    "month": 30 * 86400,
    "months": 30 * 86400,
    "y": 365 * 86400,
    "year": 365 * 86400,
    "years": 365 * 86400,
}
_AGE = re.compile(r"(\d+)\s*([a-z]*)")


def _parse_age(value: str) -> float:
    match = _AGE.fullmatch(value.strip().lower())
    if match is None or (match.group(2) not in _UNITS and match.group(2) != ""):
        raise QueryError(f"Invalid age: {value}")
    return int(match.group(1)) * _UNITS.get(match.group(2), 1)


def parse_query(text: str, world: World, *, now: float | None = None) -> Query:
    """Compile a query for `world` (account names resolved, `age:` relative to `now` or world.now())."""
    parser = _Parser(text, world, world.now() if now is None else now)
    predicate = parser.parse()
    return Query(text, predicate, parser.limit)
