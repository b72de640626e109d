"""Schema migrations (alembic) run from inside the application, on the async engines.

The migration scripts live in the repository's ``migrations/`` directory (found relative to this
file) or wherever ``CIDASH_MIGRATIONS_DIR`` points. Running them configures no logging: alembic
only writes to its own loggers, through whatever handlers the application installed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import pool
from sqlalchemy.engine import Connection, make_url

from cidash.errors import ConfigError, DatabaseUnavailableError
from cidash.store.engine import create_engine, writer_engine

MIGRATIONS_ENV = "CIDASH_MIGRATIONS_DIR"
MIGRATE_LOCK = "cidash:migrate"  # MySQL named lock: replicas starting together migrate one at a time
MIGRATE_LOCK_WAIT_S = 300

log = logging.getLogger(__name__)


def migrations_dir() -> Path:
    """The alembic script directory: ``$CIDASH_MIGRATIONS_DIR`` or ``<repo>/migrations``."""
    override = os.environ.get(MIGRATIONS_ENV)
    path = Path(override).expanduser() if override else Path(__file__).resolve().parents[3] / "migrations"
    if not (path / "env.py").is_file():
        raise ConfigError(f"no alembic migrations at {path}; set {MIGRATIONS_ENV} to the migrations directory")
    return path


def alembic_config() -> Config:
    """An alembic Config without an ini file (so alembic never touches logging)."""
    config = Config()
    config.set_main_option("script_location", str(migrations_dir()))
    return config


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def _run(connection: Connection, action: str, revision: str) -> None:
    config = alembic_config()
    config.attributes["connection"] = connection
    if action == "upgrade":
        command.upgrade(config, revision)
    else:
        command.downgrade(config, revision)


def _driver_error(exc: BaseException) -> str:
    """A database driver's error on one line: its class and message, without SQLAlchemy's
    statement dump and "Background on this error" link."""
    original = getattr(exc, "orig", None) or exc
    text = " ".join(str(original).split())
    return f"{type(original).__name__}: {text}" if text else type(original).__name__


def _unreachable(database_url: str, exc: BaseException) -> DatabaseUnavailableError:
    shown = make_url(database_url).render_as_string(hide_password=True)
    return DatabaseUnavailableError(f"cannot connect to the database at {shown}: {_driver_error(exc)}")


def _check_sqlite_directory(database_url: str) -> None:
    """SQLite creates its file but not the directory: say so before connecting (aiosqlite's failed
    connect also leaves a thread that prints a traceback when the loop closes)."""
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return
    directory = Path(url.database).expanduser().parent
    if not directory.is_dir():
        raise DatabaseUnavailableError(f"cannot create the SQLite database {url.database}: no directory {directory}")


async def _migrate(database_url: str, action: str, revision: str) -> None:
    _check_sqlite_directory(database_url)
    engine = create_engine(database_url, poolclass=pool.NullPool)
    mysql = engine.dialect.name in ("mysql", "mariadb")
    try:
        async with contextlib.AsyncExitStack() as stack:
            deadline = time.monotonic() + MIGRATE_LOCK_WAIT_S
            while True:
                try:
                    # SQLite: BEGIN IMMEDIATE takes the write lock first, so concurrent upgrades queue up
                    connection = await stack.enter_async_context(writer_engine(engine).begin())
                    break
                except (sa.exc.DBAPIError, OSError) as exc:  # not there, or refused us: one line, no traceback
                    if not mysql and "database is locked" in str(exc) and time.monotonic() < deadline:
                        continue  # another upgrade outlasted SQLite's busy timeout: keep queueing, as GET_LOCK does
                    raise _unreachable(database_url, exc) from None
            if mysql:
                locked = await connection.scalar(
                    sa.text("SELECT GET_LOCK(:name, :wait)"), {"name": MIGRATE_LOCK, "wait": MIGRATE_LOCK_WAIT_S}
                )
                if locked != 1:
                    raise ConfigError(f"another process held the {MIGRATE_LOCK} lock for {MIGRATE_LOCK_WAIT_S} s")
            await connection.run_sync(_run, action, revision)
            if mysql:
                await connection.execute(sa.text("SELECT RELEASE_LOCK(:name)"), {"name": MIGRATE_LOCK})
    finally:
        await engine.dispose()


async def upgrade(database_url: str, revision: str = "head") -> None:
    """Bring the schema at `database_url` up to `revision` (default: the newest)."""
    await _migrate(database_url, "upgrade", revision)


async def downgrade(database_url: str, revision: str = "base") -> None:
    """Undo migrations down to `revision` (default: ``base``, an empty database)."""
    await _migrate(database_url, "downgrade", revision)


def current_revision(connection: Connection) -> str | None:
    """The revision a database is at (None: never migrated); for ``conn.run_sync``."""
    return MigrationContext.configure(connection).get_current_revision()


async def wait_for_schema(database_url: str, *, poll_s: float = 2.0, log_every_s: float = 30.0) -> None:
    """Wait until the database is reachable and at the newest revision (replicas started with
    ``--no-migrate`` come up before the one that migrates). Says what it waits for, now and then."""
    head = head_revision()
    engine = create_engine(database_url, poolclass=pool.NullPool)
    loop = asyncio.get_running_loop()
    next_log = loop.time()
    try:
        while True:
            try:
                async with engine.connect() as connection:
                    current = await connection.run_sync(current_revision)
                if current == head:
                    return
                reason = f"the schema is at {current or 'nothing'}, this version needs {head}"
            except Exception as exc:  # the database may still be starting
                reason = f"the database is unreachable ({_driver_error(exc)})"
            if loop.time() >= next_log:
                log.warning("waiting: %s; run `cidash db upgrade` or start a replica without --no-migrate", reason)
                next_log = loop.time() + log_every_s
            await asyncio.sleep(poll_s)
    finally:
        await engine.dispose()
