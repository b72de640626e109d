"""What a comment body says, before anyone decides whether its author is a CI: a header (the
CI's own patterns first, then Zuul's, gerrit-trigger's, a one-line report), a start marker,
job lines; headers are matched against the body's first line."""

from __future__ import annotations

import re
from dataclasses import dataclass

from cidash.domain.results import Result
from cidash.parsing.jobs import WIDE_FMT, scan_jobs, url_jobs
from cidash.parsing.model import CommentKind, JobResult
from cidash.parsing.rules import CIRule, custom_jobs, named_group
from cidash.parsing.words import KNOWN_RESULTS, WIDE_WORDS, normalize_result

_ZUUL_HEADER_RE = re.compile(
    r"[ \t]*(?i:build) (?P<word>(?i:succeeded|failed))(?: \((?P<pipeline>[^()\s]+) pipeline\))?\.(?P<tail>[^\n]*)"
)
_TRIGGER_HEADER_RE = re.compile(r"[ \t]*(?i:build) (?P<word>(?i:successful|failed|unstable|aborted))\b(?P<tail>[^\n]*)")
_TRIGGER_WORDS = {
    "successful": Result.SUCCESS.value,
    "failed": Result.FAILURE.value,
    "unstable": Result.UNSTABLE.value,
    "aborted": Result.ABORTED.value,
}
# A one-line report of the wider world: a result word on the first line next to a word saying
# what ran ("Tests passed.", "Acme CI: FAILURE", "Result: build failed, see <url>").
_WIDE_HEADER_RE = re.compile(
    r"(?i)[ \t]*[^\n]{0,60}?\b(?:build|builds|tests?|testing|checks?|ci|jobs?|runs?|results?|verification)\b"
    r"[^\n]{0,40}?\b(?P<word>succeeded|successful|success|passed|pass|ok|failed|failure|failing|fail|unstable"
    r"|aborted|error|errored|timed out)\b(?P<tail>[^\n]*)"
)
_MERGE_FAILED_RE = re.compile(r"[ \t]*Merge Failed\.")
_START_RE = re.compile(r"[ \t]*Starting (?P<pipeline>\S+) jobs\.")
_BUILD_STARTED_RE = re.compile(r"[ \t]*Build Started\b(?P<tail>[^\n]*)")


@dataclass(slots=True)
class Report:
    """What a comment body says, before deciding whether its author is a CI."""

    kind: CommentKind = CommentKind.OTHER
    header_result: str | None = None  # see overall_result
    header_text: str = ""
    fmt: str = ""  # which format was recognised, for `why`
    strong: bool = False  # enough to call an unknown author a CI
    pipeline: str | None = None  # from the header
    start_pipeline: str | None = None  # from a start marker
    jobs: tuple[JobResult, ...] = ()
    merge_failed: bool = False
    url_job: bool = False  # without job lines, a URL in the text becomes the run's one job (log link)


def might_be_report(message: str) -> bool:
    """Cheap pre-check for unknown authors: could this message hold any CI marker at all?"""
    return " : " in message or "Build " in message or "Starting " in message or "Merge Failed" in message


def _find_header(first_line: str, body: str, rule: CIRule | None, report: Report) -> bool:
    """Fill report's header fields from the CI's result_regex or a built-in header line."""
    if rule is not None and rule.result_re is not None:
        match = rule.result_re.search(body)
        if match is not None:
            report.header_result = normalize_result(match.group("result"))
            report.header_text = match.group().strip()
            report.fmt = "result_regex"
            report.pipeline = named_group(match, "pipeline")
            report.strong = True
            return True
    if rule is not None and _find_pattern_pair(body, rule, report):
        return True
    if not first_line.lstrip(" \t")[:6].lower() == "build ":
        return _find_wide_header(first_line, report)
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
            return _find_wide_header(first_line, report)
        report.header_result = _TRIGGER_WORDS[match.group("word").lower()]
        report.fmt = "gerrit-trigger header"
        starts = ("http",)
    report.header_text = first_line[: match.start("tail")].strip()
    tail = match.group("tail").strip()
    # "Build failed.  For information on how to proceed..." is a report; "Build failed again :(" may be prose
    report.strong = not tail or tail.startswith(starts)
    return True


def _find_pattern_pair(body: str, rule: CIRule, report: Report) -> bool:
    """The CI's success_pattern / failure_pattern pairs: the first pair with a match decides
    (its failure pattern is tried first)."""
    for number, (failure_re, success_re) in enumerate(rule.pairs, start=1):
        for pattern, result, name in (
            (failure_re, Result.FAILURE.value, "failure_pattern"),
            (success_re, Result.SUCCESS.value, "success_pattern"),
        ):
            match = pattern.search(body) if pattern is not None else None
            if match is not None:
                report.header_result = result
                report.header_text = match.group().strip()
                report.fmt = name if len(rule.pairs) == 1 else f"{name} of pair {number}"
                report.strong = True
                report.url_job = True
                return True
    return False


def _find_wide_header(first_line: str, report: Report) -> bool:
    """A one-line report of the wider world on the first line ("Tests passed.", "Acme CI:
    FAILURE"). Never enough on its own to call an unknown author a CI."""
    match = _WIDE_HEADER_RE.match(first_line)
    if match is None:
        return False
    report.header_result = WIDE_WORDS.get(match.group("word").upper(), Result.FAILURE.value)
    report.header_text = first_line[: match.end("word")].strip()
    report.fmt = "one-line report"
    report.url_job = True
    return True


def _find_start(first_line: str, body: str, rule: CIRule | None, report: Report) -> bool:
    if rule is not None and rule.start_re is not None:
        match = rule.start_re.search(body)
        if match is not None:
            report.start_pipeline = named_group(match, "pipeline")
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


def analyze(body: str, rule: CIRule | None) -> Report:
    report = Report()
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
        jobs = custom_jobs(rule.job_re, body)
        if jobs:
            report.strong = True
            report.fmt = report.fmt or "job_regex"
    if not jobs and ":" in body:
        jobs, fmt = scan_jobs(body)
        if jobs:
            report.fmt = report.fmt or fmt
            exact = [job for job in jobs if job.result in KNOWN_RESULTS]
            report.strong = report.strong or (bool(exact) and fmt != WIDE_FMT)
    if not jobs and report.url_job and report.header_result is not None:
        jobs = url_jobs(body, report.header_result)
    report.jobs = tuple(jobs)
    if has_header or jobs:
        report.kind = CommentKind.RESULT
    return report
