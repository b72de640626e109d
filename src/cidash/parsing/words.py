"""What the words of a report mean: result words (any case, aliases folded), durations, and the
one rule that turns job results into the report's overall result (the Gerrit simulator's
`sim.ci_texts` follows the same rule)."""

from __future__ import annotations

import re
from collections.abc import Sequence

from cidash.domain.results import INFRA_ERRORS, TEST_FAILURES, Result
from cidash.parsing.model import JobResult

KNOWN_RESULTS = frozenset(r.value for r in Result)
# Result words on built-in job lines -> canonical Result value (other upper-case words stay raw).
JOB_WORDS: dict[str, str] = {r.value: r.value for r in Result}
JOB_WORDS.update(
    {
        "MERGER_FAILURE": Result.MERGE_CONFLICT.value,
        "FAILED": Result.FAILURE.value,
        "PASSED": Result.SUCCESS.value,
        "SUCCEEDED": Result.SUCCESS.value,
        "CANCELED": Result.ABORTED.value,
        "CANCELLED": Result.ABORTED.value,
        "NOT_BUILT": Result.SKIPPED.value,
    }
)
# Also the words a header or a custom regex may use ("Build succeeded", "passed", ...).
_RESULT_WORDS: dict[str, str] = dict(JOB_WORDS)
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
# Result words the wider world writes on job lines and headers, in any case (upper-cased here).
WIDE_WORDS: dict[str, str] = dict(_RESULT_WORDS)
WIDE_WORDS.update(
    {
        "SUCCESSFUL": Result.SUCCESS.value,
        "FAILING": Result.FAILURE.value,
        "FAILURES": Result.FAILURE.value,
        "ERRORED": Result.ERROR.value,
        "TIMED OUT": Result.TIMED_OUT.value,
        "TIMED-OUT": Result.TIMED_OUT.value,
        "CANCELED": Result.ABORTED.value,
        "SKIP": Result.SKIPPED.value,
    }
)
PASSING = frozenset({Result.SUCCESS.value, Result.SKIPPED.value})


def normalize_result(word: str) -> str:
    """Canonical Result value for a known word (any case, aliases folded), else the raw word upper-cased."""
    upper = word.strip().upper()
    known = _RESULT_WORDS.get(upper)
    if known is not None:
        return known
    return upper.replace(" ", "_")


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


def overall_result(header_result: str | None, jobs: Sequence[JobResult]) -> tuple[str, str]:
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
        if job.result in TEST_FAILURES:
            return Result.FAILURE.value, f"{what} {job.name} ended {job.result}"
        if first_infra is None and job.result in INFRA_ERRORS:
            first_infra = job
    if first_infra is not None:
        return first_infra.result, f"{what} {first_infra.name} ended {first_infra.result} (infra)"
    if header_result is not None:
        if considered:
            return header_result, f"the header says so although no {what} failed"
        return header_result, "the header says so and there are no job lines"
    if considered and all(job.result in PASSING for job in considered):
        return Result.SUCCESS.value, f"every {what} passed"
    if considered:
        return Result.FAILURE.value, f"{what}s ended with unknown results"
    return Result.FAILURE.value, "there is neither a header nor a job line"
