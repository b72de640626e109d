"""Job lines in the built-in formats, one line at a time: Zuul's ``- <job> <url> : <RESULT> ...``,
gerrit-trigger's ``<url> : <RESULT>``, GerritForge's ``✅ <job> : <RESULT>`` with the URL on the
next line, and the wider world's variants (other bullets, any case, the URL elsewhere).

`scan_jobs` is the parser's hot path (about ten lines per comment): it keeps what it needs in
locals and builds `JobResult`s through the slot setters.
"""

from __future__ import annotations

import re
from dataclasses import fields

from cidash.domain.results import Result
from cidash.parsing.model import JobResult
from cidash.parsing.words import JOB_WORDS, WIDE_WORDS, parse_duration

URL_RE = re.compile(r"https?://[^\s<>()\[\]'\"]+")

_FORGE_JOB_RE = re.compile(
    r"[\u2600-\u27bf\U0001f300-\U0001faff]\ufe0f?[ \t]*(?P<name>\S+) : (?P<result>[A-Z][A-Z_]*)(?: (?P<rest>.*))?"
)
_FORGE_URL_RE = re.compile(r"[ \t]+\((?P<url>https?://[^\s)]+)\)\s*")
_ZUUL_DURATION_RE = re.compile(r"in (?:(?:(\d+)h )?(\d+)m )?(\d+)s")


def job_name_from_url(url: str) -> str:
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
if tuple(f.name for f in fields(JobResult)) != _JOB_FIELDS:  # pragma: no cover - guards new_job
    raise RuntimeError("JobResult fields changed: update new_job")
_JOB_SETTERS = tuple(JobResult.__dict__[name].__set__ for name in _JOB_FIELDS)
_SET_NAME, _SET_URL, _SET_RESULT, _SET_DURATION, _SET_VOTING, _SET_DETAIL = _JOB_SETTERS


def new_job(
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
    known = JOB_WORDS.get(word)
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
    return new_job(job_name_from_url(url), url, result, duration, voting, detail)


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
    return new_job(match.group("name"), None, result, duration, voting, detail)


_WIDE_BULLETS = frozenset({"- ", "* ", "+ ", "\u2022 "})
WIDE_FMT = "job lines (wider shapes)"


def _wide_word(word: str, rest: str) -> tuple[str | None, str]:
    """The Result of a job line's result word in any case (and what follows it), else None."""
    bare = word.rstrip(".,;!")
    result = JOB_WORDS.get(bare) or WIDE_WORDS.get(bare.upper())
    if result is None and _is_result_word(bare):
        result = bare
    if result is None and bare.lower() == "timed" and rest[:3].lower() == "out":
        return Result.TIMED_OUT.value, rest[3:]
    return result, rest


def _wide_job(line: str) -> JobResult | None:
    """A job line a little off Zuul's shape: another bullet (``*``, ``+``, ``•``), a result word
    in any case, ``name url: RESULT``, the URL in parentheses or after the result, a duration
    such as ``in 42 mins`` or ``(3m 12s)``. Prose with a colon is not one: the head must be a
    name and at most one URL, and the result word a known one."""
    text = line.strip()
    if text[:2] not in _WIDE_BULLETS:
        return None
    text = text[2:].strip()
    head, sep, tail = text.partition(" : ")
    if not sep:
        head, sep, tail = text.partition(": ")
        if not sep:
            return None
    parts = head.split()
    if not parts or len(parts) > 2:
        return None
    name, url = parts[0], None
    if len(parts) == 2:
        url = parts[1].strip("()")
        if not url.startswith(_HTTP):
            return None
    if name.startswith(_HTTP):  # gerrit-trigger's "<url> : RESULT" behind a bullet
        url, name = name, job_name_from_url(name)
    word, _, rest = tail.strip().partition(" ")
    result, rest = _wide_word(word, rest)
    if result is None:
        return None
    rest = rest.strip()
    found = URL_RE.search(rest)
    if found is not None and url is None:
        url = found.group()
        rest = (rest[: found.start()] + rest[found.end() :]).replace("()", "").strip()
    if rest.startswith("(") and rest.endswith(")") and parse_duration(rest[1:-1]) is not None:
        rest = "in " + rest[1:-1]
    duration, voting, detail = _rest_info(rest) if rest else _NO_REST
    return new_job(name, url, result, duration, voting, detail)


def scan_jobs(body: str) -> tuple[list[JobResult], str]:
    """Job lines in the built-in formats, in comment order, and the first one's format."""
    jobs: list[JobResult] = []
    fmt = ""
    forge_pending = False  # the last job is a GerritForge line still waiting for its "(url)" line
    job: JobResult | None
    # The Zuul branch is the hot path (≈10 lines per comment): everything it needs is a local and
    # the JobResult is built inline the way new_job does.
    job_words, rest_cache, no_rest, http, new = JOB_WORDS, _REST_CACHE, _NO_REST, _HTTP, object.__new__
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
            if result is None or not name or " " in url or (not url and "://" in rest):
                if (job := _wide_job(line)) is not None:
                    jobs.append(job)
                    fmt = fmt or WIDE_FMT
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
        elif line.lstrip()[:2] in _WIDE_BULLETS:
            forge_pending = False
            if (job := _wide_job(line)) is not None:
                jobs.append(job)
                fmt = fmt or WIDE_FMT
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
                jobs[-1] = new_job(
                    last.name, match.group("url"), last.result, last.duration_s, last.voting, last.detail
                )
    return jobs, fmt


def url_jobs(body: str, result: str) -> list[JobResult]:
    """The first URL of a report without job lines as its one job (named as gerrit-trigger's are),
    so the run has its log link."""
    found = URL_RE.search(body)
    if found is None:
        return []
    url = found.group().rstrip(".,;:")
    return [new_job(job_name_from_url(url), url, result, None, True, None)]
