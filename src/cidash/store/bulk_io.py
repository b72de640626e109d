"""Bulk INSERT, UPDATE and keyed SELECT without per-row Core overhead (the write path's inner loop).

Rows are plain tuples in the order of `columns`. Every value is fitted to its column on the way
in (strings cut to the VARCHAR length and made encodable; datetimes stored as naive UTC like
:class:`~cidash.store.types.UTCDateTime`), so one odd comment never fails a batch, and datetimes
come back aware UTC.

* SQLite: ``executemany`` of positional statements (sqlite3 loops in C); datetimes are sent in
  SQLAlchemy's own SQLite storage format so reads through Core see the same values.
* MySQL/MariaDB: multi-row ``INSERT ... VALUES (...), (...)``, ``UPDATE ... JOIN`` a derived
  table of new values, and ``SELECT ... WHERE (a, b) IN (...)``, with literals escaped
  as pymysql does (bar ``"``, or for NO_BACKSLASH_ESCAPES), at most :data:`MAX_STATEMENT_CHARS` per
  statement, sent on the transaction's own connection without client-side interpolation.
  aiomysql's executemany escapes each value through a generic dispatcher; that alone used more
  CPU than the server spends storing the rows.

Each (table, columns, dialect) gets a row formatter generated once (a plain f-string function),
which is several times faster than converting value by value. Driver errors are re-raised as
SQLAlchemy's (``IntegrityError`` ...), as Core would.
"""

from __future__ import annotations

import asyncio
import math
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, datetime
from functools import cache, lru_cache
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from cidash.domain.text import clean, clip
from cidash.store.types import UTCDateTime, is_mysql

MAX_STATEMENT_CHARS = 64_000  # a bigger row goes alone (max_allowed_packet >= 16 MiB); small enough to pipeline
UPDATE_CHUNK = 1_000
SELECT_CHUNK = 500
_NO_BACKSLASH_ESCAPES = 512  # SERVER_STATUS_NO_BACKSLASH_ESCAPES

Row = Sequence[Any]


# -- values --------------------------------------------------------------------------------------


@lru_cache(maxsize=1 << 14)
def _naive_text(value: datetime) -> str:
    """Naive UTC text of a datetime. Cached: a batch repeats the same few times (one receive time,
    events of the same second, patch set creation times) thousands of times."""
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value.isoformat(" ", "microseconds")


_SPECIAL = re.compile("[\\\\'\n\r\x00\x1a]")


def _escape(value: str) -> str:
    """A MySQL single-quoted literal's content, like pymysql.converters.escape_string except
    that ``"`` is left alone (only the quote in use needs escaping; JSON lines are full of
    double quotes). One regex probe for the usual plain value, else one C-speed replace per
    special character (str.translate leaves its fast path at the first newline and crawls
    through multi-line comments)."""
    if _SPECIAL.search(value) is None:
        return value
    return (
        value.replace("\\", "\\\\")
        .replace("'", "\\'")
        .replace("\n", "\\n")
        .replace("\r", "\\r")
        .replace("\x00", "\\0")
        .replace("\x1a", "\\Z")
    )


def _escaper(no_backslash_escapes: bool) -> Callable[[str], str]:
    if no_backslash_escapes:
        return lambda value: value.replace("'", "''")
    return _escape


def _kind(column: sa.Column[Any]) -> tuple[str, int | None]:
    kind = column.type
    if isinstance(kind, UTCDateTime | sa.DateTime):
        return "datetime", None
    if isinstance(kind, sa.Boolean):
        return "bool", None
    if isinstance(kind, sa.Integer):
        return "int", None
    if isinstance(kind, sa.Float):
        return "float", None
    length = getattr(kind, "length", None)
    return "str", length if isinstance(length, int) else None


def _fitter(length: int | None) -> Callable[[str], str]:
    if length is None:
        return clean

    def fit(value: str) -> str:
        if value.isascii() and len(value) <= length:
            return value
        return clip(value, length) or ""

    return fit


@cache
def _text_fitters(table: sa.Table, columns: tuple[str, ...]) -> tuple[Callable[[str], str] | None, ...]:
    kinds = [_kind(table.c[name]) for name in columns]
    return tuple(_fitter(length) if kind == "str" else None for kind, length in kinds)


def fitted(table: sa.Table, columns: tuple[str, ...], values: Row) -> tuple[Any, ...]:
    """`values` of `columns` as :func:`insert_rows` and :func:`update_rows` store them (text
    cut to its column and made encodable), to compare new values with stored ones."""
    return tuple(
        value if fit is None or value is None else fit(value)
        for fit, value in zip(_text_fitters(table, columns), values, strict=True)
    )


def _finite(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def _compile(source: str, env: dict[str, Any]) -> Callable[[Row], Any]:
    namespace = dict(env)
    exec(compile(source, "<cidash.store.bulk_io>", "exec"), namespace)
    function: Callable[[Row], Any] = namespace["row_function"]
    return function


@cache
def _row_function(table: sa.Table, columns: tuple[str, ...], style: str, no_backslash_escapes: bool) -> Any:
    """Generated once per (table, columns, style):

    * ``sqlite``: ``row -> (value, ...)`` ready for sqlite3;
    * ``values``: ``row -> "(lit,lit,...)"`` for MySQL;
    * ``aliased``: ``row -> "lit AS v0,lit AS v1,..."`` for a MySQL derived table.
    """
    env: dict[str, Any] = {
        "NULL": "NULL",
        "Q": "'",
        "naive": _naive_text,
        "finite": _finite,
        "escape": _escaper(no_backslash_escapes),
    }
    names = [f"v{index}" for index in range(len(columns))]
    parts = []
    for index, (name, v) in enumerate(zip(columns, names, strict=True)):
        kind, length = _kind(table.c[name])
        fitted = v
        if kind == "str":
            env[f"fit{index}"] = _fitter(length)
            # the usual short ASCII value skips the call
            limit = f" and len({v}) <= {length}" if length is not None else ""
            fitted = f"({v} if {v}.isascii(){limit} else fit{index}({v}))"
        if style == "sqlite":
            parts.append(
                {
                    "str": f"None if {v} is None else {fitted}",
                    "datetime": f"None if {v} is None else naive({v})",
                    "float": f"None if {v} is None else finite({v})",
                }.get(kind, v)
            )
            continue
        alias = f" AS v{index}" if style == "aliased" else ""
        parts.append(
            "{"
            + {
                "str": f"NULL if {v} is None else Q + escape({fitted}) + Q",
                "int": f"NULL if {v} is None else int({v})",
                "bool": f"NULL if {v} is None else (1 if {v} else 0)",
                "float": f"NULL if {v} is None or finite({v}) is None else repr(float({v}))",
                "datetime": f"NULL if {v} is None else Q + naive({v}) + Q",
            }[kind]
            + "}"
            + alias
        )
    unpack = f"    {', '.join(names)}, = row\n"
    if style == "sqlite":
        body = f"    return ({', '.join(parts)},)\n"
    elif style == "values":
        body = f'    return f"({",".join(parts)})"\n'
    else:
        body = f'    return f"{",".join(parts)}"\n'
    return _compile("def row_function(row):\n" + unpack + body, env)


def _reader(table: sa.Table, columns: Sequence[str], dialect: str) -> Callable[[Row], tuple[Any, ...]]:
    """Result row -> Python values (aware UTC datetimes, bools)."""
    converters: list[Callable[[Any], Any] | None] = []
    for name in columns:
        kind, _ = _kind(table.c[name])
        if kind == "datetime" and dialect == "sqlite":
            converters.append(lambda v: None if v is None else datetime.fromisoformat(v).replace(tzinfo=UTC))
        elif kind == "datetime":
            converters.append(lambda v: None if v is None else v.replace(tzinfo=UTC))
        elif kind == "bool":
            converters.append(lambda v: None if v is None else bool(v))
        else:
            converters.append(None)
    if all(convert is None for convert in converters):
        return tuple
    return lambda row: tuple([v if f is None else f(v) for f, v in zip(converters, row, strict=True)])


# -- MySQL plumbing --------------------------------------------------------------------------------


def _quote(conn: AsyncConnection, name: str) -> str:
    return conn.dialect.identifier_preparer.quote(name)


def _statements(prefix: str, parts: Iterable[str], suffix: str = "") -> Iterator[str]:
    """Join row literals into statements of at most MAX_STATEMENT_CHARS (one row at least)."""
    buffer: list[str] = []
    size = len(prefix) + len(suffix)
    for part in parts:
        if buffer and size + len(part) + 1 > MAX_STATEMENT_CHARS:
            yield prefix + ",".join(buffer) + suffix
            buffer, size = [], len(prefix) + len(suffix)
        buffer.append(part)
        size += len(part) + 1
    if buffer:
        yield prefix + ",".join(buffer) + suffix


async def _driver(conn: AsyncConnection) -> Any:
    raw = await conn.get_raw_connection()
    if raw.driver_connection is None:  # pragma: no cover - an open transaction has a connection
        raise RuntimeError("no driver connection")
    return raw.driver_connection


async def _mysql_rows(
    conn: AsyncConnection, table: sa.Table, columns: Sequence[str], style: str = "values"
) -> Callable[[Row], str]:
    driver = await _driver(conn)
    no_backslash = bool(driver.server_status & _NO_BACKSLASH_ESCAPES)
    function: Callable[[Row], str] = _row_function(table, tuple(columns), style, no_backslash)
    return function


async def _mysql_execute(conn: AsyncConnection, statements: Iterable[str], fetch: bool = False) -> list[Row]:
    """Run the statements in order. The next statement is built (`statements` may be a lazy
    generator) while the server executes the current one: the two cores work in parallel."""
    import aiomysql

    driver = await _driver(conn)
    rows: list[Row] = []
    cursor = await driver.cursor()
    try:
        queue = iter(statements)
        statement = next(queue, None)
        while statement is not None:
            running = asyncio.ensure_future(cursor.execute(statement))  # no args: no %-interpolation
            try:
                await asyncio.sleep(0)  # let it reach the wire
                following = next(queue, None)
            except BaseException:
                await asyncio.wait([running])  # never leave a query running on the connection
                raise
            try:
                await running
            except aiomysql.Error as exc:
                raise DBAPIError.instance(statement[:300], None, exc, aiomysql.Error) from exc
            if fetch:
                rows.extend(await cursor.fetchall())
            statement = following
    finally:
        await cursor.close()
    return rows


# -- the operations ----------------------------------------------------------------------------------


def can_return(conn: AsyncConnection) -> bool:
    """MariaDB >= 10.5 answers a multi-row ``INSERT ... RETURNING`` in the same round trip (the
    returned rows are matched by natural key, never by position). sqlite3's executemany cannot
    return rows, and MySQL has no RETURNING: callers read the new ids back with select_in."""
    dialect = conn.dialect
    version = getattr(dialect, "server_version_info", None) or (0,)
    return is_mysql(dialect) and bool(getattr(dialect, "is_mariadb", False)) and tuple(version) >= (10, 5)


def _returning(conn: AsyncConnection, columns: Sequence[str]) -> str:
    return " RETURNING " + ", ".join(_quote(conn, name) for name in columns) if columns else ""


async def insert_rows(
    conn: AsyncConnection,
    table: sa.Table,
    columns: Sequence[str],
    rows: Sequence[Row],
    returning: Sequence[str] = (),
) -> list[Row]:
    """Insert `rows`; with `returning` (only when :func:`can_return`), the new rows' values."""
    if not rows:
        return []
    names = ", ".join(_quote(conn, name) for name in columns)
    target = _quote(conn, table.name)
    if not is_mysql(conn.dialect):
        convert = _row_function(table, tuple(columns), "sqlite", False)
        marks = ", ".join("?" for _ in columns)
        await conn.exec_driver_sql(f"INSERT INTO {target} ({names}) VALUES ({marks})", [convert(row) for row in rows])
        return []
    literal = await _mysql_rows(conn, table, columns)
    statements = _statements(f"INSERT INTO {target} ({names}) VALUES ", map(literal, rows), _returning(conn, returning))
    return await _mysql_execute(conn, statements, fetch=bool(returning))


class RowFormat:
    """Rows formatted in two parts, so the part known early (a comment's text, a job's name and
    url...) can be formatted while the server is busy with earlier statements, and only the ids
    and other late values remain to format at insert time.

    Parts are opaque: literal text on MySQL, converted value tuples on SQLite.
    """

    def __init__(
        self,
        table: sa.Table,
        early: Sequence[str],
        late: Sequence[str],
        mysql: bool,
        no_backslash_escapes: bool = False,
    ) -> None:
        self.table, self.columns, self.mysql = table, (*early, *late), mysql
        style = "values" if mysql else "sqlite"
        self._early = _row_function(table, tuple(early), style, no_backslash_escapes)
        self._late = _row_function(table, tuple(late), style, no_backslash_escapes)

    def early(self, values: Row) -> Any:
        part = self._early(values)
        return part[1:-1] if self.mysql else part

    def row(self, early: Any, late: Row) -> Any:
        if self.mysql:
            return "(" + early + "," + self._late(late)[1:]
        return early + self._late(late)


async def row_format(conn: AsyncConnection, table: sa.Table, early: Sequence[str], late: Sequence[str]) -> RowFormat:
    if not is_mysql(conn.dialect):
        return RowFormat(table, early, late, mysql=False)
    driver = await _driver(conn)
    return RowFormat(
        table, early, late, mysql=True, no_backslash_escapes=bool(driver.server_status & _NO_BACKSLASH_ESCAPES)
    )


async def insert_formatted(
    conn: AsyncConnection, form: RowFormat, rows: Iterable[Any], returning: Sequence[str] = ()
) -> list[Row]:
    """Insert rows made by ``form.row(...)`` (a lazy iterable is formatted while the server works);
    with `returning` (only when :func:`can_return`), the new rows' values."""
    names = ", ".join(_quote(conn, name) for name in form.columns)
    target = _quote(conn, form.table.name)
    if form.mysql:
        statements = _statements(f"INSERT INTO {target} ({names}) VALUES ", rows, _returning(conn, returning))
        return await _mysql_execute(conn, statements, fetch=bool(returning))
    params = list(rows)
    if params:
        marks = ", ".join("?" for _ in form.columns)
        await conn.exec_driver_sql(f"INSERT INTO {target} ({names}) VALUES ({marks})", params)
    return []


async def update_rows(
    conn: AsyncConnection, table: sa.Table, columns: Sequence[str], rows: Sequence[tuple[int, Row]]
) -> None:
    """Set `columns` of each row (by id) to its values."""
    if not rows:
        return
    target = _quote(conn, table.name)
    key = _quote(conn, "id")
    if not is_mysql(conn.dialect):
        convert = _row_function(table, tuple(columns), "sqlite", False)
        assignments = ", ".join(f"{_quote(conn, name)} = ?" for name in columns)
        params = [(*convert(values), row_id) for row_id, values in rows]
        await conn.exec_driver_sql(f"UPDATE {target} SET {assignments} WHERE {key} = ?", params)
        return
    # UPDATE t JOIN (SELECT id, v0, ... UNION ALL SELECT ...) n ON t.id = n.id SET t.c = n.v0
    # (linear; CASE id WHEN ... makes the server walk every WHEN for every row)
    literal = await _mysql_rows(conn, table, columns, "aliased")
    sets = ", ".join(f"t.{_quote(conn, name)} = n.v{index}" for index, name in enumerate(columns))
    statements = []
    for start in range(0, len(rows), UPDATE_CHUNK):
        part = rows[start : start + UPDATE_CHUNK]
        derived = " UNION ALL ".join(f"SELECT {int(row_id)} AS id,{literal(values)}" for row_id, values in part)
        statements.append(f"UPDATE {target} AS t JOIN ({derived}) AS n ON t.{key} = n.id SET {sets}")
    await _mysql_execute(conn, statements)


async def select_in(
    conn: AsyncConnection,
    table: sa.Table,
    columns: Sequence[str],
    scope: str,
    key: str,
    keys: Sequence[tuple[Any, Any]],
) -> list[tuple[Any, ...]]:
    """`columns` of the rows whose ``(scope, key)`` is one of `keys` (one statement per chunk)."""
    if not keys:
        return []
    read = _reader(table, columns, conn.dialect.name)
    target = _quote(conn, table.name)
    names = ", ".join(_quote(conn, name) for name in columns)
    scope_name, key_name = _quote(conn, scope), _quote(conn, key)
    mysql = is_mysql(conn.dialect)
    pair_literal = await _mysql_rows(conn, table, (scope, key)) if mysql else None
    key_literal = await _mysql_rows(conn, table, (key,)) if mysql else None
    fit_pair = _row_function(table, (scope, key), "sqlite", False)  # keys fitted as they were stored
    rows: list[Row] = []
    for start in range(0, len(keys), SELECT_CHUNK):
        part = keys[start : start + SELECT_CHUNK]
        scopes = {scope_value for scope_value, _ in part}
        single = len(scopes) == 1
        if pair_literal is not None and key_literal is not None:
            if single:
                values = ",".join([key_literal((value,))[1:-1] for _, value in part])
                where = f"{scope_name} = {int(next(iter(scopes)))} AND {key_name} IN ({values})"
            else:
                where = f"({scope_name}, {key_name}) IN ({','.join(map(pair_literal, part))})"
            rows.extend(await _mysql_execute(conn, [f"SELECT {names} FROM {target} WHERE {where}"], fetch=True))
            continue
        fitted = [fit_pair(pair) for pair in part]
        if single:
            marks = ", ".join("?" for _ in part)
            where = f"{scope_name} = ? AND {key_name} IN ({marks})"
            params: list[Any] = [next(iter(scopes)), *(value for _, value in fitted)]
        else:
            marks = ", ".join("(?, ?)" for _ in part)
            where = f"({scope_name}, {key_name}) IN (VALUES {marks})"
            params = [value for pair in fitted for value in pair]
        result = await conn.exec_driver_sql(f"SELECT {names} FROM {target} WHERE {where}", tuple(params))
        rows.extend(result.all())
    return [read(row) for row in rows]
