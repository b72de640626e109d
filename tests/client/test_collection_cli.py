"""`cidash collection` against the real API over hand-built stream sessions and backfill passes
(tests/store/test_collection.py's history): one line per server, its gaps newest first with the
pass that covered each, 100 columns wide; --json is the API's document; an unknown server is a
one-line error."""

from __future__ import annotations

import asyncio
from pathlib import Path

import orjson

from cidash.api.app import create_app
from cidash.config import Settings
from cidash.store import Store
from tests.support.api import served
from tests.support.cli import invoke
from tests.support.collection import MIN, history, start_hour


async def test_collection_command(migrated_db_url: str, store: Store, tmp_path: Path) -> None:
    t0 = start_hour()
    ids = await history(store, t0)
    app = create_app(Settings(database_url=migrated_db_url), store, frontend_dir=tmp_path)
    window = ("--from", (t0 - MIN).isoformat(), "--to", (t0 + 250 * MIN).isoformat())
    async with served(app) as url:
        table = await asyncio.to_thread(invoke, "collection", *window, "--url", url, COLUMNS="100")
        as_json = await asyncio.to_thread(invoke, "collection", *window, "--json", "--url", url)
        unknown = await asyncio.to_thread(invoke, "collection", "--server", "nope", "--url", url)
    assert table.exit_code == 0, table.output
    lines = table.stdout.splitlines()
    assert max(len(line) for line in lines) <= 100, table.stdout
    (server_line,) = [line for line in lines if line.startswith("review ")]
    assert "down" in server_line and "94.0%" in server_line and "5m (1)" in server_line and "4/1/0" in server_line
    states = [word for line in lines for word in ("covered", "uncovered", "open") if f" {word} " in f"{line} "]
    assert states[-4:] == ["open", "covered", "uncovered", "covered"]  # the gaps, newest first
    assert f"pass #{ids['E']}" in table.stdout and f"pass #{ids['A']}" in table.stdout
    assert f"read up to {(t0 + 125 * MIN).strftime('%Y-%m-%d %H:%M')}" in table.stdout  # the uncovered gap's part
    document = orjson.loads(as_json.stdout)
    assert [g["covered_by"] for g in document["servers"][0]["gaps"]] == [ids["A"], None, ids["E"], None]
    assert unknown.exit_code == 1 and unknown.stderr.strip() == "cidash: error: no Gerrit server named 'nope'"
