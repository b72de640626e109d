"""Store fixtures (both engines) and small builders for store tests.

Expose them to every test module with ``pytest_plugins = ["tests.support.store_fixtures"]`` in
``tests/conftest.py``. Fixtures:

* ``db_url``: parametrized ``sqlite`` / ``mariadb``; an empty database per test. SQLite is a file
  in ``tmp_path``; on MariaDB each test gets its own ``cidash_t_<hex>`` database, dropped after
  the test. The server comes from ``CIDASH_TEST_MYSQL_URL`` (default
  ``mysql+aiomysql://cidash_test:cidash_test@127.0.0.1:3306/test``); if it is unreachable the test FAILS.
* ``migrated_db_url``: ``db_url`` after ``cidash.store.migrate.upgrade``.
* ``store``: an open :class:`cidash.store.Store` on ``migrated_db_url``.

PYTEST_DONT_REWRITE (test modules import the builders before pytest loads this as a plugin)
"""

from __future__ import annotations

import dataclasses
import os
import secrets
from collections.abc import AsyncIterator, Sequence
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import pytest_asyncio
import sqlalchemy as sa
from sqlalchemy import pool
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from cidash.domain.comments import AccountRef, ObservedComment, ObservedPatchSet, Source
from cidash.parsing import CommentKind, JobResult, ParsedComment
from cidash.store import Store
from cidash.store.migrate import upgrade
from tests.support.clock import T0

MYSQL_ADMIN_URL = os.environ.get(
    "CIDASH_TEST_MYSQL_URL", "mysql+aiomysql://cidash_test:cidash_test@127.0.0.1:3306/test"
)
ENGINES = ("sqlite", "mariadb")


async def _create_mysql_database() -> tuple[str, str]:
    admin = make_url(MYSQL_ADMIN_URL)
    name = f"cidash_t_{secrets.token_hex(6)}"
    engine = create_async_engine(admin, poolclass=pool.NullPool)
    try:
        async with engine.connect() as conn:
            await conn.execute(sa.text(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"))
    except Exception as exc:
        pytest.fail(
            f"MariaDB/MySQL is not reachable at {admin.render_as_string(hide_password=True)} ({exc!r}); "
            "start it (start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd) "
            "or point CIDASH_TEST_MYSQL_URL at a server",
            pytrace=False,
        )
    finally:
        await engine.dispose()
    return name, admin.set(database=name).render_as_string(hide_password=False)


async def _drop_mysql_database(name: str) -> None:
    engine = create_async_engine(MYSQL_ADMIN_URL, poolclass=pool.NullPool)
    try:
        async with engine.connect() as conn:
            await conn.execute(sa.text(f"DROP DATABASE IF EXISTS `{name}`"))
    finally:
        await engine.dispose()


@pytest_asyncio.fixture(params=ENGINES)
async def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """An empty database on each engine (see the module docstring)."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'cidash.db'}"
        return
    name, url = await _create_mysql_database()
    try:
        yield url
    finally:
        await _drop_mysql_database(name)


@pytest_asyncio.fixture
async def migrated_db_url(db_url: str) -> str:
    await upgrade(db_url)
    return db_url


@pytest_asyncio.fixture
async def store(migrated_db_url: str) -> AsyncIterator[Store]:
    opened = await Store.open(migrated_db_url)
    try:
        yield opened
    finally:
        await opened.close()


# -- builders ------------------------------------------------------------------------------------


ZUUL = AccountRef(account_id=22348, username="zuul", name="Zuul", email="zuul@openstack.org")
THIRD_PARTY = AccountRef(account_id=9001, username="acme-ci", name="ACME CI", email="ci@acme.example")
HUMAN = AccountRef(account_id=1000, username="alice", name="Alice", email="alice@example.org")
JOBS = (
    JobResult("tempest-full", "https://logs.example/1", "SUCCESS", 3600),
    JobResult("unit-py311", "https://logs.example/2", "FAILURE", 600),
    JobResult("pep8", None, "SUCCESS", None, voting=False),
)


def observed(
    message: str = "Build failed.\n\n- tempest-full https://logs.example/1 : FAILURE in 1h 00m 00s",
    *,
    server: str = "review",
    change: int = 1000,
    patchset: int = 1,
    author: AccountRef = THIRD_PARTY,
    posted_at: datetime = T0,
    source: Source = Source.STREAM,
    message_id: str | None = None,
    created_at: datetime | None = T0 - timedelta(minutes=30),
    kind: str | None = "REWORK",
    revision: str | None = "a" * 40,
    project: str = "openstack/nova",
    branch: str = "master",
    status: str | None = "NEW",
    subject: str | None = "Fix the thing",
) -> ObservedComment:
    return ObservedComment(
        server=server,
        project=project,
        branch=branch,
        change_number=change,
        change_id=f"I{change:040d}",
        patchset=ObservedPatchSet(number=patchset, created_at=created_at, kind=kind, revision=revision),
        author=author,
        posted_at=posted_at,
        message=message,
        source=source,
        message_id=message_id,
        change_status=status,
        change_url=f"https://review.example/c/{change}",
        subject=subject,
    )


def stream_copy(comment: ObservedComment, *, delay_s: int = 1, header: bool = True) -> ObservedComment:
    """What the SSH stream delivers for `comment`: no id, whole seconds, maybe no header."""
    posted = comment.posted_at.replace(microsecond=0) + timedelta(seconds=delay_s)
    message = comment.message if header else _strip_header(comment.message)
    return _replace(comment, posted_at=posted, source=Source.STREAM, message_id=None, message=message)


def rest_copy(comment: ObservedComment, message_id: str, *, posted_at: datetime | None = None) -> ObservedComment:
    return _replace(comment, message_id=message_id, source=Source.REST, posted_at=posted_at or comment.posted_at)


def _strip_header(message: str) -> str:
    return message.split("\n\n", 1)[1] if message.startswith("Patch Set ") else message


def _replace(comment: ObservedComment, **changes: object) -> ObservedComment:
    return dataclasses.replace(comment, **changes)  # type: ignore[arg-type]


def parsed(
    kind: CommentKind = CommentKind.RESULT,
    *,
    result: str | None = "FAILURE",
    jobs: Sequence[JobResult] = JOBS,
    is_ci: bool = True,
    ci: str | None = "acme-ci",
    vote: int | None = -1,
    pipeline: str | None = "check",
) -> ParsedComment:
    if kind != CommentKind.RESULT:
        return ParsedComment(kind=kind, is_ci=is_ci, ci=ci if is_ci else None, result=None, pipeline=None, vote=None)
    return ParsedComment(kind=kind, is_ci=is_ci, ci=ci, result=result, pipeline=pipeline, vote=vote, jobs=tuple(jobs))


def human_parsed() -> ParsedComment:
    return ParsedComment(kind=CommentKind.OTHER, is_ci=False, ci=None, result=None, pipeline=None, vote=None)
