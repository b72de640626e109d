"""Column types shared by the models and the migrations (both engines, one schema).

* :class:`UTCDateTime`: naive UTC in the database (``DATETIME(6)`` on MySQL/MariaDB), aware UTC
  in Python. Aware values are converted to UTC on the way in; naive ones are taken as UTC.
* :class:`KeyString`: a ``VARCHAR`` compared byte for byte. MySQL's default utf8mb4 collations
  are case- and trailing-space-insensitive, which would merge ``Zuul`` with ``zuul`` in a unique
  key; keys get a binary NO PAD collation there (SQLite compares binary already).
* :class:`LongText`: ``TEXT`` on SQLite, ``MEDIUMTEXT`` (16 MiB) on MySQL/MariaDB.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import mysql
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.types import TypeEngine

MYSQL_DIALECTS = ("mysql", "mariadb")


def is_mysql(dialect: Dialect) -> bool:
    return dialect.name in MYSQL_DIALECTS


INT32_MAX = 2**31 - 1


def fit_int32(value: int | None) -> int | None:
    """`value` for an INTEGER column (32-bit on MySQL): None when it does not fit."""
    return value if value is None or -INT32_MAX <= value <= INT32_MAX else None


def to_naive_utc(value: datetime) -> datetime:
    """The database form of a datetime: UTC without tzinfo (naive input is taken as UTC)."""
    if value.tzinfo is None:
        return value
    return value.astimezone(UTC).replace(tzinfo=None)


def to_aware_utc(value: datetime) -> datetime:
    """The public form of a datetime: aware UTC (naive input is taken as UTC)."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


class UTCDateTime(sa.types.TypeDecorator[datetime]):
    impl = sa.DateTime
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if is_mysql(dialect):
            return dialect.type_descriptor(mysql.DATETIME(fsp=6))
        return dialect.type_descriptor(sa.DateTime())

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return to_naive_utc(value)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC)


def binary_collation(dialect: Dialect) -> str:
    """A case-sensitive, NO PAD collation for utf8mb4 on this server."""
    if getattr(dialect, "is_mariadb", False):
        return "utf8mb4_nopad_bin"
    version = getattr(dialect, "server_version_info", None) or (0,)
    return "utf8mb4_0900_bin" if tuple(version) >= (8, 0, 17) else "utf8mb4_bin"


def utc_param(moment: datetime) -> sa.BindParameter[datetime]:
    """`moment` as a bound parameter compared with UTCDateTime columns (stored naive UTC)."""
    return sa.bindparam(None, moment, type_=UTCDateTime())


class KeyString(sa.types.TypeDecorator[str]):
    impl = sa.String
    cache_ok = True

    def __init__(self, length: int) -> None:
        super().__init__(length)
        self.length = length

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if is_mysql(dialect):
            return dialect.type_descriptor(
                mysql.VARCHAR(self.length, charset="utf8mb4", collation=binary_collation(dialect))
            )
        return dialect.type_descriptor(sa.String(self.length))


class LongText(sa.types.TypeDecorator[str]):
    impl = sa.Text
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if is_mysql(dialect):
            return dialect.type_descriptor(mysql.MEDIUMTEXT(charset="utf8mb4"))
        return dialect.type_descriptor(sa.Text())


MAX_ID = 2**63 - 1
"""The largest value of an id column (signed 64-bit on both engines): a larger number from a
client is refused before it reaches SQL (SQLite cannot even bind it)."""
MIN_YEAR, MAX_YEAR = 1970, 9998
"""The instants the API takes, in UTC: far enough from year 1 and 9999 that no offset
(-14:00 to +14:00) pushes a valid one out of what ``datetime`` can hold."""


class OutOfRangeError(ValueError):
    """A number or instant outside what the store can hold (the message says which and why)."""


def bounded_id(value: int, what: str, *, minimum: int = 1) -> int:
    """`value` when it can be a stored id (`minimum`, normally 1, to 2^63 - 1)."""
    if not minimum <= value <= MAX_ID:
        raise OutOfRangeError(f"{what}: {_short(value)} is out of range ({minimum} to {MAX_ID})")
    return value


def bounded_utc(value: datetime, what: str) -> datetime:
    """`value` as aware UTC when its year, in UTC, is within MIN_YEAR..MAX_YEAR (naive is UTC)."""
    try:
        moment = to_aware_utc(value)
    except OverflowError:  # e.g. year 1 at +14:00 is before year 1 in UTC
        moment = None
    if moment is None or not MIN_YEAR <= moment.year <= MAX_YEAR:
        raise OutOfRangeError(f"{what}: {value.isoformat()} is out of range (years {MIN_YEAR} to {MAX_YEAR}, in UTC)")
    return moment


def _short(value: int) -> str:
    return str(value) if abs(value) < 10**30 else f"a {value.bit_length()}-bit number"


def id_type() -> sa.types.TypeEngine[int]:
    """BIGINT ids on MySQL (bulk upserts can burn auto-increment values); SQLite needs INTEGER."""
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


# -- statement helpers shared by the reads ---------------------------------------------------------


def group_concat_text(value: Any) -> str:
    """A ``group_concat`` result as text (some drivers hand it back as bytes)."""
    return value.decode() if isinstance(value, bytes | bytearray) else str(value)


_LONG_CONCAT = "cidash_long_group_concat"


async def allow_long_group_concat(conn: AsyncConnection) -> None:
    """MySQL cuts ``group_concat`` at 1024 bytes by default: raise it, once per pooled connection."""
    if is_mysql(conn.dialect) and not conn.info.get(_LONG_CONCAT):
        await conn.execute(sa.text("SET SESSION group_concat_max_len = 4194304"))
        conn.info[_LONG_CONCAT] = True
