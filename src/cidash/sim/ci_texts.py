"""The text of CI comments, exactly as the real CI systems write them (and as Gerrit wraps them).

The overall-result rule here is shared with `cidash.parsing`: pick every job's result first,
then derive the overall result, then write the header that agrees with it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from cidash.sim.personas import Style

SUCCESS = "SUCCESS"
MERGE_CONFLICT = "MERGE_CONFLICT"
TEST_FAILURES = frozenset({"FAILURE", "POST_FAILURE", "TIMED_OUT", "UNSTABLE"})
INFRA_ERRORS = frozenset(
    {"ERROR", "NODE_FAILURE", "RETRY_LIMIT", "MERGE_CONFLICT", "CONFIG_ERROR", "DISK_FULL", "ABORTED", "LOST"}
)

ZUUL2_FAILURE_HEADER = (
    "Build failed.  For information on how to proceed, see "
    "http://docs.openstack.org/infra/manual/developers.html#automated-testing"
)
MERGE_FAILED_BODY = (
    "Merge Failed.\n\nThis change or one of its cross-repo dependencies was unable to be automatically merged "
    "with the current state of its repository. Please rebase the change and upload a new patchset."
)
HOSTILE_DETAIL = "<script>alert(1)</script>"


class Job(NamedTuple):
    name: str
    url: str
    result: str
    duration_s: int | None
    voting: bool
    detail: str | None = None  # Zuul's error detail, written after the result


def overall_result(jobs: Sequence[Job]) -> str:
    """FAILURE if a counted job failed its tests, else the first counted infra error, else SUCCESS.

    Counted jobs are the voting ones, or all of them when none votes. (Merge Failed comments have
    no jobs and are MERGE_CONFLICT; the caller handles them.)
    """
    counted = [job for job in jobs if job.voting] or jobs
    first_infra = None
    for job in counted:
        result = job.result
        if result in TEST_FAILURES:
            return "FAILURE"
        if first_infra is None and result in INFRA_ERRORS:
            first_infra = result
    return first_infra or SUCCESS


_DURATIONS: dict[int, str] = {}


def zuul_duration(seconds: int) -> str:
    """Zuul's elapsed-time format: `45s`, `3m 02s`, `1h 02m 03s`."""
    found = _DURATIONS.get(seconds)
    if found is None:
        hours, rest = divmod(seconds, 3600)
        minutes, secs = divmod(rest, 60)
        if hours:
            found = f"{hours}h {minutes:02d}m {secs:02d}s"
        elif minutes:
            found = f"{minutes}m {secs:02d}s"
        else:
            found = f"{secs}s"
        if len(_DURATIONS) < 50000:
            _DURATIONS[seconds] = found
    return found


def zuul_line(job: Job) -> str:
    """`- job url : RESULT[ detail][ in 3m 02s][ (non-voting)]` (Zuul's `_formatItemReportJobs`)."""
    detail = f" {job.detail}" if job.detail else ""
    elapsed = f" in {zuul_duration(job.duration_s)}" if job.duration_s is not None else ""
    voting = "" if job.voting else " (non-voting)"
    return f"- {job.name} {job.url} : {job.result}{detail}{elapsed}{voting}"


def recheck_footer(short: str, contact: str | None) -> str:
    """What many third-party CIs write after their report: how to recheck them, whom to ask."""
    footer = f"To recheck only this CI, leave a comment with 'recheck-{short}'."
    return f"{footer}\nQuestions? Contact: {contact}" if contact else footer


def one_job_report(style: Style, jobs: Sequence[Job], result: str, url: str) -> tuple[str, Job]:
    """The result a one-line report can say (SUCCESS, FAILURE, ERROR for infra errors; only
    SUCCESS or FAILURE when the vote alone says it) and its one job: the log URL, named as
    gerrit-trigger's jobs are (the segment after /job/)."""
    if result != SUCCESS:
        result = "ERROR" if result in INFRA_ERRORS and style is Style.ONELINE else "FAILURE"
    name = url.split("/job/", 1)[1].split("/", 1)[0]
    return result, Job(name, url, result, None, True)


def result_body(style: Style, jobs: Sequence[Job], result: str, pipeline: str | None, footer: str = "") -> str:
    """The CI's own text (what it sends to Gerrit), header agreeing with `result`. One-line
    styles get their one job (see :func:`one_job_report`); `footer` follows the report."""
    ok = result == SUCCESS
    if style is Style.BULLETS:
        lines = [
            f"* {job.name} {job.url} : {job.result.lower()}"
            f"{'' if job.duration_s is None else f' in {job.duration_s // 60} mins'}"
            f"{'' if job.voting else ' (non-voting)'}"
            for job in jobs
        ]
        return ("Build succeeded." if ok else "Build failed.") + "\n\n" + "\n".join(lines) + "\n\n" + footer
    if style is Style.ONELINE:
        word = "passed" if ok else ("errored" if result == "ERROR" else "failed")
        return f"Tests {word}. Logs: {jobs[0].url}"
    if style is Style.VOTEONLY:
        return f"Thank you for your patch. This run's logs are at {jobs[0].url}\n\n{footer}"
    if style is Style.ZUUL3 or style is Style.ZUUL2:
        if style is Style.ZUUL2:
            header = "Build succeeded." if ok else ZUUL2_FAILURE_HEADER
        elif pipeline:
            header = f"Build succeeded ({pipeline} pipeline)." if ok else f"Build failed ({pipeline} pipeline)."
        else:
            header = "Build succeeded." if ok else "Build failed."
        duration = zuul_duration
        lines = [  # zuul_line(), inlined: this is the simulator's hottest loop
            f"- {job.name} {job.url} : {job.result}{' ' + job.detail if job.detail else ''}"
            f"{'' if job.duration_s is None else ' in ' + duration(job.duration_s)}"
            f"{'' if job.voting else ' (non-voting)'}"
            for job in jobs
        ]
        return header + "\n\n" + "\n".join(lines)
    if style is Style.JENKINS:
        if ok:
            header = "Build Successful "
        elif any(job.result == "UNSTABLE" for job in jobs) and all(
            job.result == "UNSTABLE" for job in jobs if job.result in TEST_FAILURES
        ):
            header = "Build Unstable "
        else:
            header = "Build Failed "
        return header + "\n\n" + "\n\n".join([f"{job.url} : {job.result}" for job in jobs])
    # GerritForge: no header, one mark per job
    return "\n".join(
        [f"{'✅' if job.result == SUCCESS else '❌'} {job.name} : {job.result}\n    ({job.url})" for job in jobs]
    )


def vote_text(label: str, value: int) -> str:
    """One label in Gerrit's `Patch Set N:` header: `Verified+1`, `Code-Review-1`, `-Verified` (removal)."""
    if value == 0:
        return f"-{label}"
    return f"{label}+{value}" if value > 0 else f"{label}{value}"


def gerrit_message(patchset: int, votes: Sequence[tuple[str, int]], body: str, inline_comments: int = 0) -> str:
    """The change message Gerrit stores for a review: header, `(n comments)`, then the text."""
    header = f"Patch Set {patchset}:"
    if votes:
        header += " " + " ".join([vote_text(label, value) for label, value in sorted(votes)])
    if inline_comments:
        header += "\n\n(1 comment)" if inline_comments == 1 else f"\n\n({inline_comments} comments)"
    return f"{header}\n\n{body}" if body else header
