"""Done means (issue 14): the demo's seeded world over a simulated week, judged and walked by the
incident model with the default rules. No incident for a healthy CI; for every broken CI one
incident per rule that fires (it stays broken all week: quiet nights must not resolve it), one for
every silent CI; at most a warning for a flaky one.

The world's result comments go straight into :mod:`cidash.alerts.model` (no database, no real
time): the same judgement and walk the alert engine runs on stored runs, and its silence check
once an hour of simulated time, as the engine's tick does once a minute."""

from __future__ import annotations

import bisect
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from cidash.alerts.engine import DEFAULT_RULES
from cidash.alerts.model import Interval, JudgedRun, judge, severity, silence, silence_over, walk
from cidash.domain.results import result_class
from cidash.sim.personas import Persona
from cidash.sim.world import World

WEEK = timedelta(days=7)
SEED = 1  # the demo's


@dataclass
class Opened:
    ci: str
    rule: str
    severity: str
    started_at: datetime
    notified: bool
    resolved: bool = False


def _world() -> World:
    start = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    world = World(SEED, start=start)
    world.generate_history(WEEK)
    return world


def week_incidents(world: World) -> tuple[list[Opened], dict[str, Persona]]:
    """Every incident the default rules open over the world's history, per CI."""
    end = world.start
    begin = end - WEEK
    at = {}
    by_patchset: dict[tuple[int, int], list[tuple[int, str, str]]] = defaultdict(list)
    for record in world.truth:
        by_patchset[(record.change, record.patchset)].append((record.posted_at, record.author, record.result))
    for results in by_patchset.values():
        results.sort()
    personas = {ci.username: ci.persona for ci in world.third_party}
    reference = world.reference.username
    runs: dict[str, list[JudgedRun]] = defaultdict(list)
    for index, record in enumerate(sorted(world.truth, key=lambda r: (r.posted_at, r.message_id))):
        newest: dict[str, str] = {}
        ref = None
        for _, author, result in by_patchset[(record.change, record.patchset)]:
            if author == reference:
                ref = result
            elif author != record.author:
                newest[author] = result
        verdict = judge(
            result_class(record.result),
            reference=None if record.author == reference else ref,
            others=[result_class(r) for r in newest.values()],
        )
        posted = datetime.fromtimestamp(record.posted_at, UTC)
        at[record.message_id] = posted
        project = world.changes[record.change].project
        runs[record.author].append(
            JudgedRun(index, posted, record.result, project, record.change, record.patchset, verdict)
        )
    opened: list[Opened] = []
    recent = end - timedelta(hours=1)
    for rule in DEFAULT_RULES:
        for ci, judged in runs.items():
            for interval in walk(rule, judged, end):
                opened.append(_opened(ci, rule.name, rule, interval, end, recent))
    opened.extend(_silences(world, runs, begin, end, recent))
    return opened, personas


def _opened(ci: str, name: str, rule: object, interval: Interval, end: datetime, recent: datetime) -> Opened:
    from cidash.config import AlertRuleConfig

    assert isinstance(rule, AlertRuleConfig)
    return Opened(
        ci,
        name,
        severity(rule, interval.fired_at or end, interval.resolved_at or end),
        interval.started_at,
        interval.started_at >= recent,
        interval.resolved_at is not None,
    )


def _silences(
    world: World, runs: dict[str, list[JudgedRun]], begin: datetime, end: datetime, recent: datetime
) -> list[Opened]:
    """The engine's silence check once an hour: its last comment, the first patch set of its
    projects that another CI answered after it."""
    rule = next(r for r in DEFAULT_RULES if r.kind == "silent")
    answered: list[tuple[datetime, datetime, str]] = []  # (answered at, patch set created, project)
    for judged in runs.values():
        for run in judged:
            change = world.changes[run.change]
            created = datetime.fromtimestamp(change.patchsets[run.patchset - 1].created, UTC)
            answered.append((run.posted_at, created, run.project))
    answered.sort()
    out = []
    for ci in world.third_party:
        mine = [run.posted_at for run in runs.get(ci.username, [])]
        projects = set(ci.projects)
        firing: datetime | None = None
        t = begin + timedelta(hours=1)
        while t <= end:
            last = mine[bisect.bisect_right(mine, t) - 1] if mine and mine[0] <= t else None
            if firing is not None:
                if silence_over(rule, firing, last):
                    out[-1].resolved = True
                    firing = None
            elif last is not None:
                upto = bisect.bisect_right(answered, (t, t, "~"))
                waiting = min(
                    (created for when, created, project in answered[:upto] if created > last and project in projects),
                    default=None,
                )
                began = silence(rule, last, waiting, t)
                if began is not None:
                    firing = began
                    out.append(Opened(ci.username, rule.name, rule.severity, began, began >= recent))
            t += timedelta(hours=1)
    return out


@pytest.fixture(scope="module")
def week() -> tuple[list[Opened], dict[str, Persona]]:
    return week_incidents(_world())


def test_the_demo_week(week: tuple[list[Opened], dict[str, Persona]]) -> None:
    opened, personas = week
    per_ci = Counter(item.ci for item in opened)
    by_persona: dict[Persona, list[str]] = defaultdict(list)
    for ci, persona in personas.items():
        by_persona[persona].append(ci)
    lines = [f"{p.value}: " + ", ".join(f"{ci}={per_ci[ci]}" for ci in cis) for p, cis in by_persona.items()]
    print("\nincidents per CI over the week\n" + "\n".join(lines))
    days = WEEK.total_seconds() / 86400
    cis = len(personas) + 1
    print(f"incidents per CI-day: {len(opened) / (cis * days):.3f} ({len(opened)} over {cis} CIs x {days:g} days)")
    edges = sum(2 if item.resolved else 1 for item in opened)  # open, and resolve once it did
    print(f"notifications (open + resolve edges) per CI-day: {edges / (cis * days):.3f} ({edges})")
    per_persona = Counter(personas[item.ci].value for item in opened if item.ci in personas)
    print("incidents per persona: " + ", ".join(f"{k}={v}" for k, v in sorted(per_persona.items())))
    healthy = {ci: per_ci[ci] for ci in by_persona[Persona.HEALTHY] if per_ci[ci]}
    assert not healthy, f"healthy CIs with incidents: {healthy}"
    broken = {ci: per_ci[ci] for ci in by_persona[Persona.BROKEN]}
    assert all(1 <= count <= 3 for count in broken.values()), f"broken CIs' incidents: {broken}"
    reopened = Counter((item.ci, item.rule) for item in opened if personas.get(item.ci) is Persona.BROKEN)
    assert max(reopened.values()) == 1, f"a broken CI's incident resolved and reopened: {reopened}"
    silent = {ci: per_ci[ci] for ci in by_persona[Persona.SILENT]}
    assert set(silent.values()) == {1}, f"silent CIs' incidents: {silent}"
    assert {item.rule for item in opened if item.ci in silent} == {"silent"}
    flaky_critical = [item for item in opened if personas.get(item.ci) is Persona.FLAKY and item.severity == "critical"]
    assert not flaky_critical, f"flaky CIs with critical incidents: {flaky_critical[:3]}"
