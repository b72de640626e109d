"""The simulator's Gerrit query language: operators, quoting, errors, and boolean algebra (hypothesis)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import cache

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cidash.sim.query import QueryError, parse_query
from cidash.sim.state import Change
from cidash.sim.world import World

START = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
DAY = 86400


@cache
def world() -> World:
    built = World(21, start=START)
    built.generate_history(timedelta(days=3))
    return built


def numbers(query: str) -> set[int]:
    w = world()
    return {change.number for change in parse_query(query, w).filter(w.changes.values())}


def where(condition: object) -> set[int]:
    assert callable(condition)
    return {change.number for change in world().changes.values() if condition(change)}


ALL = where(lambda change: True)


def test_world_is_big_enough() -> None:
    assert len(ALL) > 300


def test_project_and_branch() -> None:
    nova = where(lambda c: c.project == "openstack/nova")
    assert nova and numbers("project:openstack/nova") == nova
    assert numbers("p:openstack/nova") == nova
    assert numbers("project:^openstack/n.*") == where(lambda c: c.project.startswith("openstack/n"))
    assert numbers("project:^openstack/n") == set()  # Gerrit regexes match the whole name
    assert numbers("projects:openstack/ne") == where(lambda c: c.project.startswith("openstack/ne"))
    stable = where(lambda c: c.branch == "stable/2025.2")
    assert stable and numbers("branch:stable/2025.2") == stable
    assert numbers("branch:refs/heads/master") == ALL - stable
    assert numbers("branch:^stable/.*") == stable


def test_status_and_is() -> None:
    open_ = where(lambda c: c.status == "NEW")
    merged = where(lambda c: c.status == "MERGED")
    abandoned = where(lambda c: c.status == "ABANDONED")
    assert open_ and merged and abandoned
    for query in ("status:open", "status:new", "status:pending", "is:open", "status:OPEN"):
        assert numbers(query) == open_
    assert numbers("status:merged") == merged
    assert numbers("status:abandoned") == abandoned
    assert numbers("status:closed") == merged | abandoned
    assert numbers("is:closed") == merged | abandoned


def test_time_operators_and_quoting() -> None:
    w = world()
    updated = sorted(change.updated for change in w.changes.values())
    pivot = updated[len(updated) // 2]
    moment = datetime.fromtimestamp(pivot, UTC)
    text = moment.strftime("%Y-%m-%d %H:%M:%S")
    after = where(lambda c: c.updated >= pivot)
    before = where(lambda c: c.updated <= pivot)
    assert numbers(f'after:"{text}"') == after
    assert numbers(f"after:'{text}'") == after
    assert numbers(f'since:"{text}"') == after
    assert numbers(f"after:{{{text}}}") == after
    assert numbers(f'after:"{text}.000"') == after
    assert numbers(f'after:"{text}.001"') == where(lambda c: c.updated > pivot)
    assert numbers(f'before:"{text}"') == before
    assert numbers(f'until:"{text}"') == before
    # a zone moves the instant: 12:00 +0100 is 11:00 UTC
    shifted = (moment + timedelta(hours=1)).strftime("%Y-%m-%d %H:%M:%S")
    assert numbers(f'after:"{shifted} +0100"') == after
    day = moment.strftime("%Y-%m-%d")
    midnight = datetime(moment.year, moment.month, moment.day, tzinfo=UTC).timestamp()
    assert numbers(f"after:{day}") == where(lambda c: c.updated >= midnight)


def test_age() -> None:
    w = world()
    now = w.now()
    assert now == START.timestamp()
    recent = where(lambda c: c.updated > now - 2 * DAY)
    old = where(lambda c: c.updated <= now - 2 * DAY)
    assert recent and old
    assert numbers("-age:2d") == recent
    assert numbers("age:2d") == old
    assert numbers("NOT age:48h") == recent
    assert numbers("-age:2880m") == recent
    assert numbers("-age:1w") == ALL
    assert numbers("age:1mon") == set()


def test_change_owner_commentby_limit() -> None:
    w = world()
    change = next(iter(w.changes.values()))
    assert numbers(f"change:{change.number}") == {change.number}
    assert numbers(str(change.number)) == {change.number}
    assert numbers(f"change:{change.change_id}") == {change.number}
    owner = change.owner
    owned = where(lambda c: c.owner is owner)
    for who in (owner.username, owner.email, owner.name, str(owner.account_id), owner.username.upper()):
        assert numbers(f'owner:"{who}"') == owned
    by_cisco = where(lambda c: any(m.author.username == "cisco-ci" for m in c.messages))
    assert by_cisco and numbers("commentby:cisco-ci") == by_cisco
    assert numbers("commentby:zuul") == where(lambda c: any(m.author.username == "zuul" for m in c.messages))
    query = parse_query("status:open limit:5 project:openstack/nova limit:7", w)
    assert query.limit == 5
    assert numbers("status:open limit:5") == numbers("status:open")  # limit is applied by the caller


def test_boolean_operators() -> None:
    nova = numbers("project:openstack/nova")
    neutron = numbers("project:openstack/neutron")
    open_ = numbers("status:open")
    assert numbers("project:openstack/nova OR project:openstack/neutron") == nova | neutron
    assert numbers("project:openstack/nova status:open") == nova & open_
    assert numbers("project:openstack/nova AND status:open") == nova & open_
    assert numbers("project:openstack/nova -status:open") == nova - open_
    assert numbers("project:openstack/nova NOT status:open") == nova - open_
    assert numbers("(project:openstack/nova OR project:openstack/neutron) status:open") == (nova | neutron) & open_
    assert numbers("project:openstack/nova OR project:openstack/neutron status:open") == nova | (neutron & open_)
    assert numbers("-(project:openstack/nova OR project:openstack/neutron)") == ALL - nova - neutron


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("foo:bar", "Unsupported operator foo:bar"),
        ("status:sleeping", "Unrecognized value: sleeping"),
        ("(status:open", "missing )"),
        ("status:open)", "Syntax error"),
        ('after:"2024-01-01 10:00', "Unterminated"),
        ("after:yesterday", "Invalid timestamp"),
        ("after:2024-13-01", "Invalid timestamp"),
        ("age:3fortnights", "Invalid age"),
        ("owner:nobody-at-all", "Account 'nobody-at-all' not found"),
        ('project:"^(openstack"', "Invalid regular expression"),
        ("limit:zero", "Invalid limit"),
        ("hello", "Unsupported query: hello"),
        ("", "Empty query"),
        ("status:open OR", "unexpected end"),
        ("project:", "Empty value"),
    ],
)
def test_bad_queries(query: str, message: str) -> None:
    with pytest.raises(QueryError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_query(query, world())


# -- boolean algebra, with hypothesis -------------------------------------------------------------------

ATOMS = [
    "project:openstack/nova",
    "project:openstack/cinder",
    "p:^openstack/n.*",
    "branch:master",
    "status:open",
    "status:merged",
    "status:closed",
    "is:open",
    "-age:1d",
    "age:2d",
    "commentby:cisco-ci",
    "commentby:zuul",
    "commentby:ceph-ci",
    "after:2026-03-01",
    'before:"2026-03-01 06:00:00"',
]


def _expressions() -> st.SearchStrategy[str]:
    atoms = st.sampled_from(ATOMS)
    return st.recursive(
        atoms,
        lambda inner: st.one_of(
            st.tuples(inner, inner).map(lambda p: f"({p[0]} OR {p[1]})"),
            st.tuples(inner, inner).map(lambda p: f"({p[0]} AND {p[1]})"),
            st.tuples(inner, inner).map(lambda p: f"({p[0]} {p[1]})"),
            inner.map(lambda q: f"-{q}" if q.startswith("(") else f"NOT {q}"),
        ),
        max_leaves=6,
    )


@settings(max_examples=150, deadline=None)
@given(_expressions(), _expressions())
def test_query_algebra(a: str, b: str) -> None:
    sa, sb = numbers(a), numbers(b)
    assert numbers(f"NOT ({a})") == ALL - sa
    assert numbers(f"-({a})") == ALL - sa
    assert numbers(f"({a}) OR ({b})") == sa | sb
    assert numbers(f"({a}) AND ({b})") == sa & sb
    assert numbers(f"({a}) ({b})") == sa & sb
    assert numbers(f"NOT (({a}) OR ({b}))") == numbers(f"-({a}) -({b})")  # De Morgan


@settings(max_examples=100, deadline=None)
@given(st.sampled_from(ATOMS), st.sampled_from(ATOMS), st.sampled_from(ATOMS))
def test_and_binds_tighter_than_or(a: str, b: str, c: str) -> None:
    assert numbers(f"{a} OR {b} {c}") == numbers(a) | (numbers(b) & numbers(c))
    assert numbers(f"{a} {b} OR {c}") == (numbers(a) & numbers(b)) | numbers(c)


def test_filter_orders_by_updated_descending() -> None:
    w = world()
    found: list[Change] = parse_query("status:closed OR status:open", w).filter(w.changes.values())
    keys = [(c.updated, c.number) for c in found]
    assert keys == sorted(keys, reverse=True)
    assert len(found) == len(ALL)
