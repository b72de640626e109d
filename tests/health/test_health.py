"""Rollups and the health model on both engines: incremental rollups equal a recomputation, the
latency percentiles, every state with its reason, coverage, agreement and flakiness."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cidash.config import CISystemConfig
from cidash.domain import health
from cidash.domain.comments import AccountRef
from cidash.domain.health import LATENCY_BUCKETS, bucket_bounds, latency_bucket
from cidash.domain.results import Result, result_class
from cidash.domain.views import SystemSummary
from cidash.health import TTLCache, run_metrics
from cidash.health import systems as health_views
from cidash.store import Store, reads
from cidash.store import schema as m
from cidash.store.inserted_run import InsertedRun
from cidash.store.rollups import apply_rollups
from cidash.store.schema import hour_totals_t, latency_t, rollups_t
from tests.support.api import load_history
from tests.support.clock import ManualClock
from tests.support.rollups import rebuild, same_rollups, snapshot
from tests.support.store_fixtures import T0, THIRD_PARTY, ZUUL, observed, parsed
from tests.support.wait import until

NOW = T0 + timedelta(hours=8)  # the health model's pinned clock, in step with the fixtures
NOVA = "openstack/nova"
REFERENCE = [CISystemConfig(account="zuul", display_name="Zuul", reference=True)]


# -- helpers ---------------------------------------------------------------------------------------


async def _post(
    store: Store,
    author: AccountRef,
    change: int,
    patchset: int,
    result: str,
    posted_at: datetime,
    created_at: datetime,
    *,
    project: str = NOVA,
    status: str = "NEW",
    branch: str = "master",
) -> None:
    """One CI result comment (a distinct text per run, so that none is a duplicate of another)."""
    message = f"Build {result.lower()} at {posted_at.isoformat()}"
    comment = observed(
        message,
        change=change,
        patchset=patchset,
        author=author,
        posted_at=posted_at,
        created_at=created_at,
        project=project,
        branch=branch,
        status=status,
        message_id=f"{author.key}-{change}-{patchset}-{posted_at.timestamp()}",
    )
    await store.write_comments([(comment, parsed(result=result, ci=author.key, jobs=(), vote=None))])


async def _summaries(store: Store) -> dict[str, SystemSummary]:
    await rebuild(store)
    async with store.engine.connect() as conn:
        found = await health_views.systems_summary(conn, REFERENCE, now=NOW)
    return {summary.name: summary for summary in found}


async def _metrics(store: Store, name: str) -> health.RunMetrics:
    """The 24 h run-level metrics of one CI, straight from run_metrics."""
    async with store.engine.connect() as conn:
        systems = await reads.systems.system_rows(conn)
        ci = next(s for s in systems if s.name == name)
        references = [s.id for s in systems if s.is_reference]
        params = [health.CoverageParams(ci.id, (NOVA,), health.REASONABLE_MIN_S, ci.last_seen)]
        found = await run_metrics(conn, NOW - timedelta(hours=24), NOW, params, references)
    return found[ci.id]


@pytest.fixture
async def ci_store(store: Store) -> Store:
    await store.sync_ci_configs(REFERENCE, ["review"])
    return store


# -- pure computations -----------------------------------------------------------------------------


def test_latency_buckets_follow_powers_of_two() -> None:
    cases = {0.0: 0, 0.999: 0, 1.0: 1, 1.999: 1, 2.0: 2, 3.99: 2, 4.0: 3, 3600.0: 12, 2.0**22: 23, 1e12: 23}
    for latency, bucket in cases.items():
        assert latency_bucket(latency) == bucket, latency
        low, high = bucket_bounds(bucket)
        assert low <= latency and (latency < high or bucket == LATENCY_BUCKETS - 1)


def test_percentile_interpolates_inside_the_bucket() -> None:
    four_in_4_to_8 = [0, 0, 0, 4] + [0] * (LATENCY_BUCKETS - 4)
    assert health.percentile(four_in_4_to_8, 0.5) == pytest.approx(6.0)
    assert health.percentile(four_in_4_to_8, 0.25) == pytest.approx(5.0)
    assert health.percentile(four_in_4_to_8, 1.0) == pytest.approx(8.0)
    spread = [0] * LATENCY_BUCKETS
    spread[1] = 1  # [1, 2)
    spread[10] = 1  # [512, 1024)
    assert health.percentile(spread, 0.5) == pytest.approx(2.0)  # rank 1.0: the top of the first bucket
    assert health.percentile(spread, 0.95) == pytest.approx(512 + 512 * 0.9)
    under_a_second = [2] + [0] * (LATENCY_BUCKETS - 1)
    assert health.percentile(under_a_second, 0.5) == pytest.approx(0.5)
    assert health.percentile([0] * LATENCY_BUCKETS, 0.5) is None
    with pytest.raises(ValueError):
        health.percentile(spread, 1.5)


def test_result_classes() -> None:
    assert result_class("SUCCESS") == "success"
    assert {result_class(r) for r in ("FAILURE", "POST_FAILURE", "TIMED_OUT", "UNSTABLE")} == {"failure"}
    assert {result_class(r) for r in ("NODE_FAILURE", "MERGE_CONFLICT", "ABORTED", "RETRY_LIMIT")} == {"infra"}
    assert result_class("SKIPPED") == "other" and result_class("UNKNOWN") == "other"


def test_state_rules_on_numbers() -> None:
    healthy = health.Counts(runs=20, successes=18, test_failures=2)
    agreeing = health.RunMetrics(compared=10, agree=10, reference_passed=8)
    state, reason = health.decide_state(
        counts=healthy,
        metrics=agreeing,
        p50_s=1800,
        last_seen=NOW,
        now=NOW,
        is_reference=False,
        reference_name="Zuul",
    )
    assert (state, reason) == ("healthy", "90% of 20 runs succeed; agrees with Zuul on 100% of 10 patch sets")
    slow = health.decide_state(
        counts=healthy,
        metrics=agreeing,
        p50_s=6 * 3600,
        last_seen=NOW,
        now=NOW,
        is_reference=False,
        reference_name="Zuul",
    )
    assert slow == ("degraded", "slow: half of its answers take more than 6 h")
    uncovered = health.RunMetrics(eligible=20, covered=5)
    state, reason = health.decide_state(
        counts=healthy,
        metrics=uncovered,
        p50_s=None,
        last_seen=NOW,
        now=NOW,
        is_reference=False,
        reference_name=None,
    )
    assert (state, reason) == ("degraded", "answered only 25% of the patch sets in its projects (5 of 20)")
    broken_reference = health.decide_state(
        counts=health.Counts(runs=10, successes=1, test_failures=9),
        metrics=None,
        p50_s=None,
        last_seen=NOW,
        now=NOW,
        is_reference=True,
        reference_name="Zuul",
    )
    assert broken_reference == ("failing", "only 10% of runs succeed (1 of 10)")


# -- rollups ---------------------------------------------------------------------------------------

RESULTS = [r.value for r in Result] + ["UNKNOWN", "WEIRD_WORD"]
LATENCIES = st.one_of(
    st.none(),
    st.sampled_from([-5.0, 0.0, 0.5, 1.0, 2.0, 4096.0, 2.0**22, 1e9]),
    st.floats(min_value=-100, max_value=3e6, allow_nan=False, allow_infinity=False),
)
RUN = st.tuples(
    st.integers(0, 2),  # CI
    st.sampled_from([NOVA, "openstack/neutron", "x/" + "é" * 40]),
    st.integers(0, 4 * 24 * 3600 * 1000),  # ms after the start: crosses hour and day boundaries
    st.sampled_from(RESULTS),
    LATENCIES,
)


async def _entities(store: Store) -> tuple[int, list[int], list[tuple[int, int, int]]]:
    """A server, three CI systems and three patch sets to hang generated runs on."""
    authors = [ZUUL, THIRD_PARTY, AccountRef(username="other-ci")]
    items = [
        (observed(f"Build succeeded {a.key} {c}", author=a, change=c), parsed(result="SUCCESS", ci=a.key))
        for a in authors
        for c in (1, 2, 3)
    ]
    await store.write_comments(items)
    async with store.engine.connect() as conn:
        server_id = (await conn.execute(sa.select(m.servers_t.c.id))).scalar_one()
        ci_ids = [s.id for s in await reads.systems.system_rows(conn)]
        p, c = m.patchsets_t, m.changes_t
        patchsets = [
            (row[0], row[1], row[2])
            for row in await conn.execute(sa.select(p.c.id, c.c.number, p.c.number).join(c, c.c.id == p.c.change_db_id))
        ]
    return server_id, sorted(ci_ids), patchsets


async def _insert_runs(
    store: Store,
    server_id: int,
    ci_ids: Sequence[int],
    patchsets: Sequence[tuple[int, int, int]],
    runs: Sequence[tuple[int, str, int, str, float | None]],
    start: datetime,
) -> list[InsertedRun]:
    """Replace every run by the generated ones (straight into ci_runs) and return them as the
    writer would hand them over."""
    rows = []
    for index, (ci, project, offset_ms, result, latency) in enumerate(runs):
        ps_id, change, ps_number = patchsets[index % len(patchsets)]
        rows.append(
            {
                "server_id": server_id,
                "ci_system_id": ci_ids[ci],
                "patchset_id": ps_id,
                "project": project,
                "branch": "master",
                "change_number": change,
                "patchset_number": ps_number,
                "result": result,
                "vote": None,
                "pipeline": None,
                "posted_at": start + timedelta(milliseconds=offset_ms),
                "latency_s": latency,
                "content_key": f"c{index}",
                "dedup_key": f"d{index}",
                "message_id": None,
                "source": "rest",
                "raw_comment": "generated",
                "parsed_with": "test",
            }
        )
    async with store.engine.begin() as conn:
        await conn.execute(sa.delete(m.jobs_t))
        await conn.execute(sa.delete(m.runs_t))
        await conn.execute(sa.delete(rollups_t))
        await conn.execute(sa.delete(hour_totals_t))
        await conn.execute(sa.delete(latency_t))
        if rows:
            await conn.execute(sa.insert(m.runs_t), rows)
        ids = dict((row[1], row[0]) for row in await conn.execute(sa.select(m.runs_t.c.id, m.runs_t.c.dedup_key)))
    return [
        InsertedRun(
            id=ids[row["dedup_key"]],
            server="review",
            ci_system_id=row["ci_system_id"],
            ci="ci",
            project=row["project"],
            branch=row["branch"],
            change_number=row["change_number"],
            patchset_number=row["patchset_number"],
            result=row["result"],
            vote=None,
            pipeline=None,
            posted_at=row["posted_at"],
            latency_s=row["latency_s"],
            message_id=None,
            source="rest",
            jobs=(),
        )
        for row in rows
    ]


@settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(runs=st.lists(RUN, max_size=40), cuts=st.lists(st.integers(0, 40), max_size=5))
async def test_incremental_rollups_equal_a_recomputation(
    store: Store, runs: list[tuple[int, str, int, str, float | None]], cuts: list[int]
) -> None:
    server_id, ci_ids, patchsets = await _entities_once(store)
    inserted = await _insert_runs(store, server_id, ci_ids, patchsets, runs, datetime(2026, 11, 20, 23, 30, tzinfo=UTC))
    bounds = sorted({0, len(inserted), *(min(cut, len(inserted)) for cut in cuts)})
    for begin, end in itertools.pairwise(bounds):  # one writer transaction per batch
        async with store.engine.begin() as conn:
            await apply_rollups(conn, inserted[begin:end])
    incremental = await snapshot(store)
    await rebuild(store)
    recomputed = await snapshot(store)
    assert incremental[1] == recomputed[1]
    assert same_rollups(incremental[0], recomputed[0]), (incremental[0], recomputed[0])
    assert sum(values[0] for values in recomputed[0].values()) == len(runs)
    assert sum(recomputed[1].values()) == sum(1 for run in runs if run[4] is not None)


_ENTITIES: dict[int, tuple[int, list[int], list[tuple[int, int, int]]]] = {}


async def _entities_once(store: Store) -> tuple[int, list[int], list[tuple[int, int, int]]]:
    """The entities of this store (created by the first example, reused by the others)."""
    key = hash((id(store), str(store.engine.url)))
    if key not in _ENTITIES:
        _ENTITIES.clear()
        _ENTITIES[key] = await _entities(store)
    return _ENTITIES[key]


async def test_retracting_and_moving_runs_keeps_rollups_exact(store: Store) -> None:
    server_id, ci_ids, patchsets = await _entities(store)
    start = datetime(2026, 11, 20, 10, 59, 50, tzinfo=UTC)
    generated = [(0, NOVA, i * 1000, "SUCCESS" if i % 3 else "NODE_FAILURE", None) for i in range(20)]
    inserted = await _insert_runs(store, server_id, ci_ids, patchsets, generated, start)
    async with store.engine.begin() as conn:
        await apply_rollups(conn, inserted)
    ten, eleven = datetime(2026, 11, 20, 10, tzinfo=UTC), datetime(2026, 11, 20, 11, tzinfo=UTC)
    before = await snapshot(store)
    assert {key[2]: values[0] for key, values in before[0].items()} == {ten: 10, eleven: 10}
    # the REST copy of the first runs gives them a later time (across the hour) and a latency
    moved = [
        InsertedRun(**{**_fields(run), "posted_at": run.posted_at + timedelta(seconds=15), "latency_s": 90.0})
        for run in inserted[:12]
    ]
    async with store.engine.begin() as conn:
        await apply_rollups(conn, inserted[:12], sign=-1)
        await apply_rollups(conn, moved)
        for run in moved:
            await conn.execute(
                sa.update(m.runs_t)
                .where(m.runs_t.c.id == run.id)
                .values(posted_at=run.posted_at, latency_s=run.latency_s)
            )
    incremental = await snapshot(store)
    await rebuild(store)
    recomputed = await snapshot(store)
    assert same_rollups(incremental[0], recomputed[0]) and incremental[1] == recomputed[1]
    assert {key[2]: values[0] for key, values in recomputed[0].items()} == {eleven: 20}
    assert sum(recomputed[1].values()) == 12


def _fields(run: InsertedRun) -> dict[str, Any]:
    return {name: getattr(run, name) for name in InsertedRun.__dataclass_fields__}


# -- states ----------------------------------------------------------------------------------------


async def test_healthy_when_agreeing_with_the_reference(ci_store: Store) -> None:
    for change in range(1, 7):
        created = NOW - timedelta(hours=10) + timedelta(minutes=10 * change)
        await _post(ci_store, ZUUL, change, 1, "SUCCESS", created + timedelta(minutes=20), created)
        await _post(ci_store, THIRD_PARTY, change, 1, "SUCCESS", created + timedelta(minutes=30), created)
    found = await _summaries(ci_store)
    acme = found["acme-ci"]
    assert acme.state == "healthy"
    assert acme.state_reason == "100% of 6 runs succeed; agrees with Zuul on 100% of 6 patch sets"
    assert acme.health.runs == 6 and acme.health.success_rate == 1.0
    assert acme.health.agreement == 1.0 and acme.health.disagreements == 0
    assert acme.health.latency_p50_s is not None and 1024 <= acme.health.latency_p50_s < 2048
    assert acme.projects == [NOVA]
    assert found["zuul"].state == "healthy" and found["zuul"].is_reference


async def test_failing_where_the_reference_passed(ci_store: Store) -> None:
    for change in range(1, 9):
        created = NOW - timedelta(hours=12) + timedelta(minutes=20 * change)
        await _post(ci_store, ZUUL, change, 1, "SUCCESS", created + timedelta(minutes=20), created)
        mine = "FAILURE" if change <= 6 else "SUCCESS"
        await _post(ci_store, THIRD_PARTY, change, 1, mine, created + timedelta(minutes=40), created)
    acme = (await _summaries(ci_store))["acme-ci"]
    assert acme.state == "failing"
    assert acme.state_reason == "fails 75% of runs where Zuul passed (6 of 8)"
    assert acme.health.disagreements == 6 and acme.health.agreement == pytest.approx(0.25)


async def test_silent_while_patch_sets_arrive(ci_store: Store) -> None:
    # it answered until six hours ago ...
    for change in range(1, 7):
        created = NOW - timedelta(hours=8) + timedelta(minutes=10 * change)
        await _post(ci_store, ZUUL, change, 1, "SUCCESS", created + timedelta(minutes=10), created)
        await _post(ci_store, THIRD_PARTY, change, 1, "SUCCESS", NOW - timedelta(hours=6), created)
    # ... then five patch sets came in its project, old enough to have been answered
    for change in range(10, 15):
        created = NOW - timedelta(hours=5) + timedelta(minutes=40 * (change - 10))
        await _post(ci_store, ZUUL, change, 1, "SUCCESS", created + timedelta(minutes=15), created)
    acme = (await _summaries(ci_store))["acme-ci"]
    assert acme.state == "silent"
    assert acme.state_reason == "silent for 6 h while 5 patch sets arrived in its projects"
    assert acme.health.coverage == pytest.approx(6 / 11)


async def test_degraded_by_infra_errors(ci_store: Store) -> None:
    for change in range(1, 11):
        created = NOW - timedelta(hours=12) + timedelta(minutes=30 * change)
        await _post(ci_store, ZUUL, change, 1, "SUCCESS", created + timedelta(minutes=20), created)
        mine = "NODE_FAILURE" if change in (3, 7) else "SUCCESS"
        await _post(ci_store, THIRD_PARTY, change, 1, mine, created + timedelta(minutes=40), created)
    acme = (await _summaries(ci_store))["acme-ci"]
    assert acme.state == "degraded"
    assert acme.state_reason == "infra errors on 20% of runs (2 of 10)"
    assert acme.health.infra_error_rate == pytest.approx(0.2)
    assert acme.health.disagreements == 0  # an infra error is no disagreement
    assert acme.health.agreement == 1.0


async def test_failing_when_most_runs_are_infra_errors(ci_store: Store) -> None:
    for change in range(1, 7):
        created = NOW - timedelta(hours=12) + timedelta(minutes=30 * change)
        mine = "SUCCESS" if change == 1 else "MERGE_CONFLICT"
        await _post(ci_store, THIRD_PARTY, change, 1, mine, created + timedelta(minutes=40), created)
    acme = (await _summaries(ci_store))["acme-ci"]
    assert (acme.state, acme.state_reason) == ("failing", "infra errors on 83% of runs (5 of 6)")


async def test_unknown_with_too_few_runs(ci_store: Store) -> None:
    for change in (1, 2):
        created = NOW - timedelta(hours=3)
        await _post(ci_store, THIRD_PARTY, change, 1, "SUCCESS", created + timedelta(minutes=30), created)
    found = await _summaries(ci_store)
    assert found["acme-ci"].state == "unknown"
    assert found["acme-ci"].state_reason == "only 2 runs in the last 24 h: too few to judge"
    assert found["zuul"].state == "unknown"
    assert found["zuul"].state_reason == "no runs in the last 24 h"


# -- coverage, agreement, flakiness ----------------------------------------------------------------


async def test_coverage_leaves_out_superseded_recent_and_closed_patch_sets(ci_store: Store) -> None:
    # A: answered
    a = NOW - timedelta(hours=10)
    await _post(ci_store, ZUUL, 1, 1, "SUCCESS", a + timedelta(minutes=20), a)
    await _post(ci_store, THIRD_PARTY, 1, 1, "SUCCESS", a + timedelta(minutes=30), a)
    # B1 superseded by B2 twenty minutes later: not eligible; B2 never answered: eligible, missed
    b1 = NOW - timedelta(hours=9)
    b2 = b1 + timedelta(minutes=20)
    await _post(ci_store, ZUUL, 2, 1, "SUCCESS", b1 + timedelta(minutes=10), b1)
    await _post(ci_store, ZUUL, 2, 2, "SUCCESS", b2 + timedelta(minutes=20), b2)
    # C: created half an hour ago, too recent to count
    c = NOW - timedelta(minutes=30)
    await _post(ci_store, ZUUL, 3, 1, "SUCCESS", c + timedelta(minutes=10), c)
    # D: merged a quarter of an hour after its creation
    d = NOW - timedelta(hours=7)
    await _post(ci_store, ZUUL, 4, 1, "SUCCESS", d + timedelta(minutes=15), d, status="MERGED")
    metrics = await _metrics(ci_store, "acme-ci")
    assert (metrics.eligible, metrics.covered) == (2, 1)
    assert metrics.coverage == 0.5
    acme = (await _summaries(ci_store))["acme-ci"]
    assert acme.health.coverage == 0.5


async def test_coverage_agrees_with_the_grid_and_a_slow_ci_is_not_excused(ci_store: Store) -> None:
    """Eight old-enough patch sets; acme answers five, each ten hours after the upload (its p95 is
    about ten hours: under the old rule, its own slowness made every recent miss "too recent").
    The answer time is capped at four hours, so the three misses created 5-9 h ago count; the
    grid shows the same five filled and three empty cells on those rows."""
    answered = {1, 2, 4, 6, 7}
    hours_ago = {1: 20, 2: 18, 3: 9, 4: 16, 5: 7, 6: 14, 7: 12, 8: 5}  # the misses are the recent ones
    for change, hours in hours_ago.items():
        created = NOW - timedelta(hours=hours)
        await _post(ci_store, ZUUL, change, 1, "SUCCESS", created + timedelta(minutes=30), created)
        if change in answered:
            await _post(ci_store, THIRD_PARTY, change, 1, "SUCCESS", created + timedelta(hours=10), created)
    # not eligible: created an hour ago (too recent), and one superseded five minutes after upload
    await _post(ci_store, ZUUL, 20, 1, "SUCCESS", NOW - timedelta(minutes=40), NOW - timedelta(hours=1))
    gone = NOW - timedelta(hours=12)
    await _post(ci_store, ZUUL, 21, 1, "SUCCESS", gone + timedelta(minutes=3), gone)
    await _post(ci_store, ZUUL, 21, 2, "SUCCESS", gone + timedelta(minutes=40), gone + timedelta(minutes=5))
    await _post(ci_store, THIRD_PARTY, 21, 2, "SUCCESS", gone + timedelta(hours=10), gone + timedelta(minutes=5))

    acme = (await _summaries(ci_store))["acme-ci"]
    assert acme.health.latency_p95_s is not None and acme.health.latency_p95_s > 8 * 3600
    assert (acme.health.eligible, acme.health.covered) == (9, 6)  # the 8 and 21/2
    assert acme.health.coverage == pytest.approx(6 / 9)

    async with ci_store.engine.connect() as conn:
        shown = await reads.grid.grid(conn, project=NOVA, limit=50)
    eligible_rows = [row for row in shown.rows if (row.change, row.patchset) not in {(20, 1), (21, 1)}]
    filled = [row for row in eligible_rows if "acme-ci" in row.cells]
    assert len(shown.rows) == 11 and len(eligible_rows) == acme.health.eligible
    assert len(filled) == acme.health.covered
    assert {row.change for row in filled} == answered | {21}


async def test_coverage_counts_only_the_branches_a_ci_follows(ci_store: Store) -> None:
    configs = [*REFERENCE, CISystemConfig(account="acme-ci", projects=[NOVA], branches=["master", "feature/*"])]
    for change, branch in enumerate(["master", "stable/2025.2", "feature/x", "stable/2025.1"], start=1):
        created = NOW - timedelta(hours=10 + change)
        await _post(ci_store, ZUUL, change, 1, "SUCCESS", created + timedelta(minutes=30), created, branch=branch)
        if change == 1:
            await _post(ci_store, THIRD_PARTY, change, 1, "SUCCESS", created + timedelta(hours=1), created)
    await rebuild(ci_store)
    async with ci_store.engine.connect() as conn:
        following = {s.name: s for s in await health_views.systems_summary(conn, configs, now=NOW)}
        every_branch = {s.name: s for s in await health_views.systems_summary(conn, REFERENCE, now=NOW)}
    assert (following["acme-ci"].health.eligible, following["acme-ci"].health.covered) == (2, 1)  # master, feature/x
    assert (every_branch["acme-ci"].health.eligible, every_branch["acme-ci"].health.covered) == (4, 1)


async def test_the_30_day_window_counts_what_the_7_day_one_does(ci_store: Store) -> None:
    """Patch sets 20 days ago and 2 days ago: 7 d sees the recent ones, 30 d all of them, by the
    same rules (coverage, agreement, flakiness)."""
    for change, days in ((1, 20), (2, 20), (3, 20), (4, 2), (5, 2)):
        created = NOW - timedelta(days=days)
        reference = "FAILURE" if change == 3 else "SUCCESS"
        await _post(ci_store, ZUUL, change, 1, reference, created + timedelta(minutes=20), created)
        if change != 2:  # missed 2
            await _post(ci_store, THIRD_PARTY, change, 1, "SUCCESS", created + timedelta(minutes=40), created)
        if change == 5:  # a recheck with a different class: flaky
            await _post(ci_store, THIRD_PARTY, change, 1, "FAILURE", created + timedelta(hours=2), created)
    await rebuild(ci_store)
    async with ci_store.engine.connect() as conn:
        systems = await reads.systems.system_rows(conn)
        acme = next(s for s in systems if s.name == "acme-ci")
        detail = await health_views.system_detail(conn, acme, REFERENCE, now=NOW)
    windows = {w.window: w for w in detail.windows}
    week, month = windows["7d"], windows["30d"]
    assert (week.eligible, week.covered, week.agreement, week.flakiness) == (2, 2, 0.5, 1.0)
    # 30 d: 1 agrees, 3 passes where Zuul failed, 4 agrees, 5's latest (FAILURE) disagrees
    assert (month.eligible, month.covered) == (5, 4)
    assert month.agreement == pytest.approx(2 / 4) and month.disagreements == 2
    assert month.flakiness == 1.0 and not month.metrics_pending and month.runs == 5


async def test_vote_quality_matrix_false_shares_and_their_cases(ci_store: Store) -> None:
    cases = {  # change: (reference, acme, status)
        1: ("SUCCESS", "FAILURE", "MERGED"),  # false -1: the reference passed and the change merged
        2: ("SUCCESS", "FAILURE", "NEW"),  # -1 where the reference passed, not (yet) merged
        3: ("FAILURE", "SUCCESS", "NEW"),  # false +1
        4: ("SUCCESS", "SUCCESS", "MERGED"),
        5: ("FAILURE", "FAILURE", "ABANDONED"),
        6: (None, "FAILURE", "NEW"),  # no reference result: a -1, compared with nothing
    }
    for change, (reference, mine, status) in cases.items():
        created = NOW - timedelta(hours=12) + timedelta(minutes=30 * change)
        if reference is not None:
            await _post(ci_store, ZUUL, change, 1, reference, created + timedelta(minutes=10), created, status=status)
        await _post(ci_store, THIRD_PARTY, change, 1, mine, created + timedelta(minutes=20), created, status=status)
    acme = (await _summaries(ci_store))["acme-ci"]
    quality = acme.health.vote_quality
    assert quality is not None
    assert (quality.both_passed, quality.failed_reference_passed, quality.passed_reference_failed) == (1, 2, 1)
    assert (quality.both_failed, quality.negatives, quality.positives, quality.false_negatives) == (1, 4, 2, 1)
    assert quality.false_negative_share == 0.25 and quality.false_positive_share == 0.5

    async with ci_store.engine.connect() as conn:
        system = next(s for s in await reads.systems.system_rows(conn) if s.name == "acme-ci")
        negative = await health_views.vote_cases(conn, system, REFERENCE, kind="false_negative", window="24h", now=NOW)
        positive = await health_views.vote_cases(conn, system, REFERENCE, kind="false_positive", window="24h", now=NOW)
    assert [row.change for row in negative.rows] == [1] and [row.change for row in positive.rows] == [3]
    assert negative.systems == ["zuul", "acme-ci"]
    assert negative.rows[0].cells["acme-ci"].result == "FAILURE" and negative.rows[0].cells["zuul"].result == "SUCCESS"


async def test_time_to_first_answer_counts_a_start_comment_or_the_first_result(ci_store: Store) -> None:
    """Queue latency beside run latency: acme starts 10, 20, 30, 40 and 50 minutes after each
    upload (a "Starting" comment on two of them, the result itself on the others) and reports
    an hour later; the patch set created before the window does not count."""
    from cidash.parsing import CommentKind

    for change, wait_min in enumerate((10, 20, 30, 40, 50), start=1):
        created = NOW - timedelta(hours=10 + change)
        await _post(ci_store, ZUUL, change, 1, "SUCCESS", created + timedelta(minutes=5), created)
        started = created + timedelta(minutes=wait_min)
        if change <= 2:
            start = observed(
                "Starting check jobs.",
                change=change,
                author=THIRD_PARTY,
                posted_at=started,
                created_at=created,
                message_id=f"start-{change}",
            )
            await ci_store.write_comments([(start, parsed(CommentKind.START))])
            result_at = started + timedelta(hours=1)
        else:
            result_at = started
        await _post(ci_store, THIRD_PARTY, change, 1, "SUCCESS", result_at, created)
    old = NOW - timedelta(hours=30)
    await _post(ci_store, THIRD_PARTY, 9, 1, "SUCCESS", NOW - timedelta(hours=20), old)
    acme = (await _summaries(ci_store))["acme-ci"]
    assert acme.health.queue_p50_s == pytest.approx(30 * 60)
    assert acme.health.queue_p95_s == pytest.approx(48 * 60)  # between 40 and 50 min, rank 3.8
    assert acme.health.latency_p50_s is not None and acme.health.latency_p50_s > acme.health.queue_p50_s


async def test_recheck_recovery_share_of_failed_patch_sets(ci_store: Store) -> None:
    runs = {1: ["FAILURE", "SUCCESS"], 2: ["NODE_FAILURE", "SUCCESS"], 3: ["FAILURE", "FAILURE"], 4: ["FAILURE"]}
    runs |= {5: ["SUCCESS"], 6: ["SUCCESS", "FAILURE"]}  # 6: passed, then failed on a recheck: not recovered
    for change, results in runs.items():
        created = NOW - timedelta(hours=12) + timedelta(minutes=30 * change)
        for index, result in enumerate(results):
            await _post(ci_store, THIRD_PARTY, change, 1, result, created + timedelta(minutes=20 + 60 * index), created)
    metrics = await _metrics(ci_store, "acme-ci")
    assert (metrics.failed_patchsets, metrics.recovered) == (5, 2)
    acme = (await _summaries(ci_store))["acme-ci"]
    assert acme.health.recheck_recovery == pytest.approx(2 / 5)
    assert (acme.health.failed_patchsets, acme.health.recovered) == (5, 2)


async def test_agreement_and_flakiness_counts(ci_store: Store) -> None:
    base = NOW - timedelta(hours=12)

    async def both(change: int, reference: str | None, mine: Sequence[str]) -> None:
        created = base + timedelta(minutes=30 * change)
        if reference is not None:
            await _post(ci_store, ZUUL, change, 1, reference, created + timedelta(minutes=10), created)
        for index, result in enumerate(mine):
            await _post(ci_store, THIRD_PARTY, change, 1, result, created + timedelta(minutes=20 + 60 * index), created)

    await both(1, "SUCCESS", ["SUCCESS"])  # agree
    await both(2, "SUCCESS", ["FAILURE"])  # disagree: fails where the reference passed
    await both(3, "FAILURE", ["SUCCESS", "FAILURE"])  # latest agrees; a flaky recheck
    await both(4, "SUCCESS", ["NODE_FAILURE"])  # infra: not compared
    await both(5, None, ["SUCCESS", "SUCCESS"])  # rechecked, same class: not flaky
    await both(6, "NODE_FAILURE", ["FAILURE"])  # the reference's infra error: not compared
    metrics = await _metrics(ci_store, "acme-ci")
    assert (metrics.compared, metrics.agree, metrics.disagreements) == (3, 2, 1)
    assert (metrics.fail_when_reference_passed, metrics.pass_when_reference_failed, metrics.reference_passed) == (
        1,
        0,
        2,
    )
    assert (metrics.answered, metrics.rechecked, metrics.flaky) == (6, 2, 1)
    acme = (await _summaries(ci_store))["acme-ci"]
    assert acme.health.agreement == pytest.approx(2 / 3)
    assert acme.health.disagreements == 1
    assert acme.health.flakiness == 0.5
    assert acme.health.runs == 8 and acme.health.infra_error_rate == pytest.approx(1 / 8)


async def test_project_filter_counts_only_that_project(ci_store: Store) -> None:
    for change in range(1, 7):
        created = NOW - timedelta(hours=10) + timedelta(minutes=10 * change)
        project = NOVA if change <= 4 else "openstack/neutron"
        await _post(
            ci_store, THIRD_PARTY, change, 1, "SUCCESS", created + timedelta(minutes=30), created, project=project
        )
    await rebuild(ci_store)
    async with ci_store.engine.connect() as conn:
        nova = await health_views.systems_summary(conn, REFERENCE, project=NOVA, now=NOW)
        neutron = await health_views.systems_summary(conn, REFERENCE, project="openstack/neutron", now=NOW)
        week = await health_views.systems_summary(conn, REFERENCE, window="7d", now=NOW)
    assert [s.name for s in nova] == ["acme-ci"] and nova[0].health.runs == 4
    assert [s.name for s in neutron] == ["acme-ci"] and neutron[0].health.runs == 2
    acme_week = next(s for s in week if s.name == "acme-ci")
    assert acme_week.health.window == "7d" and acme_week.health.runs == 6
    assert len(acme_week.sparkline) == 14 and acme_week.sparkline[-1] == 1.0
    assert sorted(acme_week.projects) == ["openstack/neutron", NOVA]


# -- the cache of run-level metrics -----------------------------------------------------------------


async def test_cache_serves_stale_values_while_refreshing() -> None:
    clock = ManualClock()
    cache: TTLCache[str, int] = TTLCache(ttl_s=30, stale_s=300, clock=clock)
    computed: list[int] = []
    release = asyncio.Event()

    async def compute() -> int:
        computed.append(len(computed) + 1)
        if len(computed) == 2:
            await release.wait()  # the background refresh takes its time
        return len(computed)

    assert await cache.get_or_compute("k", compute) == 1
    clock.advance(10)
    assert await cache.get_or_compute("k", compute) == 1 and computed == [1]  # fresh
    clock.advance(60)
    assert await cache.get_or_compute("k", compute) == 1  # stale: served at once ...
    assert await cache.get_or_compute("k", compute) == 1  # ... one refresh at a time
    await asyncio.sleep(0)  # one turn of the loop: the refresh starts
    assert computed == [1, 2] and "k" in cache.refreshing
    release.set()
    await until(lambda: not cache.refreshing, 5, "the refresh to end")
    assert cache.get("k") == 2
    clock.advance(1000)  # too old to serve: recomputed inline
    assert await cache.get_or_compute("k", compute) == 3
    clock.advance(60)
    assert await cache.get_or_compute("k", compute) == 3
    assert "k" in cache.refreshing
    await cache.close()  # cancels the refresh it started (before it ran)
    assert not cache.refreshing and len(computed) == 3
    off: TTLCache[str, int] = TTLCache(ttl_s=0)  # no caching at all
    assert await off.get_or_compute("k", compute) == 4 and await off.get_or_compute("k", compute) == 5


async def test_background_windows_never_wait_for_their_value() -> None:
    clock = ManualClock()
    cache: TTLCache[str, int] = TTLCache(ttl_s=30, stale_s=300, clock=clock)
    release = asyncio.Event()
    computed: list[int] = []

    async def compute() -> int:
        await release.wait()
        computed.append(len(computed) + 1)
        return len(computed)

    assert cache.peek_or_start("k", compute, 600) is None  # nothing yet: computing in the background
    assert cache.peek_or_start("k", compute, 600) is None and len(cache.refreshing) == 1  # one at a time
    release.set()
    await until(lambda: cache.peek_or_start("k", compute, 600) is not None, 5, "the background value")
    assert cache.peek_or_start("k", compute, 600) == 1 and computed == [1] and not cache.refreshing
    clock.advance(300)  # past the TTL, within the refresh age: served, no refresh
    assert cache.peek_or_start("k", compute, 600) == 1 and not cache.refreshing
    clock.advance(10_000)  # however old, the value is served at once, and a refresh starts
    assert cache.peek_or_start("k", compute, 600) == 1 and "k" in cache.refreshing
    await cache.close()


async def test_rollups_kept_by_the_writer_equal_a_recomputation(store: Store) -> None:
    """The writer calls apply_rollups in its insert transaction: after a simulated history written
    in batches, the rollups are exactly what a recomputation gives."""
    store.after_insert = apply_rollups  # what cidash.store.derived_writes does, without the feed
    await load_history(store, hours=3, seed=8, rebuild=False)
    incremental = await snapshot(store)
    await rebuild(store)
    recomputed = await snapshot(store)
    assert incremental[1] == recomputed[1]
    assert same_rollups(incremental[0], recomputed[0])
    assert sum(values[0] for values in recomputed[0].values()) == await store.run_count() > 100
