"""store.bulk_io's hand-made MySQL literals are the one path from untrusted comment text to SQL: a
property test sends arbitrary text (quotes, backslashes, NUL, \\x1a, odd Unicode, very long values)
through its insert, update and keyed select into MariaDB, with and without NO_BACKSLASH_ESCAPES,
and into SQLite, and reads back exactly what went in (after the documented fitting: VARCHAR
lengths, lone surrogates as U+FFFD)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from cidash.domain.text import clean, clip
from cidash.errors import ConfigError
from cidash.store import bulk_io
from cidash.store.engine import create_engine, normalise_url
from cidash.store.types import KeyString, LongText
from tests.support.store_fixtures import _create_mysql_database, _drop_mysql_database

SHORT = 64
metadata = sa.MetaData()
scratch = sa.Table(
    "escaping_scratch",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("scope", sa.Integer, nullable=False),
    sa.Column("k", KeyString(SHORT), nullable=False),  # compared byte for byte, as every key is
    sa.Column("short", sa.String(SHORT)),
    sa.Column("long", LongText),
    mysql_charset="utf8mb4",
)

SPECIALS = [
    *("'", "''", "\\", "\\\\", "\\'", "'\\", '"', "`", "\x00", "\x1a", "\n", "\r", "\t", "\b", "\x7f", "\x85"),
    *("%", "_", "\\%", "\\_", "\\0", "\\Z", "\\n", "\\x27", "0x27", "' OR '1'='1", "'); DROP TABLE x; --"),
    *(" ", "  ", "\u00a0", "\ufeff", "\u2028", "\ufffd", "\ufffe", "😀", "\U0010ffff", "é", "e\u0301", "ß", "İ"),
    *("＇", "ʼ", "\u02bc", "¥", "₩", "\u5c5c", "\ud800", "\udfff"),  # lookalikes of ' and \, lone surrogates
    "'\\" * 17_000,  # over MAX_STATEMENT_CHARS once escaped: a statement of its own
]
texts = st.lists(st.one_of(st.text(max_size=12), st.sampled_from(SPECIALS)), max_size=10).map("".join)


@pytest_asyncio.fixture(params=["sqlite", "mariadb", "mariadb-no-backslash-escapes"])
async def engine_and_mode(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[tuple[AsyncEngine, str]]:
    if request.param == "sqlite":
        engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'scratch.db'}")
        name = None
    else:
        name, url = await _create_mysql_database()
        engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(metadata.create_all)
        yield engine, request.param
    finally:
        await engine.dispose()
        if name is not None:
            await _drop_mysql_database(name)


async def _set_mode(conn: AsyncConnection, mode: str) -> None:
    if mode == "sqlite":
        return
    if mode.endswith("no-backslash-escapes"):
        await conn.exec_driver_sql("SET SESSION sql_mode = CONCAT(@@sql_mode, ',NO_BACKSLASH_ESCAPES')")
    else:
        await conn.exec_driver_sql("SET SESSION sql_mode = REPLACE(@@sql_mode, 'NO_BACKSLASH_ESCAPES', '')")
    driver = await bulk_io._driver(conn)
    # the mode the literals are built for is the one the server says it is in
    assert bool(driver.server_status & bulk_io._NO_BACKSLASH_ESCAPES) == mode.endswith("no-backslash-escapes")


async def _stored(conn: AsyncConnection) -> list[tuple[int, str, str | None, str | None]]:
    rows = await conn.execute(sa.select(scratch.c.id, scratch.c.k, scratch.c.short, scratch.c.long).order_by("id"))
    return [tuple(row) for row in rows]  # type: ignore[misc]


@settings(max_examples=30, deadline=None, print_blob=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(values=st.lists(st.tuples(texts, texts, texts), min_size=1, max_size=6), updates=st.lists(texts, min_size=2))
async def test_any_text_round_trips_through_the_bulk_path(
    engine_and_mode: tuple[AsyncEngine, str], values: list[tuple[str, str, str]], updates: list[str]
) -> None:
    engine, mode = engine_and_mode
    rows = [(index, 1, key, short, long) for index, (key, short, long) in enumerate(values)]
    fitted = [(index, clip(key, SHORT), clip(short, SHORT), clean(long)) for index, _, key, short, long in rows]
    async with engine.begin() as conn:
        await _set_mode(conn, mode)
        await conn.execute(scratch.delete())
        await bulk_io.insert_rows(conn, scratch, ("id", "scope", "k", "short", "long"), rows)
        assert await _stored(conn) == fitted

        changed = [(index, (updates[0], updates[1] + str(index))) for index, *_ in rows]
        await bulk_io.update_rows(conn, scratch, ("short", "long"), changed)
        assert await _stored(conn) == [
            (index, key, clip(short, SHORT), clean(long))
            for (index, key, _, _), (_, (short, long)) in zip(fitted, changed, strict=True)
        ]

        keys = [(1, key) for _, _, key, _, _ in rows] + [(1, updates[0])]
        found = await bulk_io.select_in(conn, scratch, ("id",), "scope", "k", keys)
        wanted = {clip(key, SHORT) for _, key in keys}
        assert sorted(row[0] for row in found) == [index for index, key, _, _ in fitted if key in wanted]
        several_scopes = await bulk_io.select_in(conn, scratch, ("id",), "scope", "k", [*keys, (2, updates[0])])
        assert sorted(row[0] for row in several_scopes) == sorted(row[0] for row in found)


def test_only_utf8_connections_are_allowed() -> None:
    """The literals are exact for UTF-8 (no byte of a multi-byte character is 0x5c or 0x27); a
    connection charset such as gbk or sjis would let a character end in a backslash byte."""
    assert normalise_url("mysql+aiomysql://u@h/db").query["charset"] == "utf8mb4"
    assert normalise_url("mysql+aiomysql://u@h/db?charset=utf8mb4").query["charset"] == "utf8mb4"
    for charset in ("gbk", "sjis", "big5", "cp932", "latin1"):
        with pytest.raises(ConfigError, match="utf8mb4"):
            normalise_url(f"mysql+aiomysql://u@h/db?charset={charset}")
