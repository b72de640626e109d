"""Schema migrations (alembic) run from inside the application, on the async engines.

The migration scripts live in the repository's ``migrations/`` directory (found relative to this
file) or wherever ``CIDASH_MIGRATIONS_DIR`` points. Running them configures no logging: alembic
only writes to its own loggers, through whatever handlers the application installed.
"""

from __future__ import annotations

import os
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import pool
from sqlalchemy.engine import Connection

from cidash.errors import ConfigError
from cidash.store.engine import create_engine

MIGRATIONS_ENV = "CIDASH_MIGRATIONS_DIR"


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


async def _migrate(database_url: str, action: str, revision: str) -> None:
    engine = create_engine(database_url, poolclass=pool.NullPool)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(_run, action, revision)
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
