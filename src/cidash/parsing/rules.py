"""Per-CI overrides from a ``[[ci]]`` entry: ``result_regex``, ``job_regex``, ``start_regex`` and
``success_pattern``/``failure_pattern`` pairs, compiled once (a bad pattern is a ConfigError)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from cidash.config import CISystemConfig
from cidash.errors import ConfigError
from cidash.parsing.model import JobResult
from cidash.parsing.words import normalize_result, parse_duration


@dataclass(frozen=True, slots=True)
class CIRule:
    index: int
    config: CISystemConfig
    result_re: re.Pattern[str] | None
    job_re: re.Pattern[str] | None
    start_re: re.Pattern[str] | None
    # (failure pattern, success pattern) per configured pair, in config order
    pairs: tuple[tuple[re.Pattern[str] | None, re.Pattern[str] | None], ...] = ()


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


def rule_for(index: int, config: CISystemConfig) -> CIRule:
    return CIRule(
        index=index,
        config=config,
        result_re=_compile(config, "result_regex", config.result_regex, ("result",)),
        job_re=_compile(config, "job_regex", config.job_regex, ("name", "result")),
        start_re=_compile(config, "start_regex", config.start_regex, ()),
        pairs=tuple(
            (
                _compile(config, "failure_pattern", pair.failure_pattern, ()),
                _compile(config, "success_pattern", pair.success_pattern, ()),
            )
            for pair in config.pattern_pairs()
        ),
    )


def named_group(match: re.Match[str], name: str) -> str | None:
    """A named group's text when the pattern has that group and it matched something."""
    if name not in match.re.groupindex:
        return None
    return match.group(name) or None


def custom_jobs(pattern: re.Pattern[str], body: str) -> list[JobResult]:
    jobs: list[JobResult] = []
    for match in pattern.finditer(body):
        duration = named_group(match, "duration")
        voting = named_group(match, "voting")
        jobs.append(
            JobResult(
                name=match.group("name"),
                url=named_group(match, "url"),
                result=normalize_result(match.group("result")),
                duration_s=parse_duration(duration) if duration is not None else None,
                voting=voting is None or voting.strip().lower() == "voting",
            )
        )
    return jobs
