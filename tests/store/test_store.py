"""cidash.store on both engines (SQLite and MariaDB): schema, idempotent writes, dedup, CI systems,
journal, dead letters and watermarks."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import shutil
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from cidash.config import CISystemConfig
from cidash.domain.comments import AccountRef, Source
from cidash.errors import ConfigError
from cidash.parsing import CommentKind, JobResult
from cidash.store import DEDUP_WINDOW, Store, downgrade, upgrade
from cidash.store import comment_writer as comments_module
from cidash.store import schema as m
from cidash.store.dedup import _body, content_key
from cidash.store.engine import create_engine, normalise_url
from cidash.store.migrate import head_revision, migrations_dir
from tests.support.paths import REPO
from tests.support.store_fixtures import (
    HUMAN,
    JOBS,
    T0,
    THIRD_PARTY,
    ZUUL,
    human_parsed,
    observed,
    parsed,
    rest_copy,
    stream_copy,
)
from tests.support.stored import all_runs, ci_systems, patchset

TABLES = {
    "gerrit_servers",
    "accounts",
    "ci_systems",
    "changes",
    "patchsets",
    "ci_runs",
    "job_results",
    "event_journal",
    "dead_letters",
    "sync_watermarks",
}
HEADERED = "Patch Set 1: Verified-1\n\nBuild failed.\n\n- tempest-full https://logs.example/1 : FAILURE in 1h 00m 00s"


def _tables(connection: Connection) -> set[str]:
    return set(sa.inspect(connection).get_table_names())


def _table_of(diff: Any) -> str | None:
    """The table a compare_metadata entry is about (entries are tuples, or lists of tuples)."""
    entry = diff[0] if isinstance(diff, list) else diff
    for part in entry[1:]:
        if isinstance(part, sa.Table):
            return str(part.name)
        table = getattr(part, "table", None)
        if isinstance(table, sa.Table):
            return str(table.name)
        if isinstance(part, str) and part in TABLES:
            return part
    return None


# ci_runs indexes that migration 0003 replaces (tested against revision 0001 alone, they differ)
LATER_INDEXES = {
    "ix_ci_runs_posted_at",
    "ix_ci_runs_project_posted_at",
    "ix_ci_runs_posted_at_id_ci_system_id_patchset_id_result",
    "ix_ci_runs_project_posted_at_id_ci_system_id_patchset_id_result",
    "ix_ci_runs_patchset_id_ci_system_id_posted_at",
}


def _later_index(diff: Any) -> bool:
    entry = diff[0] if isinstance(diff, list) else diff
    return entry[0] in ("add_index", "remove_index") and entry[1].name in LATER_INDEXES


def _schema_diff(connection: Connection) -> list[Any]:
    """Differences between models.py and a database at revision 0001, for this module's tables
    (other revisions add tables of their own, and indexes: :data:`LATER_INDEXES`)."""
    context = MigrationContext.configure(connection, opts={"compare_type": False})
    return [
        diff
        for diff in compare_metadata(context, m.Base.metadata)
        if _table_of(diff) in TABLES and not _later_index(diff)
    ]


def _head_schema_diff(connection: Connection) -> list[Any]:
    """Every difference (types included) between the models and a database at the head revision."""
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, m.Base.metadata))


async def _scalar(store: Store, statement: Any) -> Any:
    async with store.engine.connect() as conn:
        return (await conn.execute(statement)).scalar_one()


# -- schema ------------------------------------------------------------------------------------


async def test_full_migration_chain_reaches_head(db_url: str) -> None:
    await upgrade(db_url)
    engine = create_engine(db_url)
    try:
        async with engine.connect() as conn:
            assert TABLES | {"alembic_version"} <= await conn.run_sync(_tables)
            version = (await conn.execute(sa.text("SELECT version_num FROM alembic_version"))).scalar_one()
            assert version == head_revision()
    finally:
        await engine.dispose()


async def test_head_schema_matches_the_models(db_url: str) -> None:
    """All migrations together build exactly the tables, columns, types and indexes of the models."""
    await upgrade(db_url)
    engine = create_engine(db_url)
    try:
        async with engine.connect() as conn:
            assert await conn.run_sync(_head_schema_diff) == []
    finally:
        await engine.dispose()


@pytest.fixture
def store_revision_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of migrations/ holding only this module's revision (0001), so its upgrade and
    downgrade are tested on their own whatever later revisions do."""
    source = migrations_dir()
    target = tmp_path / "migrations"
    (target / "versions").mkdir(parents=True)
    for name in ("env.py", "script.py.mako"):
        shutil.copy(source / name, target / name)
    shutil.copy(source / "versions" / "0001_initial.py", target / "versions" / "0001_initial.py")
    monkeypatch.setenv("CIDASH_MIGRATIONS_DIR", str(target))
    return target


async def test_migrations_create_schema_from_empty_and_downgrade_to_base(
    db_url: str, store_revision_only: Path
) -> None:
    assert head_revision() == "0001"
    engine = create_engine(db_url)
    try:
        async with engine.connect() as conn:
            assert await conn.run_sync(_tables) == set()
        await upgrade(db_url)
        async with engine.connect() as conn:
            assert await conn.run_sync(_tables) == TABLES | {"alembic_version"}
            version = (await conn.execute(sa.text("SELECT version_num FROM alembic_version"))).scalar_one()
            assert version == "0001"
            assert await conn.run_sync(_schema_diff) == []  # models.py and the migration agree
        await upgrade(db_url)  # idempotent
        await downgrade(db_url)
        async with engine.connect() as conn:
            assert await conn.run_sync(_tables) <= {"alembic_version"}
        await upgrade(db_url)
        async with engine.connect() as conn:
            assert TABLES <= await conn.run_sync(_tables)
    finally:
        await engine.dispose()


async def test_alembic_cli_migrates_through_the_async_engine(db_url: str) -> None:
    root = REPO
    process = await asyncio.create_subprocess_exec(
        str(Path(sys.executable).parent / "alembic"),
        "-c",
        str(root / "alembic.ini"),
        "-x",
        f"url={db_url}",
        "upgrade",
        "head",
        cwd=root,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await process.communicate()
    assert process.returncode == 0, output.decode()
    engine = create_engine(db_url)
    try:
        async with engine.connect() as conn:
            version = (await conn.execute(sa.text("SELECT version_num FROM alembic_version"))).scalar_one()
            assert version == head_revision()
            assert TABLES <= await conn.run_sync(_tables)
    finally:
        await engine.dispose()


async def test_programmatic_migration_leaves_logging_alone(db_url: str) -> None:
    root_logger = logging.getLogger()
    handlers, level = list(root_logger.handlers), root_logger.level
    alembic_logger = logging.getLogger("alembic")
    alembic_state = (list(alembic_logger.handlers), alembic_logger.level, alembic_logger.disabled)
    await upgrade(db_url)
    assert (list(root_logger.handlers), root_logger.level) == (handlers, level)
    assert (list(alembic_logger.handlers), alembic_logger.level, alembic_logger.disabled) == alembic_state


async def test_store_refuses_an_unmigrated_database(db_url: str) -> None:
    with pytest.raises(ConfigError, match="run the migrations"):
        await Store.open(db_url)


async def test_engine_settings(store: Store) -> None:
    async with store.engine.connect() as conn:
        if store.engine.dialect.name == "sqlite":
            assert (await conn.exec_driver_sql("PRAGMA journal_mode")).scalar_one() == "wal"
            assert (await conn.exec_driver_sql("PRAGMA foreign_keys")).scalar_one() == 1
            assert (await conn.exec_driver_sql("PRAGMA busy_timeout")).scalar_one() >= 1000
        else:
            charset = (await conn.exec_driver_sql("SELECT @@character_set_connection")).scalar_one()
            assert charset == "utf8mb4"
            precision = await conn.exec_driver_sql(
                "SELECT DATETIME_PRECISION FROM information_schema.COLUMNS "
                "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'ci_runs' AND COLUMN_NAME = 'posted_at'"
            )
            assert precision.scalar_one() == 6


def test_mysql_urls_get_utf8mb4_and_unknown_drivers_are_refused() -> None:
    assert normalise_url("mysql+aiomysql://u@h/db").query["charset"] == "utf8mb4"
    assert normalise_url("mysql+aiomysql://u@h/db?charset=utf8").query["charset"] == "utf8"
    assert "charset" not in normalise_url("sqlite+aiosqlite:///x.db").query
    with pytest.raises(ConfigError):
        normalise_url("postgresql+asyncpg://u@h/db")


def test_migrations_dir_default_and_override(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert (migrations_dir() / "env.py").is_file()
    monkeypatch.setenv("CIDASH_MIGRATIONS_DIR", str(tmp_path))
    with pytest.raises(ConfigError, match="CIDASH_MIGRATIONS_DIR"):
        migrations_dir()
    (tmp_path / "env.py").write_text("")
    assert migrations_dir() == tmp_path


# -- runs ----------------------------------------------------------------------------------------


async def test_round_trip_of_a_run_with_jobs(store: Store) -> None:
    posted = T0.replace(microsecond=123456)
    comment = observed(HEADERED, source=Source.REST, message_id="m-1", posted_at=posted)
    jobs = (*JOBS, JobResult("grenade", "https://logs.example/4", "NODE_FAILURE", 12, detail="node request failed"))
    stats = await store.write_comments([(comment, parsed(jobs=jobs, vote=-1, pipeline="check"))])
    assert (stats.runs_inserted, stats.runs_duplicate, stats.runs_merged, stats.jobs_inserted) == (1, 0, 0, 4)
    [run] = await all_runs(store)
    assert (run.server, run.project, run.branch) == ("review", "openstack/nova", "master")
    assert (run.change_number, run.patchset_number, run.author) == (1000, 1, "acme-ci")
    assert run.posted_at == posted and run.posted_at.tzinfo is not None  # microseconds kept, aware UTC
    assert (run.result, run.vote, run.pipeline, run.message_id, run.source) == ("FAILURE", -1, "check", "m-1", "rest")
    assert run.jobs == jobs
    assert run.jobs[3].detail == "node request failed"
    assert run.latency_s == pytest.approx(1800.123456)
    assert await store.run_count() == 1
    assert await all_runs(store, "review") == [run]
    assert await all_runs(store, "elsewhere") == []
    dedup = await _scalar(store, sa.select(m.runs_t.c.dedup_key))
    assert dedup == f"{content_key(comment)}@{int(posted.timestamp())}"


async def test_only_result_comments_become_runs_but_every_comment_is_recorded(store: Store) -> None:
    human = observed("Looks good to me", author=HUMAN, change=7, patchset=2, status="NEW")
    start = observed("Starting check jobs.", change=7, patchset=2, posted_at=T0 + timedelta(seconds=5))
    stats = await store.write_comments([(human, human_parsed()), (start, parsed(CommentKind.START))])
    assert stats == comments_module.WriteStats(comments=2, noted_inserted=1)  # the start is kept in ci_comments
    assert await store.run_count() == 0
    assert await _scalar(store, sa.select(sa.func.count()).select_from(m.accounts_t)) == 2
    assert await _scalar(store, sa.select(m.changes_t.c.status).where(m.changes_t.c.number == 7)) == "NEW"
    assert (await patchset(store, "review", 7, 2)) is not None
    [ci] = await ci_systems(store)  # the START comment came from a CI
    assert (ci.account_key, ci.source, ci.confirmed) == ("acme-ci", "detected", False)


def _scenarios() -> dict[str, list[list[str]]]:
    # s: the stream copy (1 s late, whole seconds), r: the REST copy; one inner list per batch
    return {
        "stream-then-rest": [["s"], ["r"]],
        "rest-then-stream": [["r"], ["s"]],
        "twice-each-separate": [["s"], ["s"], ["r"], ["r"]],
        "twice-each-rest-first": [["r"], ["s"], ["r"], ["s"]],
        "same-batch-stream-first": [["s", "r", "s", "r"]],
        "same-batch-rest-first": [["r", "s", "r", "s"]],
        "mixed-batches": [["s", "s"], ["r", "s", "r"]],
    }


@pytest.mark.parametrize("scenario", list(_scenarios()))
async def test_copies_of_one_comment_become_one_run_with_the_rest_identity(store: Store, scenario: str) -> None:
    real = observed(HEADERED, posted_at=T0.replace(microsecond=400000))
    copies = {"s": stream_copy(real, delay_s=2), "r": rest_copy(real, "msg-1")}
    totals = [0, 0, 0]
    for batch in _scenarios()[scenario]:
        stats = await store.write_comments([(copies[name], parsed()) for name in batch])
        totals = [totals[0] + stats.runs_inserted, totals[1] + stats.runs_duplicate, totals[2] + stats.runs_merged]
    count = sum(len(batch) for batch in _scenarios()[scenario])
    assert sum(totals) == count
    assert totals[0] == 1
    assert totals[2] == (1 if _scenarios()[scenario][0][0] == "s" else 0)
    [run] = await all_runs(store)
    assert run.message_id == "msg-1"
    assert run.posted_at == real.posted_at
    assert run.latency_s == pytest.approx((real.posted_at - (T0 - timedelta(minutes=30))).total_seconds())
    assert len(run.jobs) == len(JOBS)
    assert await _scalar(store, sa.select(sa.func.count()).select_from(m.jobs_t)) == len(JOBS)
    dedup = await _scalar(store, sa.select(m.runs_t.c.dedup_key))
    assert dedup.endswith(f"@{int(real.posted_at.timestamp())}")


async def test_identical_comments_a_minute_apart_are_two_runs(store: Store) -> None:
    first = observed("Build failed.", posted_at=T0)
    second = observed("Build failed.", posted_at=T0 + timedelta(seconds=60))
    stats = await store.write_comments([(stream_copy(first), parsed()), (stream_copy(second), parsed())])
    assert stats.runs_inserted == 2
    # their REST copies arrive later and each finds its own stream row
    stats = await store.write_comments([(rest_copy(second, "m-2"), parsed()), (rest_copy(first, "m-1"), parsed())])
    assert (stats.runs_inserted, stats.runs_merged) == (0, 2)
    runs = await all_runs(store)
    assert [(run.message_id, run.posted_at) for run in runs] == [("m-1", T0), ("m-2", T0 + timedelta(seconds=60))]


async def test_two_rest_messages_with_the_same_text_are_two_runs_even_close_together(store: Store) -> None:
    first = rest_copy(observed("Build failed.", posted_at=T0), "m-1")
    second = rest_copy(observed("Build failed.", posted_at=T0 + timedelta(seconds=5)), "m-2")
    await store.write_comments([(first, parsed())])
    stats = await store.write_comments([(second, parsed()), (first, parsed())])
    assert (stats.runs_inserted, stats.runs_duplicate) == (1, 1)
    assert sorted(run.message_id or "" for run in await all_runs(store)) == ["m-1", "m-2"]


@pytest.mark.parametrize(
    ("gap", "runs"),
    [
        (DEDUP_WINDOW, 1),
        (DEDUP_WINDOW + timedelta(seconds=1), 2),
        (-DEDUP_WINDOW, 1),
        (-DEDUP_WINDOW - timedelta(microseconds=1), 2),
    ],
)
async def test_dedup_window_boundary(store: Store, gap: timedelta, runs: int) -> None:
    assert timedelta(seconds=20) == DEDUP_WINDOW
    real = observed("Build succeeded.", posted_at=T0)
    late = dataclasses.replace(real, posted_at=T0 + gap)  # the stream copy, `gap` away
    await store.write_comments([(late, parsed(result="SUCCESS"))])
    stats = await store.write_comments([(rest_copy(real, "m-1"), parsed(result="SUCCESS"))])
    assert await store.run_count() == runs
    assert stats.runs_merged == (1 if runs == 1 else 0)


async def test_stream_without_header_matches_rest_with_header(store: Store) -> None:
    rest = rest_copy(observed(HEADERED, posted_at=T0), "m-1")
    stream = stream_copy(rest, header=False)
    assert stream.message != rest.message and not stream.message.startswith("Patch Set")
    assert _body(stream.message) == _body(rest.message)
    await store.write_comments([(stream, parsed())])
    stats = await store.write_comments([(rest, parsed())])
    assert stats.runs_merged == 1
    [run] = await all_runs(store)
    assert run.message_id == "m-1"


async def test_same_text_on_other_patchset_author_change_or_server_is_another_run(store: Store) -> None:
    base = observed("Build failed.")
    variants = [
        base,
        dataclasses.replace(base, patchset=dataclasses.replace(base.patchset, number=2)),
        dataclasses.replace(base, author=ZUUL),
        dataclasses.replace(base, change_number=1001),
        dataclasses.replace(base, server="other"),
    ]
    stats = await store.write_comments([(variant, parsed()) for variant in variants])
    assert stats.runs_inserted == 5
    assert {run.server for run in await all_runs(store)} == {"review", "other"}


async def test_conflicting_writer_is_survived_by_retrying_once(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    rest = rest_copy(observed(HEADERED), "m-1")
    await store.write_comments([(rest, parsed())])
    real_candidates = comments_module.CommentWriter._candidates
    calls = 0

    async def blind_once(self: Any, conn: Any, reported: Any, table: Any) -> Any:
        nonlocal calls
        if table is m.runs_t:  # (the writer also looks for copies kept in ci_comments)
            calls += 1
            if calls == 1:  # as if another writer stored the run after we looked
                return {(r.server_id, r.content_key): [] for r in reported}, {}
        return await real_candidates(self, conn, reported, table)

    monkeypatch.setattr(comments_module.CommentWriter, "_candidates", blind_once)
    stats = await store.write_comments([(rest, parsed())])
    assert calls == 2
    assert stats.runs_duplicate == 1
    assert await store.run_count() == 1

    async def always_blind(self: Any, conn: Any, reported: Any, table: Any) -> Any:
        if table is not m.runs_t:
            return await real_candidates(self, conn, reported, table)
        return {(r.server_id, r.content_key): [] for r in reported}, {}

    monkeypatch.setattr(comments_module.CommentWriter, "_candidates", always_blind)
    with pytest.raises(IntegrityError):
        await store.write_comments([(rest, parsed())])
    assert await store.run_count() == 1


async def test_after_insert_hook_sees_the_new_runs_inside_the_transaction(store: Store) -> None:
    seen: list[tuple[int, int, str | None]] = []

    async def hook(conn: Any, runs: Any) -> str:
        stored = (await conn.execute(sa.select(sa.func.count()).select_from(m.runs_t))).scalar_one()
        seen.extend((run.id, stored, run.message_id) for run in runs)
        return f"{len(runs)} runs"

    store.after_insert = hook
    first = rest_copy(observed("Build failed.", posted_at=T0), "m-1")
    second = observed("Build failed.", posted_at=T0 + timedelta(minutes=5))
    stats = await store.write_comments([(first, parsed()), (second, parsed(jobs=())), (first, parsed())])
    assert stats.after_insert == "2 runs"
    ids = {run.message_id: run.id for run in await all_runs(store)}
    assert sorted(seen) == sorted([(ids["m-1"], 2, "m-1"), (ids[None], 2, None)])
    assert {(run.id, run.ci, run.server, len(run.jobs)) for run in stats.inserted} == {
        (ids["m-1"], "acme-ci", "review", len(JOBS)),
        (ids[None], "acme-ci", "review", 0),
    }
    stats = await store.write_comments([(first, parsed())])  # a duplicate inserts nothing
    assert (stats.inserted, stats.after_insert, len(seen)) == ((), None, 2)

    async def failing(conn: Any, runs: Any) -> None:
        raise RuntimeError("rollup failed")

    store.after_insert = failing
    with pytest.raises(RuntimeError, match="rollup failed"):
        await store.write_comments([(observed("Build failed.", change=77), parsed())])
    assert await store.run_count() == 2  # the batch rolled back with the hook
    assert await _scalar(store, sa.select(sa.func.count()).select_from(m.changes_t)) == 1


# -- changes and patch sets ------------------------------------------------------------------------


async def test_patchset_values_are_never_overwritten_with_none(store: Store) -> None:
    created = T0 - timedelta(hours=1)
    known = observed("Build failed.", created_at=created, kind="REWORK", revision="b" * 40)
    unknown = observed(
        "recheck", author=HUMAN, created_at=None, kind=None, revision=None, status=None, subject=None, branch=""
    )
    await store.write_comments([(known, parsed())])
    await store.write_comments([(unknown, human_parsed())])
    await store.write_comments([(unknown, human_parsed()), (known, parsed()), (unknown, human_parsed())])
    stored = await patchset(store, "review", 1000, 1)
    assert stored is not None
    assert (stored.created_at, stored.kind, stored.revision) == (created, "REWORK", "b" * 40)
    async with store.engine.connect() as conn:
        change = (await conn.execute(sa.select(m.changes_t))).one()
    assert (change.status, change.subject, change.branch) == ("NEW", "Fix the thing", "master")
    written = await _scalar(store, sa.select(m.changes_t.c.updated_at))
    await store.write_comments([(known, parsed())])  # nothing new: the row is not rewritten
    assert await _scalar(store, sa.select(m.changes_t.c.updated_at)) == written
    before = datetime.now(UTC)
    merged = observed("Build failed.", status="MERGED", posted_at=T0 + timedelta(hours=2))
    await store.write_comments([(merged, parsed())])
    assert await _scalar(store, sa.select(m.changes_t.c.status)) == "MERGED"
    updated = await _scalar(store, sa.select(m.changes_t.c.updated_at))
    assert updated.tzinfo is not None and updated >= before - timedelta(seconds=1) and updated > written


async def test_latency_is_computed_and_filled_when_the_patchset_time_arrives_later(store: Store) -> None:
    created = T0 - timedelta(minutes=10)
    await store.write_comments([(observed("Build failed.", created_at=created), parsed())])
    without = observed("Build failed.", change=2000, created_at=None, posted_at=T0 + timedelta(minutes=5))
    await store.write_comments([(without, parsed())])
    latencies = {run.change_number: run.latency_s for run in await all_runs(store)}
    assert latencies == {1000: pytest.approx(600.0), 2000: None}
    later = observed("Looks fine", author=HUMAN, change=2000, created_at=T0 - timedelta(minutes=1))
    await store.write_comments([(later, human_parsed())])
    latencies = {run.change_number: run.latency_s for run in await all_runs(store)}
    assert latencies == {1000: pytest.approx(600.0), 2000: pytest.approx(360.0)}


# -- CI systems ----------------------------------------------------------------------------------


async def test_detected_config_and_group_ci_systems(store: Store) -> None:
    detected = observed("Build failed.", author=THIRD_PARTY, posted_at=T0)
    zuul = observed("Build succeeded.", author=ZUUL, posted_at=T0 + timedelta(minutes=1))
    await store.write_comments([(detected, parsed()), (zuul, parsed(result="SUCCESS", ci="zuul"))])
    systems = {ci.account_key: ci for ci in await ci_systems(store)}
    assert {key: (ci.source, ci.confirmed) for key, ci in systems.items()} == {
        "acme-ci": ("detected", False),
        "zuul": ("detected", False),
    }
    assert systems["acme-ci"].first_seen == T0 and systems["acme-ci"].display_name == "ACME CI"

    configs = [
        CISystemConfig(account="zuul", display_name="OpenStack Zuul", owner="infra@openstack.org", reference=True),
        CISystemConfig(account="never-seen-ci", server="review", owner="ops@example.org"),
    ]
    await store.sync_ci_configs(configs, ["review"])
    group_member = AccountRef(account_id=77, username="group-ci", name="Group CI", email="group@example.org")
    await store.sync_group_members("review", [group_member, ZUUL])
    systems = {ci.account_key: ci for ci in await ci_systems(store, "review")}
    assert systems["zuul"].source == "config" and systems["zuul"].confirmed and systems["zuul"].is_reference
    assert (systems["zuul"].display_name, systems["zuul"].owner) == ("OpenStack Zuul", "infra@openstack.org")
    assert systems["never-seen-ci"].confirmed and systems["never-seen-ci"].last_seen is None
    assert (systems["group-ci"].source, systems["group-ci"].confirmed) == ("group", True)
    assert systems["group-ci"].owner == "group@example.org"
    assert (systems["acme-ci"].source, systems["acme-ci"].confirmed) == ("detected", False)

    # the collector keeps updating last_seen without touching what the operator set
    later = observed("Build succeeded.", author=ZUUL, posted_at=T0 + timedelta(hours=1), change=5)
    await store.write_comments([(later, parsed(result="SUCCESS", ci="zuul"))])
    zuul_row = {ci.account_key: ci for ci in await ci_systems(store)}["zuul"]
    assert (zuul_row.source, zuul_row.confirmed, zuul_row.last_seen) == ("config", True, T0 + timedelta(hours=1))
    assert zuul_row.first_seen == T0 + timedelta(minutes=1)

    # dropped from the config / the group: back to detected and unconfirmed
    await store.sync_ci_configs([], ["review"])
    await store.sync_group_members("review", [])
    systems = {ci.account_key: ci for ci in await ci_systems(store)}
    assert all(ci.source == "detected" and not ci.confirmed and not ci.is_reference for ci in systems.values())


async def test_detected_ci_joining_the_group_gets_confirmed(store: Store) -> None:
    await store.write_comments([(observed("Build failed."), parsed())])
    await store.sync_group_members("review", [THIRD_PARTY])
    [ci] = await ci_systems(store)
    assert (ci.source, ci.confirmed, ci.owner, ci.first_seen) == ("group", True, "ci@acme.example", T0)
    await store.write_comments([(observed("Build failed.", posted_at=T0 + timedelta(hours=1)), parsed())])
    [ci] = await ci_systems(store)
    assert (ci.source, ci.confirmed, ci.last_seen) == ("group", True, T0 + timedelta(hours=1))


# -- journal, dead letters, watermarks ---------------------------------------------------------


async def test_journal_purge_removes_only_old_entries(store: Store) -> None:
    now = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
    events = [
        (now - timedelta(days=20), "comment-added", int((now - timedelta(days=20)).timestamp()), '{"type":"x"}'),
        (now - timedelta(days=15), "patchset-created", None, '{"type":"y"}'),
        (now - timedelta(days=1), "comment-added", 1_764_000_000, '{"type":"z"}'),
        (now, "ref-updated", 10**20, '{"type":"w"}'),  # absurd eventCreatedOn is kept as NULL
    ]
    await store.journal_events("review", events)
    assert await _scalar(store, sa.select(sa.func.count()).select_from(m.journal_t)) == 4
    assert await store.purge_journal(now - timedelta(days=14)) == 2
    assert await store.purge_journal(now - timedelta(days=14)) == 0
    async with store.engine.connect() as conn:
        rows = (await conn.execute(sa.select(m.journal_t).order_by(m.journal_t.c.id))).all()
    assert [row.raw for row in rows] == ['{"type":"z"}', '{"type":"w"}']
    assert rows[0].event_created_on == datetime.fromtimestamp(1_764_000_000, UTC)
    assert rows[1].event_created_on is None


async def test_journal_purge_works_in_chunks(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    from cidash.store import journal

    monkeypatch.setattr(journal, "PURGE_CHUNK", 3)
    await store.journal_events("review", [(T0, "comment-added", None, str(i)) for i in range(10)])
    assert await store.purge_journal(T0 + timedelta(seconds=1)) == 10
    assert await _scalar(store, sa.select(sa.func.count()).select_from(m.journal_t)) == 0


async def test_dead_letters_keep_the_raw_bytes(store: Store) -> None:
    raw = b'{"type":"comment-added","comment":"caf\xc3\xa9 \xff\xfe broken"}\n'
    await store.dead_letter("review", "stream", "not-json: unexpected byte", raw)
    await store.dead_letters([(None, "rest", "bad change", "plain text 🚀"), ("review", "stream", "x" * 5000, b"")])
    assert await store.dead_letter_count() == 3
    assert await store.dead_letter_count(unresolved_only=True) == 3
    letters = {letter.source + letter.reason[:1]: letter for letter in await store.recent_dead_letters()}
    first = letters["streamn"]
    assert first.raw == raw.decode("utf-8", "replace") and "café" in first.raw and "\ufffd" in first.raw
    assert first.raw_length == len(raw)
    assert (first.server, first.resolved) == ("review", False)
    assert (letters["restb"].server, letters["restb"].raw, letters["restb"].raw_length) == (
        None,
        "plain text 🚀",
        len("plain text 🚀".encode()),
    )
    assert len(letters["streamx"].reason) == m.REASON_LEN and letters["streamx"].raw_length == 0


async def test_watermark_never_moves_backwards(store: Store) -> None:
    assert await store.get_watermark("review", "backfill") is None
    await store.set_watermark("review", "backfill", T0)
    await store.set_watermark("review", "backfill", T0 - timedelta(minutes=5))
    assert await store.get_watermark("review", "backfill") == T0
    later = T0 + timedelta(minutes=5, microseconds=250)
    await store.set_watermark("review", "backfill", later)
    await store.set_watermark("review", "backfill", later.replace(tzinfo=None) - timedelta(seconds=1))
    value = await store.get_watermark("review", "backfill")
    assert value == later and value is not None and value.tzinfo is not None
    await store.set_watermark("other", "backfill", T0 - timedelta(days=1))
    assert await store.get_watermark("other", "backfill") == T0 - timedelta(days=1)
    assert await store.get_watermark("review", "stream") is None


# -- text ----------------------------------------------------------------------------------------


async def test_unicode_and_a_60kb_comment_survive(store: Store) -> None:
    emoji = "Build failed 💥 ✗ — déjà vu 漢字 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 \U0001f9ea"
    big = "Build failed.\n\n" + "\n".join(f"- job-{i:05d} https://logs.example/{i} : FAILURE 😱" for i in range(1200))
    assert len(big.encode()) > 60_000
    author = AccountRef(username="ci-🤖", name="Ünïcödé CI 🤖", email="ci@exämple.org")
    lone = "broken surrogate \ud83d here"
    items = [
        (rest_copy(observed(emoji, author=author, subject="Fix 💥"), "m-emoji"), parsed(ci="ci-🤖")),
        (rest_copy(observed(big, change=2), "m-big"), parsed(jobs=[JobResult("job-😱", None, "FAILURE", 1)])),
        (rest_copy(observed(lone, change=3), "m-lone"), parsed()),
    ]
    stats = await store.write_comments(items)
    assert stats.runs_inserted == 3
    async with store.engine.connect() as conn:
        raws = dict((await conn.execute(sa.select(m.runs_t.c.message_id, m.runs_t.c.raw_comment))).all())
        subject = (await conn.execute(sa.select(m.changes_t.c.subject).where(m.changes_t.c.number == 1000))).scalar()
    assert raws["m-emoji"] == emoji
    assert raws["m-big"] == big
    assert raws["m-lone"] == "broken surrogate \ufffd here"
    assert subject == "Fix 💥"
    runs = {run.message_id: run for run in await all_runs(store)}
    assert runs["m-emoji"].author == "ci-🤖"
    assert runs["m-big"].jobs[0].name == "job-😱"
    # a key differing only in case or trailing space is another account (binary collation)
    others = [AccountRef(username="CI-🤖"), AccountRef(username="ci-🤖 ")]
    await store.write_comments([(observed(emoji, author=a, change=9), parsed()) for a in others])
    assert await _scalar(store, sa.select(sa.func.count()).select_from(m.accounts_t)) == 4


async def test_overlong_values_are_clipped_instead_of_failing_the_batch(store: Store) -> None:
    comment = observed("Build failed.", subject="s" * 5000, branch="b" * 400)
    job = JobResult("j" * 400, "https://" + "u" * 3000, "WEIRD" * 30, 10**12)
    stats = await store.write_comments([(comment, parsed(jobs=[job], pipeline="p" * 300, result="R" * 100))])
    assert stats.runs_inserted == 1
    [run] = await all_runs(store)
    assert len(run.branch) == m.NAME_LEN and len(run.jobs[0].name) == m.NAME_LEN
    assert run.jobs[0].duration_s is None and len(run.result) == m.RESULT_LEN
