"""Reading a human's recheck comment: is it one, and which CI does it name?

What people write to get a CI to run again on a patch set (the comment body, after Gerrit's
``Patch Set N:`` header line, case-insensitive, on its first non-empty line):

* ``recheck`` alone, or OpenStack's ``recheck <reason>`` (``recheck bug 1234567``, ``recheck -
  timeout in tempest``): a *plain* recheck. Zuul's check pipeline triggers on
  ``(?i)^(Patch Set [0-9]+:)?( [\\w\\\\+-]*)*(\\n\\n)?\\s*recheck``, so a plain one re-runs every CI
  that listens; which of them it was aimed at (those whose latest result on the patch set before
  the comment was a failure of their own, not the change's) needs the runs, so the store decides
  that (:mod:`cidash.store.rechecks`), not this module.
* A CI-specific form (third-party CIs ask for one in their report footer, "To recheck only this
  CI, leave a comment with 'recheck-acme'"): ``recheck-<name>``, ``<name>: recheck`` and
  ``recheck <name>``, where ``<name>`` is the CI's account or that without a ``-ci``/``_ci``
  suffix. ``recheck-<name>`` and ``<name>: recheck`` name a CI whatever the name;
  ``recheck <word>`` names one only when the word is a known CI's name (else it is a reason).
* ``recheck_patterns`` of a ``[[ci]]`` entry: regexes searched in the whole body that, when one
  matches, aim the comment at that CI (tried before the forms above, which stay).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from cidash.config import CISystemConfig
from cidash.errors import ConfigError

_WORD = r"[A-Za-z0-9][\w.-]*"
_DASHED = re.compile(rf"recheck-({_WORD})\b", re.IGNORECASE)
_COLON = re.compile(rf"({_WORD})\s*:\s*recheck\b", re.IGNORECASE)
_PLAIN = re.compile(r"recheck(?:\s+(\S+))?", re.IGNORECASE)
_CI_SUFFIXES = ("-ci", "_ci", ".ci", " ci")


@dataclass(frozen=True, slots=True)
class Recheck:
    """A human asking CIs to run again; `aimed_at` is the CI named (its account key when it is a
    known CI, else the name as written, lower-cased), None for a plain recheck."""

    aimed_at: str | None


PLAIN = Recheck(None)


def names_of(ci: str) -> frozenset[str]:
    """The names a recheck may call a CI by: its account key and that without a CI suffix."""
    key = ci.lower()
    names = {key}
    for suffix in _CI_SUFFIXES:
        if key.endswith(suffix) and len(key) > len(suffix):
            names.add(key[: -len(suffix)])
    return frozenset(names)


def compile_recheck_patterns(config: CISystemConfig) -> tuple[re.Pattern[str], ...]:
    """The CI's `recheck_patterns`, compiled; a bad one is a ConfigError naming the CI (the
    settings refuse one at load already; this covers configs built in code)."""
    try:
        return tuple(re.compile(pattern, re.MULTILINE) for pattern in config.recheck_patterns)
    except re.error as exc:
        raise ConfigError(f"CI {config.account!r}: recheck_patterns: not a valid regex: {exc}") from None


def _first_line(body: str) -> str:
    for line in body.split("\n", 8):
        stripped = line.strip()
        if stripped:
            return stripped
    return ""


class RecheckReader:
    """Reads a human comment's body as a recheck (see the module docstring)."""

    def __init__(self, ci_configs: Sequence[CISystemConfig] = ()) -> None:
        self._patterns: list[tuple[str, tuple[re.Pattern[str], ...]]] = []
        for config in ci_configs:
            patterns = compile_recheck_patterns(config)
            if patterns:
                self._patterns.append((config.account, patterns))
        self._listed = frozenset(config.account for config in ci_configs)
        self._groups: dict[str, frozenset[str]] = {}
        self._by_name: dict[str, str] = {}
        self._index()

    def set_group_members(self, server: str, account_keys: Iterable[str]) -> None:
        """The CI accounts of `server`'s CI group are known CIs too."""
        self._groups[server] = frozenset(account_keys)
        self._index()

    def _index(self) -> None:
        by_name: dict[str, str] = {}
        for ci in sorted(self._listed.union(*self._groups.values())):
            for name in names_of(ci):
                by_name.setdefault(name, ci)
        self._by_name = by_name

    def read(self, body: str) -> Recheck | None:
        """The recheck in a comment body (header already stripped), or None when it is not one."""
        for ci, patterns in self._patterns:  # an operator's form need not say "recheck"
            if any(pattern.search(body) for pattern in patterns):
                return Recheck(ci)
        if "echeck" not in body and "ECHECK" not in body:
            return None
        line = _first_line(body)
        match = _DASHED.match(line)
        if match is not None:
            return Recheck(self._resolve(match.group(1)))
        match = _COLON.match(line)
        if match is not None:
            return Recheck(self._resolve(match.group(1)))
        match = _PLAIN.match(line)
        if match is None or (len(line) > 7 and line[7].isalnum()):
            return None  # "rechecking", or not a recheck at all
        word = match.group(1)
        if word is not None:
            named = self._by_name.get(word.lower().rstrip(".,;:!"))
            if named is not None:
                return Recheck(named)
        return PLAIN

    def _resolve(self, name: str) -> str:
        lowered = name.lower()
        return self._by_name.get(lowered, lowered)
