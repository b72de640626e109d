"""Recheck burden: humans' recheck comments stored once (``recheck_comments``) and attributed to
the CIs they were aimed at (:mod:`cidash.store.rechecks`), on both engines, on hand-built data
where the answer is known: a plain recheck counts for a CI only when its failure there was its own
(judged as the incidents judge it), a named one always for the CI it names."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from cidash.config import CISystemConfig
from cidash.domain.comments import AccountRef, ObservedComment
from cidash.parsing import CommentParser
from cidash.store import Store
from cidash.store import schema as m
from cidash.store.rechecks import recheck_cases, recheck_counts
from tests.support.store_fixtures import HUMAN, T0, THIRD_PARTY, ZUUL, observed, rest_copy, stream_copy

BETA = AccountRef(account_id=9002, username="beta_ci", name="Beta CI", email="ci@beta.example")
GAMMA = AccountRef(account_id=9003, username="gamma-ci", name="Gamma CI", email="ci@gamma.example")
CONFIGS = [
    CISystemConfig(account="zuul", reference=True),
    CISystemConfig(account="acme-ci"),
    CISystemConfig(account="beta_ci"),
    CISystemConfig(account="gamma-ci"),
]
FAILED = "Build failed.\n\n- tempest-full https://logs.example/1 : FAILURE in 1h 00m 00s"
PASSED = FAILED.replace("failed", "succeeded").replace("FAILURE", "SUCCESS")


async def _ci_ids(store: Store) -> dict[str, int]:
    systems, accounts = m.ci_systems_t, m.accounts_t
    query = sa.select(accounts.c.account_key, systems.c.id).join(accounts, accounts.c.id == systems.c.account_id)
    async with store.engine.connect() as conn:
        return {key: ci for key, ci in await conn.execute(query)}


async def _counts(store: Store, comments: list[ObservedComment]) -> dict[str, int]:
    """The rechecks aimed at each CI (by account) once `comments` are stored."""
    parser = CommentParser(CONFIGS)
    await store.write_comments([(comment, parser.parse(comment)) for comment in comments])
    ids = await _ci_ids(store)
    names = {ci: key for key, ci in ids.items()}
    async with store.engine.connect() as conn:
        counts = await recheck_counts(conn, T0 - timedelta(hours=1), T0 + timedelta(hours=1), sorted(ids.values()))
    return {names[ci]: count for ci, count in counts.items()}


async def test_rechecks_are_attributed_to_the_cis_they_aimed_at(store: Store) -> None:
    parser = CommentParser(CONFIGS)
    minute = timedelta(minutes=1)
    comments = [
        # change 1: acme failed, zuul passed, beta passed *after* the recheck: plain -> acme only
        observed(FAILED, change=1, author=THIRD_PARTY, posted_at=T0),
        observed(PASSED, change=1, author=ZUUL, posted_at=T0 + minute),
        observed("Patch Set 1:\n\nrecheck", change=1, author=HUMAN, posted_at=T0 + 10 * minute),
        observed(PASSED, change=1, author=BETA, posted_at=T0 + 20 * minute),
        # change 2: a recheck before any result is aimed at nobody; acme failed, then passed, and
        # a later plain recheck finds its latest result a success: nobody again
        observed("recheck", change=2, author=HUMAN, posted_at=T0),
        observed(FAILED, change=2, author=THIRD_PARTY, posted_at=T0 + minute),
        observed(PASSED, change=2, author=THIRD_PARTY, posted_at=T0 + 5 * minute),
        observed("recheck", change=2, author=HUMAN, posted_at=T0 + 6 * minute),
        # change 3: the named form counts for the CI it names whatever its results; zuul failed
        # and beta failed too (the change's failure), so the plain recheck is aimed at neither
        observed(PASSED, change=3, author=BETA, posted_at=T0),
        observed("Patch Set 1:\n\nrecheck-beta", change=3, author=HUMAN, posted_at=T0 + minute),
        observed(FAILED, change=3, author=ZUUL, posted_at=T0 + 2 * minute),
        observed(FAILED, change=3, author=BETA, posted_at=T0 + 2 * minute),
        observed("recheck bug 1234567", change=3, author=HUMAN, posted_at=T0 + 3 * minute),
        # not rechecks: kept nowhere
        observed("Patch Set 1: Code-Review+1\n\nLooks good", change=3, author=HUMAN, posted_at=T0 + 4 * minute),
    ]
    stats = await store.write_comments([(comment, parser.parse(comment)) for comment in comments])
    assert (stats.runs_inserted, stats.rechecks_inserted) == (8, 5)
    ids = await _ci_ids(store)
    async with store.engine.connect() as conn:
        window = (T0 - timedelta(hours=1), T0 + timedelta(hours=1))
        counts = await recheck_counts(conn, *window, sorted(ids.values()))
        before = await recheck_counts(conn, T0 - timedelta(hours=1), T0 + 2 * minute, sorted(ids.values()))
        other_project = await recheck_counts(conn, *window, sorted(ids.values()), project="openstack/neutron")
        total, cases = await recheck_cases(conn, ids["acme-ci"], *window)
        _, beta_cases = await recheck_cases(conn, ids["beta_ci"], *window)
        stored = (await conn.execute(sa.select(sa.func.count()).select_from(m.rechecks_t))).scalar_one()
    assert counts == {ids["acme-ci"]: 1, ids["beta_ci"]: 1}
    assert before == {ids["beta_ci"]: 1}  # only the named one was posted by then
    assert other_project == {}
    assert stored == 5
    assert total == 1
    assert [(case.change_number, case.aimed, case.text, case.author) for case in cases] == [
        (1, "plain", "recheck", "Alice"),
    ]
    assert [(case.change_number, case.aimed, case.text) for case in beta_cases] == [(3, "named", "recheck-beta")]


# (change, author, text, minutes after T0) posted, and the rechecks then aimed at each CI
Posted = list[tuple[int, AccountRef, str, int]]
JUDGED_CASES: dict[str, tuple[Posted, dict[str, int]]] = {
    "a change broken for every CI: the plain recheck counts for none, the named one still counts": (
        [
            (1, THIRD_PARTY, FAILED, 0),
            (1, BETA, FAILED, 1),
            (1, GAMMA, FAILED, 1),
            (1, HUMAN, "recheck", 5),
            (1, HUMAN, "recheck-gamma", 6),
            (1, ZUUL, FAILED, 10),  # the reference answers after the recheck: decided when reading
        ],
        {"gamma-ci": 1},
    ),
    "a CI failing alone: the plain recheck counts for it": (
        [(1, ZUUL, PASSED, 0), (1, THIRD_PARTY, FAILED, 1), (1, BETA, PASSED, 1), (1, HUMAN, "recheck", 5)],
        {"acme-ci": 1},
    ),
    "no reference result: most other CIs decide, and a failure nobody else judged counts for nobody": (
        [
            # change 1: acme failed, beta and gamma passed: acme's own failure
            (1, THIRD_PARTY, FAILED, 0),
            (1, BETA, PASSED, 0),
            (1, GAMMA, PASSED, 0),
            (1, HUMAN, "recheck", 5),
            # change 2: acme and beta failed, gamma passed: no majority passed, nobody's
            (2, THIRD_PARTY, FAILED, 0),
            (2, BETA, FAILED, 0),
            (2, GAMMA, PASSED, 0),
            (2, HUMAN, "recheck", 5),
            # change 3: acme failed and nobody else reported: not judged yet
            (3, THIRD_PARTY, FAILED, 0),
            (3, HUMAN, "recheck", 5),
        ],
        {"acme-ci": 1},
    ),
    "the reference CI failing alone: judged by the others, the plain recheck counts for it": (
        [(1, ZUUL, FAILED, 0), (1, THIRD_PARTY, PASSED, 1), (1, BETA, PASSED, 1), (1, HUMAN, "recheck", 5)],
        {"zuul": 1},
    ),
}


@pytest.mark.parametrize("case", JUDGED_CASES)
async def test_a_plain_recheck_counts_for_a_ci_only_after_its_own_failure(store: Store, case: str) -> None:
    posted, expected = JUDGED_CASES[case]
    comments = [
        observed(text, change=change, author=author, posted_at=T0 + timedelta(minutes=minutes))
        for change, author, text, minutes in posted
    ]
    assert await _counts(store, comments) == expected


async def test_the_streams_and_the_backfills_copies_count_once(store: Store) -> None:
    parser = CommentParser(CONFIGS)
    failed = observed(FAILED, author=THIRD_PARTY, posted_at=T0)
    passed = observed(PASSED, author=ZUUL, posted_at=T0)  # the reference passed: acme's own failure
    recheck = rest_copy(observed("Patch Set 1:\n\nrecheck", author=HUMAN, posted_at=T0 + timedelta(minutes=5)), "m-1")
    first = await store.write_comments(
        [(c, parser.parse(c)) for c in (failed, passed, stream_copy(recheck), stream_copy(recheck, header=False))]
    )
    assert (first.rechecks_inserted, first.rechecks_duplicate) == (1, 1)
    again = await store.write_comments([(c, parser.parse(c)) for c in (recheck, stream_copy(recheck))])
    assert (again.rechecks_inserted, again.rechecks_merged, again.rechecks_duplicate) == (0, 1, 1)
    ids = await _ci_ids(store)
    async with store.engine.connect() as conn:
        counts = await recheck_counts(conn, T0 - timedelta(hours=1), T0 + timedelta(hours=1), [ids["acme-ci"]])
        rows = (await conn.execute(sa.select(m.rechecks_t.c.message_id, m.rechecks_t.c.posted_at))).all()
    assert counts == {ids["acme-ci"]: 1}
    assert rows == [("m-1", recheck.posted_at)]  # REST's id and time are canonical
