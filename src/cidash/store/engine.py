"""Async engines for the two supported databases, configured the same way everywhere.

* SQLite (``sqlite+aiosqlite://``): WAL, foreign keys, ``busy_timeout`` and ``synchronous=NORMAL``
  on every connection. pysqlite's implicit transactions are replaced by explicit ``BEGIN`` so
  that a write transaction can take the write lock up front (``BEGIN IMMEDIATE``, see
  :func:`writer_engine`): a deferred transaction that reads and then writes can fail at once with
  "database is locked" when another connection wrote in between, whatever the busy timeout.
* MySQL/MariaDB (``mysql+aiomysql://``, ``mariadb+aiomysql://``): ``charset=utf8mb4`` is added to
  the URL when absent; connections are recycled before the server's ``wait_timeout``.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from cidash.errors import ConfigError

SQLITE_BUSY_TIMEOUT_MS = 15_000
MYSQL_POOL_RECYCLE_S = 1800
_BEGIN_OPTION = "cidash_sqlite_begin"


_LITERAL_SAFE_CHARSETS = ("utf8mb4", "utf8", "utf8mb3")


def normalise_url(database_url: str | URL) -> URL:
    """Validate the scheme and add ``charset=utf8mb4`` to MySQL URLs that do not name one (another
    charset is refused)."""
    try:
        url = make_url(database_url)
    except Exception as exc:  # sqlalchemy raises ArgumentError with the URL in it
        raise ConfigError(f"invalid database URL: {type(exc).__name__}") from None
    backend = url.get_backend_name()
    if url.drivername == "sqlite+aiosqlite":
        return url
    if backend in ("mysql", "mariadb") and url.get_driver_name() == "aiomysql":
        charset = str(url.query.get("charset", "utf8mb4"))
        if charset.lower() not in _LITERAL_SAFE_CHARSETS:
            # store.bulk_io builds string literals itself, exact for UTF-8 only: in gbk or sjis a
            # character can end in the byte of a backslash
            raise ConfigError(f"database URL charset={charset}: cidash needs utf8mb4 (leave it out, it is the default)")
        return url.update_query_dict({"charset": charset})
    raise ConfigError(
        f"unsupported database driver {url.drivername!r}; use sqlite+aiosqlite, mysql+aiomysql or mariadb+aiomysql"
    )


def is_sqlite(engine: AsyncEngine) -> bool:
    return engine.dialect.name == "sqlite"


def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    # hand transaction control to SQLAlchemy's "begin" event below
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        # the busy timeout first: switching a new file to WAL needs its lock, which another
        # process opening it at the same moment may hold (replicas starting together)
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
    finally:
        cursor.close()


def _sqlite_begin(connection: Connection) -> None:
    mode = connection.get_execution_options().get(_BEGIN_OPTION, "DEFERRED")
    connection.exec_driver_sql(f"BEGIN {mode}")


def create_engine(database_url: str | URL, **kwargs: Any) -> AsyncEngine:
    """An :class:`AsyncEngine` for `database_url`, with the pragmas/charset cidash relies on."""
    url = normalise_url(database_url)
    options: dict[str, Any] = {"pool_pre_ping": True}
    if url.get_backend_name() != "sqlite":
        options["pool_recycle"] = MYSQL_POOL_RECYCLE_S
    options.update(kwargs)
    engine = create_async_engine(url, **options)
    if is_sqlite(engine):
        event.listen(engine.sync_engine, "connect", _sqlite_connect)
        event.listen(engine.sync_engine, "begin", _sqlite_begin)
    return engine


def writer_engine(engine: AsyncEngine) -> AsyncEngine:
    """The same engine (same pool) whose transactions take SQLite's write lock at BEGIN."""
    return engine.execution_options(**{_BEGIN_OPTION: "IMMEDIATE"})
