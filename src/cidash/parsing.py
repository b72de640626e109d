"""Reading CI comments: is this account a CI, and what did its comment say?

:class:`CommentParser` turns one :class:`~cidash.observations.ObservedComment` into a
:class:`ParsedComment`. It knows these report formats (the ``Patch Set N: Verified+1`` header
Gerrit writes may or may not be there):

* Zuul v3 / v2 and old OpenStack Jenkins: ``Build succeeded (check pipeline).`` / ``Build failed.``
  then job lines ``- <job> <url> : <RESULT>[ <detail>][ in 1h 02m 03s][ (non-voting)]``;
  ``Merge Failed.``; start markers ``Starting check jobs.``.
* Jenkins gerrit-trigger: ``Build Successful`` / ``Build Failed`` / ``Build Unstable`` /
  ``Build Aborted`` then ``<url> : <RESULT>`` lines; ``Build Started <url>``.
* GerritForge check lines: ``✅ notedb : SUCCESS`` with the URL in parentheses on the next line.
* Per-CI regex overrides from :class:`~cidash.config.CISystemConfig`.

The overall result of a report follows one rule (see :func:`_overall_result`), which the Gerrit
simulator implements too.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, fields

from cidash.config import CISystemConfig
from cidash.errors import ConfigError
from cidash.observations import AccountRef, ObservedComment

# Bumped whenever the same comment text could parse differently (the store records it per run).
PARSER_VERSION = "1"


class Result(enum.StrEnum):
    SUCCESS = "SUCCESS"
    # test failures: the change (or the test) is at fault
    FAILURE = "FAILURE"
    POST_FAILURE = "POST_FAILURE"
    TIMED_OUT = "TIMED_OUT"
    UNSTABLE = "UNSTABLE"
    # infra errors: the CI itself is at fault
    ERROR = "ERROR"
    NODE_FAILURE = "NODE_FAILURE"
    RETRY_LIMIT = "RETRY_LIMIT"
    MERGE_CONFLICT = "MERGE_CONFLICT"
    CONFIG_ERROR = "CONFIG_ERROR"
    DISK_FULL = "DISK_FULL"
    ABORTED = "ABORTED"
    LOST = "LOST"
    # neither
    SKIPPED = "SKIPPED"


INFRA_RESULTS = frozenset(
    {
        Result.ERROR,
        Result.NODE_FAILURE,
        Result.RETRY_LIMIT,
        Result.MERGE_CONFLICT,
        Result.CONFIG_ERROR,
        Result.DISK_FULL,
        Result.ABORTED,
        Result.LOST,
    }
)
TEST_FAILURE_RESULTS = frozenset({Result.FAILURE, Result.POST_FAILURE, Result.TIMED_OUT, Result.UNSTABLE})


class CommentKind(enum.StrEnum):
    RESULT = "result"  # a CI reporting an outcome: becomes one stored CI run
    START = "start"  # "Starting check jobs." and friends
    OTHER = "other"  # anything else (humans, rechecks, CI chatter)


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


# --------------------------------------------------------------------------------------------
# Result words

_KNOWN_RESULTS = frozenset(r.value for r in Result)
# Result words on built-in job lines -> canonical Result value (other upper-case words stay raw).
_JOB_WORDS: dict[str, str] = {r.value: r.value for r in Result}
_JOB_WORDS.update(
    {
        "MERGER_FAILURE": Result.MERGE_CONFLICT.value,
        "CANCELED": Result.ABORTED.value,
        "CANCELLED": Result.ABORTED.value,
        "NOT_BUILT": Result.SKIPPED.value,
    }
)
# Also the words a header or a custom regex may use ("Build succeeded", "passed", ...).
_RESULT_WORDS: dict[str, str] = dict(_JOB_WORDS)
_RESULT_WORDS.update(
    {
        "NOT BUILT": Result.SKIPPED.value,
        "SUCCEEDED": Result.SUCCESS.value,
        "SUCCESSFUL": Result.SUCCESS.value,
        "PASSED": Result.SUCCESS.value,
        "PASS": Result.SUCCESS.value,
        "OK": Result.SUCCESS.value,
        "FAILED": Result.FAILURE.value,
        "FAIL": Result.FAILURE.value,
        "TIMEOUT": Result.TIMED_OUT.value,
    }
)
_TEST_FAILURES = frozenset(r.value for r in TEST_FAILURE_RESULTS)
_INFRA = frozenset(r.value for r in INFRA_RESULTS)
_PASSING = frozenset({Result.SUCCESS.value, Result.SKIPPED.value})


def _normalize_result(word: str) -> str:
    """Canonical Result value for a known word (any case, aliases folded), else the raw word upper-cased."""
    upper = word.strip().upper()
    known = _RESULT_WORDS.get(upper)
    if known is not None:
        return known
    return upper.replace(" ", "_")


# --------------------------------------------------------------------------------------------
# Small public helpers

_VOTE_TOKEN_RE = re.compile(r"-(?P<removed>[A-Za-z][\w-]*)|(?P<label>[A-Za-z][\w-]*?)(?P<value>[+-]\d+)")
_DURATION_RE = re.compile(
    r"\s*(?:in\s+)?"
    r"(?:(?P<h>\d+)\s*(?:h|hrs?|hours?)\b)?[\s,]*"
    r"(?:(?P<m>\d+)\s*(?:m|mins?|minutes?)\b)?[\s,]*"
    r"(?:(?P<s>\d+)\s*(?:s|secs?|seconds?)\b)?\s*",
    re.IGNORECASE,
)


_UNIT_SECONDS = {"h": 3600, "m": 60, "s": 1}


def parse_duration(text: str) -> int | None:
    """Seconds in a Zuul-style duration: "1h 02m 03s" -> 3723, "3m 12s" -> 192, "45s" -> 45; else None.

    Also takes "in 3m 12s", "2 mins 5 secs" and the like; anything else is None.
    """
    # fast path: Zuul's own "1h 02m 03s" shape
    total = 0
    last = 4000  # units must come in decreasing order, each at most once
    tokens = text.split()
    for token in tokens:
        unit = _UNIT_SECONDS.get(token[-1])
        number = token[:-1]
        if unit is None or unit >= last or not number.isdigit() or not number.isascii():
            break
        total += int(number) * unit
        last = unit
    else:
        if tokens:
            return total
    match = _DURATION_RE.fullmatch(text)
    if match is None:
        return None
    hours, minutes, seconds = match.group("h", "m", "s")
    if hours is None and minutes is None and seconds is None:
        return None
    return int(hours or 0) * 3600 + int(minutes or 0) * 60 + int(seconds or 0)


def strip_patchset_header(message: str) -> tuple[str, str | None]:
    """Split ``"Patch Set 3: Verified+1\\n\\n<body>"`` into ``(body, "Patch Set 3: Verified+1")``.

    The header is the whole first line; without one (legacy/simulator mode, Gerrit 2.4) the
    result is ``(message, None)``.
    """
    if not message.startswith("Patch Set "):
        return message, None
    colon = message.find(":", 10)
    if colon < 0 or not message[10:colon].isdigit() or not message[10:colon].isascii():
        return message, None
    newline = message.find("\n", colon)
    if newline < 0:
        return "", message
    return message[newline + 1 :].lstrip("\n"), message[:newline]


def split_header_votes(header: str) -> dict[str, int]:
    """Votes in a header: "Patch Set 3: Verified+1 Code-Review-2 -Workflow" ->
    {"Verified": 1, "Code-Review": -2, "Workflow": 0}. Tokens that are not votes are ignored."""
    if header.startswith("Patch Set "):
        header = header.partition(":")[2]
    votes: dict[str, int] = {}
    for token in header.split():
        match = _VOTE_TOKEN_RE.fullmatch(token)
        if match is None:
            continue
        removed = match.group("removed")
        if removed is not None:
            votes[removed] = 0
        else:
            votes[match.group("label")] = int(match.group("value"))
    return votes


def _overall_result(header_result: str | None, jobs: Sequence[JobResult]) -> tuple[str, str]:
    """The overall result of a report, and the reason in a few words.

    ``header_result`` is what the header said as a Result value: SUCCESS ("Build succeeded",
    "Build Successful"), FAILURE ("Build failed"), UNSTABLE / ABORTED (gerrit-trigger), None when
    there is no header. Header SUCCESS wins. Otherwise, among the voting jobs (all jobs when none
    votes): any test failure -> FAILURE; else the first infra result in comment order; else, when
    all of them are SUCCESS/SKIPPED: SUCCESS without a header, the header's result with one. No
    jobs: the header's result (FAILURE without a header).
    """
    if header_result == Result.SUCCESS:
        return Result.SUCCESS.value, "the header says it succeeded"
    considered: Sequence[JobResult] = [job for job in jobs if job.voting]
    what = "voting job"
    if not considered:
        considered, what = jobs, "job"
    first_infra: JobResult | None = None
    for job in considered:
        if job.result in _TEST_FAILURES:
            return Result.FAILURE.value, f"{what} {job.name} ended {job.result}"
        if first_infra is None and job.result in _INFRA:
            first_infra = job
    if first_infra is not None:
        return first_infra.result, f"{what} {first_infra.name} ended {first_infra.result} (infra)"
    if header_result is not None:
        if considered:
            return header_result, f"the header says so although no {what} failed"
        return header_result, "the header says so and there are no job lines"
    if considered and all(job.result in _PASSING for job in considered):
        return Result.SUCCESS.value, f"every {what} passed"
    if considered:
        return Result.FAILURE.value, f"{what}s ended with unknown results"
    return Result.FAILURE.value, "there is neither a header nor a job line"


# --------------------------------------------------------------------------------------------
# Compiled patterns: headers are matched against the body's first line, jobs one line at a time

_ZUUL_HEADER_RE = re.compile(
    r"[ \t]*Build (?P<word>(?i:succeeded|failed))(?: \((?P<pipeline>[^()\s]+) pipeline\))?\.(?P<tail>[^\n]*)"
)
_TRIGGER_HEADER_RE = re.compile(r"[ \t]*Build (?P<word>Successful|Failed|Unstable|Aborted)\b(?P<tail>[^\n]*)")
_TRIGGER_WORDS = {
    "Successful": Result.SUCCESS.value,
    "Failed": Result.FAILURE.value,
    "Unstable": Result.UNSTABLE.value,
    "Aborted": Result.ABORTED.value,
}
_MERGE_FAILED_RE = re.compile(r"[ \t]*Merge Failed\.")
_START_RE = re.compile(r"[ \t]*Starting (?P<pipeline>\S+) jobs\.")
_BUILD_STARTED_RE = re.compile(r"[ \t]*Build Started\b(?P<tail>[^\n]*)")
_COMMENT_COUNT_RE = re.compile(r"\(\d+ (?:inline )?comments?\)[ \t]*(?:\n+|\Z)")

_FORGE_JOB_RE = re.compile(
    r"[\u2600-\u27bf\U0001f300-\U0001faff]\ufe0f?[ \t]*(?P<name>\S+) : (?P<result>[A-Z][A-Z_]*)(?: (?P<rest>.*))?"
)
_FORGE_URL_RE = re.compile(r"[ \t]+\((?P<url>https?://[^\s)]+)\)\s*")
_ZUUL_DURATION_RE = re.compile(r"in (?:(?:(\d+)h )?(\d+)m )?(\d+)s")
_TAG_PREFIX = "autogenerated:zuul:"
_CACHE_LIMIT = 50_000


def _job_name_from_url(url: str) -> str:
    """gerrit-trigger job name: the segments after ``/job/`` (nested folders joined with "/"),
    else the last non-numeric path segment."""
    host, _, path = url.partition("://")[2].partition("/")
    path = path.split("?", 1)[0].split("#", 1)[0]
    segments = [segment for segment in path.split("/") if segment]
    names = [segments[i + 1] for i in range(len(segments) - 1) if segments[i] == "job"]
    if names:
        return "/".join(names)
    for segment in reversed(segments):
        if not segment.isdigit():
            return segment
    return host or url


_JOB_FIELDS = ("name", "url", "result", "duration_s", "voting", "detail")
if tuple(f.name for f in fields(JobResult)) != _JOB_FIELDS:  # pragma: no cover - guards _new_job
    raise RuntimeError("JobResult fields changed: update _new_job")
_JOB_SETTERS = tuple(JobResult.__dict__[name].__set__ for name in _JOB_FIELDS)
_SET_NAME, _SET_URL, _SET_RESULT, _SET_DURATION, _SET_VOTING, _SET_DETAIL = _JOB_SETTERS


def _new_job(
    name: str, url: str | None, result: str, duration_s: int | None, voting: bool, detail: str | None
) -> JobResult:
    """``JobResult(...)`` at a third of the cost: a frozen dataclass's ``__init__`` goes through
    ``object.__setattr__`` per field, the slot descriptors are much cheaper. Same object."""
    job: JobResult = object.__new__(JobResult)
    _SET_NAME(job, name)
    _SET_URL(job, url)
    _SET_RESULT(job, result)
    _SET_DURATION(job, duration_s)
    _SET_VOTING(job, voting)
    _SET_DETAIL(job, detail)
    return job


_RestInfo = tuple[int | None, bool, str | None]
_NO_REST: _RestInfo = (None, True, None)
_HTTP = ("http://", "https://")
_REST_CACHE: dict[str, _RestInfo] = {}
_REST_CACHE_LIMIT = 8192
_NON_VOTING = "(non-voting)"


def _read_rest(rest: str) -> _RestInfo:
    """(duration_s, voting, detail) from what follows the result word: "[<detail> ][in 1h 02m 03s][ (non-voting)]"."""
    voting = True
    rest = rest.strip()
    if rest[-12:].lower() == _NON_VOTING:
        voting = False
        rest = rest[:-12].rstrip()
    if not rest:
        return None, voting, None
    match = _ZUUL_DURATION_RE.fullmatch(rest)
    if match is not None:
        hours, minutes, seconds = match.groups()
        return int(hours or 0) * 3600 + int(minutes or 0) * 60 + int(seconds), voting, None
    # "<detail> in 3m 12s", or a duration in another shape
    before, sep, after = rest.rpartition(" in ")
    if not sep and rest.startswith("in "):
        before, sep, after = "", "in ", rest[3:]
    if sep:
        duration = parse_duration(after)
        if duration is not None:
            return duration, voting, before.strip() or None
    return None, voting, rest


def _rest_info(rest: str) -> _RestInfo:
    """Cached :func:`_read_rest`: "in 3m 12s"-style tails repeat across comments."""
    info = _REST_CACHE.get(rest)
    if info is None:
        info = _read_rest(rest)
        if len(_REST_CACHE) >= _REST_CACHE_LIMIT:
            _REST_CACHE.clear()
        _REST_CACHE[rest] = info
    return info


def _is_result_word(word: str) -> bool:
    """An upper-case word such as SUCCESS or NODE_FAILURE (the shape; not necessarily a known one)."""
    return word.isupper() and word.isascii() and word.replace("_", "").isalpha()


def _result_of(word: str) -> str | None:
    """The Result for a job line's result word; an unknown upper-case word is kept as it is."""
    known = _JOB_WORDS.get(word)
    if known is not None:
        return known
    return word if _is_result_word(word) else None


def _trigger_job(line: str) -> JobResult | None:
    """``<url> : <RESULT>[ (non-voting)]`` from Jenkins gerrit-trigger."""
    url, sep, tail = line.partition(" : ")
    if not sep or " " in url or not url.startswith(_HTTP):
        return None
    word, _, rest = tail.partition(" ")
    result = _result_of(word)
    if result is None:
        return None
    duration, voting, detail = _rest_info(rest) if rest else _NO_REST
    return _new_job(_job_name_from_url(url), url, result, duration, voting, detail)


def _forge_job(line: str) -> JobResult | None:
    """``✅ <job> : <RESULT>`` (GerritForge); the URL follows on the next line."""
    match = _FORGE_JOB_RE.match(line)
    if match is None:
        return None
    result = _result_of(match.group("result"))
    if result is None:
        return None
    rest = match.group("rest")
    duration, voting, detail = _rest_info(rest) if rest else _NO_REST
    return _new_job(match.group("name"), None, result, duration, voting, detail)


def _scan_jobs(body: str) -> tuple[list[JobResult], str]:
    """Job lines in the three built-in formats, in comment order, and the first one's format."""
    jobs: list[JobResult] = []
    fmt = ""
    forge_pending = False  # the last job is a GerritForge line still waiting for its "(url)" line
    job: JobResult | None
    # The Zuul branch is the hot path (≈10 lines per comment): everything it needs is a local and
    # the JobResult is built inline the way _new_job does.
    job_words, rest_cache, no_rest, http, new = _JOB_WORDS, _REST_CACHE, _NO_REST, _HTTP, object.__new__
    set_name, set_url, set_result, set_duration, set_voting, set_detail = _JOB_SETTERS
    for line in body.split("\n"):
        if line.startswith("- "):
            forge_pending = False
            head, sep, tail = line.partition(" : ")
            if not sep:
                continue
            name, _, url = head[2:].partition(" ")
            word, _, rest = tail.partition(" ")
            result = job_words.get(word) or (word if _is_result_word(word) else None)
            if result is None or not name or " " in url:
                continue
            info = rest_cache.get(rest) if rest else no_rest
            duration, voting, detail = info if info is not None else _rest_info(rest)
            job = new(JobResult)
            set_name(job, name)
            set_url(job, url if url.startswith(http) else None)  # Zuul repeats the name when there is no URL
            set_result(job, result)
            set_duration(job, duration)
            set_voting(job, voting)
            set_detail(job, detail)
            jobs.append(job)
            fmt = fmt or "Zuul job lines"
        elif line.startswith("http"):
            forge_pending = False
            if (job := _trigger_job(line)) is not None:
                jobs.append(job)
                fmt = fmt or "gerrit-trigger job lines"
        elif line[:1] > "\u2000":
            forge_pending = (job := _forge_job(line)) is not None
            if job is not None:
                jobs.append(job)
                fmt = fmt or "GerritForge check lines"
        elif forge_pending:
            forge_pending = False
            match = _FORGE_URL_RE.fullmatch(line)
            if match is not None:
                last = jobs[-1]
                jobs[-1] = _new_job(
                    last.name, match.group("url"), last.result, last.duration_s, last.voting, last.detail
                )
    return jobs, fmt


# --------------------------------------------------------------------------------------------
# Per-CI overrides


@dataclass(frozen=True, slots=True)
class _CIRule:
    index: int
    config: CISystemConfig
    result_re: re.Pattern[str] | None
    job_re: re.Pattern[str] | None
    start_re: re.Pattern[str] | None


def _compile(config: CISystemConfig, attr: str, pattern: str | None, groups: tuple[str, ...]) -> re.Pattern[str] | None:
    if pattern is None:
        return None
    try:
        compiled = re.compile(pattern, re.MULTILINE)
    except re.error as exc:
        raise ConfigError(f"CI {config.account!r}: {attr} {pattern!r} is not a valid regex: {exc}") from None
    missing = [name for name in groups if name not in compiled.groupindex]
    if missing:
        needed = ", ".join(f"(?P<{name}>...)" for name in missing)
        raise ConfigError(f"CI {config.account!r}: {attr} {pattern!r} lacks the named group {needed}")
    return compiled


def _rule_for(index: int, config: CISystemConfig) -> _CIRule:
    return _CIRule(
        index=index,
        config=config,
        result_re=_compile(config, "result_regex", config.result_regex, ("result",)),
        job_re=_compile(config, "job_regex", config.job_regex, ("name", "result")),
        start_re=_compile(config, "start_regex", config.start_regex, ()),
    )


def _group(match: re.Match[str], name: str) -> str | None:
    """A named group's text when the pattern has that group and it matched something."""
    if name not in match.re.groupindex:
        return None
    return match.group(name) or None


def _custom_jobs(pattern: re.Pattern[str], body: str) -> list[JobResult]:
    jobs: list[JobResult] = []
    for match in pattern.finditer(body):
        duration = _group(match, "duration")
        voting = _group(match, "voting")
        jobs.append(
            JobResult(
                name=match.group("name"),
                url=_group(match, "url"),
                result=_normalize_result(match.group("result")),
                duration_s=parse_duration(duration) if duration is not None else None,
                voting=voting is None or voting.strip().lower() == "voting",
            )
        )
    return jobs


# --------------------------------------------------------------------------------------------
# The parser


@dataclass(slots=True)
class _Report:
    """What a comment body says, before deciding whether its author is a CI."""

    kind: CommentKind = CommentKind.OTHER
    header_result: str | None = None  # see _overall_result
    header_text: str = ""
    fmt: str = ""  # which format was recognised, for `why`
    strong: bool = False  # enough to call an unknown author a CI
    pipeline: str | None = None  # from the header
    start_pipeline: str | None = None  # from a start marker
    jobs: tuple[JobResult, ...] = ()
    merge_failed: bool = False


def _might_be_report(message: str) -> bool:
    """Cheap pre-check for unknown authors: could this message hold any CI marker at all?"""
    return " : " in message or "Build " in message or "Starting " in message or "Merge Failed" in message


def _find_header(first_line: str, body: str, rule: _CIRule | None, report: _Report) -> bool:
    """Fill report's header fields from the CI's result_regex or a built-in header line."""
    if rule is not None and rule.result_re is not None:
        match = rule.result_re.search(body)
        if match is not None:
            report.header_result = _normalize_result(match.group("result"))
            report.header_text = match.group().strip()
            report.fmt = "result_regex"
            report.pipeline = _group(match, "pipeline")
            report.strong = True
            return True
    if not first_line.lstrip(" \t").startswith("Build "):
        return False
    match = _ZUUL_HEADER_RE.match(first_line)
    if match is not None:
        succeeded = match.group("word").lower() == "succeeded"
        report.header_result = Result.SUCCESS.value if succeeded else Result.FAILURE.value
        report.pipeline = match.group("pipeline")
        report.fmt = "Zuul header"
        starts: tuple[str, ...] = ("For ", "http")
    else:
        match = _TRIGGER_HEADER_RE.match(first_line)
        if match is None:
            return False
        report.header_result = _TRIGGER_WORDS[match.group("word")]
        report.fmt = "gerrit-trigger header"
        starts = ("http",)
    report.header_text = first_line[: match.start("tail")].strip()
    tail = match.group("tail").strip()
    # "Build failed.  For information on how to proceed..." is a report; "Build failed again :(" may be prose
    report.strong = not tail or tail.startswith(starts)
    return True


def _find_start(first_line: str, body: str, rule: _CIRule | None, report: _Report) -> bool:
    if rule is not None and rule.start_re is not None:
        match = rule.start_re.search(body)
        if match is not None:
            report.start_pipeline = _group(match, "pipeline")
            report.fmt = "start_regex"
            report.strong = True
            return True
    match = _START_RE.match(first_line)
    if match is not None:
        report.start_pipeline = match.group("pipeline")
        report.fmt = f"start marker '{first_line.strip()}'"
        report.strong = True
        return True
    match = _BUILD_STARTED_RE.match(first_line)
    if match is not None:
        tail = match.group("tail").strip()
        report.fmt = "gerrit-trigger 'Build Started'"
        report.strong = not tail or tail.startswith("http")
        return True
    return False


def _analyze(body: str, rule: _CIRule | None) -> _Report:
    report = _Report()
    newline = body.find("\n")
    first_line = body if newline < 0 else body[:newline]
    if _MERGE_FAILED_RE.match(first_line):
        report.kind = CommentKind.RESULT
        report.merge_failed = True
        report.header_text = "Merge Failed."
        report.fmt = "Zuul"
        report.strong = True
        return report
    has_header = _find_header(first_line, body, rule, report)
    if not has_header and _find_start(first_line, body, rule, report):
        report.kind = CommentKind.START
        return report
    jobs: list[JobResult] = []
    if rule is not None and rule.job_re is not None:
        jobs = _custom_jobs(rule.job_re, body)
        if jobs:
            report.strong = True
            report.fmt = report.fmt or "job_regex"
    if not jobs and " : " in body:
        jobs, fmt = _scan_jobs(body)
        if jobs:
            report.fmt = report.fmt or fmt
            report.strong = report.strong or any(job.result in _KNOWN_RESULTS for job in jobs)
    report.jobs = tuple(jobs)
    if has_header or jobs:
        report.kind = CommentKind.RESULT
    return report


def _header_verified(ps_header: str) -> int | None:
    """The Verified (or VRIF) vote in a "Patch Set N:" header; a removal ("-Verified") is 0."""
    for token in ps_header.split():
        if token.startswith(("Verified", "VRIF")):
            value = token[8:] if token[0:8] == "Verified" else token[4:]
            if value[:1] in ("+", "-") and value[1:].isdigit():
                return int(value)
        elif token in ("-Verified", "-VRIF"):
            return 0
    return None


def _vote(ps_header: str | None, comment: ObservedComment) -> int | None:
    """Verified/VRIF from the "Patch Set N:" header, else the label this comment changed, else a
    non-zero current vote from the stream's approvals."""
    if ps_header is not None and ("Verified" in ps_header or "VRIF" in ps_header):
        value = _header_verified(ps_header)
        if value is not None:
            return value
    approvals = comment.approvals
    if approvals:
        for label in ("Verified", "VRIF"):
            if label in approvals and label in comment.changed_labels:
                return approvals[label]
        for label in ("Verified", "VRIF"):
            current = approvals.get(label)
            if current:
                return current
    return None


_NOT_CI_OFF = ParsedComment(
    CommentKind.OTHER, False, None, None, None, None, (), "not a known CI account (auto-detection is off)"
)
_NOT_CI_TEXT = ParsedComment(
    CommentKind.OTHER, False, None, None, None, None, (), "not a known CI account and no CI report in the text"
)
_Identity = tuple[_CIRule | None, str | None]


class CommentParser:
    """Decides whether a comment's author is a CI and reads what the comment reported.

    Who is a CI, in order: an account listed in the config (``CISystemConfig.account`` equal to
    the author's key, username, email or name; ``server`` None or this server), a member of the
    server's CI group (:meth:`set_group_members`), or, with ``auto_detect``, an author whose comment
    text is itself a CI report (result header, job line, start marker). The config/group decision
    is cached per (server, author); auto-detection is decided per comment, never remembered.
    Non-CI comments come back as kind OTHER with is_ci False and no result, pipeline, vote or jobs.
    """

    def __init__(self, ci_configs: Sequence[CISystemConfig] = (), *, auto_detect: bool = True) -> None:
        self._auto_detect = auto_detect
        self._rules: dict[str, list[_CIRule]] = {}
        for index, config in enumerate(ci_configs):
            self._rules.setdefault(config.account, []).append(_rule_for(index, config))
        self._groups: dict[str, frozenset[str]] = {}
        self._identities: dict[tuple[str, AccountRef], _Identity] = {}

    def set_group_members(self, server: str, account_keys: Iterable[str]) -> None:
        """Replace the CI accounts known from ``server``'s Gerrit CI group (AccountRef keys)."""
        self._groups[server] = frozenset(account_keys)
        self._identities.clear()

    def _lookup(self, server: str, author: AccountRef) -> _Identity:
        names = [author.key]
        names.extend(name for name in (author.username, author.email, author.name) if name and name not in names)
        best: _CIRule | None = None
        for name in names:
            for rule in self._rules.get(name, ()):
                if rule.config.server not in (None, server):
                    continue
                # a server-specific entry beats a global one; otherwise the first listed wins
                if best is None or (rule.config.server is not None, -rule.index) > (
                    best.config.server is not None,
                    -best.index,
                ):
                    best = rule
        if best is not None:
            return best, "listed in config"
        members = self._groups.get(server)
        if members and any(name in members for name in names):
            return None, "member of CI group"
        return None, None

    def parse(self, comment: ObservedComment) -> ParsedComment:
        cache_key = (comment.server, comment.author)
        identity = self._identities.get(cache_key)
        if identity is None:
            identity = self._lookup(comment.server, comment.author)
            if len(self._identities) >= _CACHE_LIMIT:
                self._identities.clear()
            self._identities[cache_key] = identity
        rule, who = identity
        message = comment.message
        if who is None:
            if not self._auto_detect:
                return _NOT_CI_OFF
            if not _might_be_report(message):
                return _NOT_CI_TEXT

        if "\r" in message:
            message = message.replace("\r\n", "\n")
        body, ps_header = strip_patchset_header(message)
        if body.startswith("("):  # "(2 comments)" when the CI also left inline comments
            match = _COMMENT_COUNT_RE.match(body)
            if match is not None:
                body = body[match.end() :]
        report = _analyze(body, rule)
        if who is None:
            if not report.strong:
                return _NOT_CI_TEXT
            who = "auto-detected (not in config or CI group)"

        pipeline = report.pipeline
        tag = comment.tag
        if pipeline is None and tag is not None and tag.startswith(_TAG_PREFIX):
            pipeline = tag[len(_TAG_PREFIX) :] or None
        if pipeline is None:
            pipeline = report.start_pipeline
        vote = _vote(ps_header, comment)
        ci = comment.author.key

        if report.kind is CommentKind.RESULT:
            jobs = report.jobs
            if report.merge_failed:
                result, reason = Result.MERGE_CONFLICT.value, "Zuul could not merge the change"
            else:
                result, reason = _overall_result(report.header_result, jobs)
            seen = f"{report.fmt} '{report.header_text}'" if report.header_text else report.fmt
            count = f"{len(jobs)} job line" if len(jobs) == 1 else f"{len(jobs)} job lines"
            why = f"{who}; {seen}; {count}; overall {result} because {reason}"
            return ParsedComment(CommentKind.RESULT, True, ci, result, pipeline, vote, jobs, why)
        if report.kind is CommentKind.START:
            return ParsedComment(CommentKind.START, True, ci, None, pipeline, vote, (), f"{who}; {report.fmt}")
        return ParsedComment(CommentKind.OTHER, True, ci, None, pipeline, vote, (), f"{who}; no report in the text")
