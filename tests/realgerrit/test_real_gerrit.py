"""cidash against a real Gerrit (the version pinned in scripts/ensure-gerrit), started once per session.

The scenario of cidash.realgerrit.scenario is posted through Gerrit's REST API as the community's
accounts while `cidash serve` (the Runtime, in-process) watches over SSH and REST; what it stores
must equal what was posted, on both engines, also when its SSH session is cut half-way.
"""

from __future__ import annotations

import asyncio
import json
import os
import pty
import re
import select
import subprocess
import sys
import time
from pathlib import Path

import asyncssh
import pytest

from cidash.gerrit.rest import GerritRestClient
from cidash.realgerrit.community import REFERENCE, THIRD_PARTY, WATCHER
from cidash.realgerrit.drive import drive
from cidash.realgerrit.poster import Poster
from cidash.realgerrit.scenario import run_scenario
from cidash.realgerrit.writer import ident
from cidash.service.runtime import Runtime
from cidash.sim.world import World
from cidash.store import Store
from tests.support.fidelity import (
    CAPTURE_DIR,
    capture_rest,
    compare_shapes,
    events_by_type,
    load_capture,
    rest_pools,
    shape_of,
)
from tests.support.real_gerrit_fixtures import RealGerrit, compare_with_truth
from tests.support.stored import all_runs, ci_systems
from tests.support.wait import until, until_awaited

pytestmark = pytest.mark.timeout(300)


async def test_community_comes_from_the_real_server(real_gerrit: RealGerrit) -> None:
    """CI group members, their account details and `_more_changes` paging, as Gerrit serves them."""
    projects = await real_gerrit.new_projects("paging")
    poster = Poster(real_gerrit.community)
    try:
        for index in range(5):
            await poster.create_change("alice", projects[0], f"change {index}")
    finally:
        await poster.aclose()
    async with GerritRestClient.for_server(real_gerrit.server(projects)) as client:
        members = await client.group_members("Third-Party CI")
        pages = [page async for page in client.query_changes(f"project:{projects[0]}", page_size=2)]
    by_name = {member["username"]: member for member in members}
    assert set(by_name) == {person.username for person in THIRD_PARTY}  # not the admin who created it
    for person in THIRD_PARTY:
        member = by_name[person.username]
        assert member["name"] == person.name
        assert member.get("email") == person.email  # omitted, not null, for bots without one
        assert isinstance(member["_account_id"], int)
    assert [len(page) for page in pages] == [2, 2, 1]  # followed _more_changes twice
    assert len({change["_number"] for page in pages for change in page}) == 5


async def _run_and_compare(real_gerrit: RealGerrit, db_url: str, label: str, *, cut: bool) -> None:
    projects = await real_gerrit.new_projects(label)
    settings = real_gerrit.settings(db_url, projects)
    poster = Poster(real_gerrit.community)
    gap_from = None
    admin = poster.writer("admin")
    async with Runtime(settings, migrate=False) as runtime:
        collector = runtime.collectors[0]
        await until(lambda: collector.stream.stats.connected, 60, "the SSH stream to connect")
        await asyncio.wait_for(collector.backfilled.wait(), 60)
        backfills_before = collector.health.backfills

        async def cut_stream() -> None:
            """Gerrit's side ends cidash's session: deactivating the account closes it (Gerrit 3.10 does that
            itself) and keeps it from logging in again; close-connection takes any session left."""
            nonlocal gap_from
            listing = await real_gerrit.admin_ssh("gerrit show-connections --wide")
            sessions = [line.split()[0] for line in listing.splitlines() if f" {WATCHER} " in f" {line} "]
            assert sessions, f"cidash's SSH session is not in Gerrit's list:\n{listing}"
            await admin.delete(f"accounts/{ident(WATCHER)}/active")
            await real_gerrit.admin_ssh("gerrit close-connection " + " ".join(sessions))
            await until(lambda: not collector.stream.stats.connected, 30, "the stream to notice the cut")
            gap_from = len(poster.truth)

        try:
            try:
                await run_scenario(poster, projects, midpoint=cut_stream if cut else None)
            finally:
                if cut:  # the next test needs the account, whatever happened here
                    await admin.put(f"accounts/{real_gerrit.community.watcher.account_id}/active")
            if cut:
                await until(lambda: collector.stream.stats.reconnects >= 1, 150, "the stream to reconnect")
                await until(
                    lambda: collector.health.backfills > backfills_before, 90, "the backfill after the reconnect"
                )
            assert runtime.store is not None
            store = runtime.store
            want = len(poster.truth)

            async def delivered() -> bool:
                return len([r for r in await all_runs(store) if r.project in projects]) >= want

            await until_awaited(delivered, 60, "the stream to deliver every report", 0.2)
            result = await collector.backfill_now()  # the final word, as every 5 minutes in production
            assert result is not None, collector.health.last_error
            stored = [run for run in await all_runs(store) if run.project in projects]
            systems = {system.account_key: system for system in await ci_systems(store, "real")}
        finally:
            await poster.aclose()

    problems = compare_with_truth(poster.truth, stored)
    assert not problems, "\n".join(problems)
    assert len(poster.truth) == 25  # every report of the scenario
    # the CI group's members, with the owner contact from their account details on the real server
    for person in THIRD_PARTY:
        assert systems[person.username].source == "group"
        assert systems[person.username].owner == person.email
    assert systems[REFERENCE.username].is_reference
    assert all(run.message_id for run in stored), "every run has the REST message id after the backfill"
    from_rest = sum(run.source == "rest" for run in stored)
    if not cut:
        assert from_rest == 0, "with the stream up, every report arrived in real time"
    else:
        assert gap_from is not None
        assert from_rest == len(poster.truth) - gap_from > 0, "the reports posted in the gap came from the backfill"


async def test_scenario_stored_equals_truth(real_gerrit: RealGerrit, migrated_db_url: str) -> None:
    await _run_and_compare(real_gerrit, migrated_db_url, "clean", cut=False)


async def test_stream_cut_midway_backfill_recovers_the_gap(real_gerrit: RealGerrit, migrated_db_url: str) -> None:
    await _run_and_compare(real_gerrit, migrated_db_url, "cut", cut=True)


def _run_in_pty(command: list[str], env: dict[str, str], timeout_s: float) -> tuple[int, str]:
    """Run `command` with a terminal as stdout/stderr (rich draws its progress bar only on one)."""
    leader, follower = pty.openpty()
    process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=follower, stderr=follower, env=env)
    os.close(follower)
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        ready, _, _ = select.select([leader], [], [], 0.2)
        if ready:
            try:
                data = os.read(leader, 65536)
            except OSError:  # the child closed its side
                break
            if not data:
                break
            chunks.append(data)
        elif process.poll() is not None:
            break
    os.close(leader)
    try:
        status = process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
        raise AssertionError(f"{command} still running after {timeout_s} s") from None
    return status, b"".join(chunks).decode("utf-8", "replace")


async def test_cli_backfill_since_30d_from_the_real_gerrit(real_gerrit: RealGerrit, tmp_path: Path) -> None:
    """`cidash backfill --since 30d` alone (REST only, no stream) imports exactly what was posted."""
    projects = await real_gerrit.new_projects("cli")
    poster = Poster(real_gerrit.community)
    try:
        await run_scenario(poster, projects)
    finally:
        await poster.aclose()
    server = real_gerrit.server(projects)
    database = tmp_path / "cidash.db"
    config = tmp_path / "cidash.toml"
    config.write_text(
        f'database_url = "sqlite+aiosqlite:///{database}"\n\n[[servers]]\n'
        f'name = "real"\nhttp_url = "{server.http_url}"\nhttp_user = "{server.http_user}"\n'
        f'http_password = "{real_gerrit.community.watcher.password}"\nci_group = "{server.ci_group}"\n'
        f"projects = {list(projects)!r}\n\n"
        f'[[ci]]\naccount = "zuul"\nreference = true\n'.replace("'", '"')
    )
    env = {**os.environ, "COLUMNS": "100", "TERM": "xterm"}
    env.pop("CIDASH_CONFIG", None)
    cidash = str(Path(sys.executable).with_name("cidash"))
    status, output = await asyncio.to_thread(
        _run_in_pty, [cidash, "--config", str(config), "backfill", "--since", "30d"], env, 120
    )
    output = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", output)  # colours and cursor moves
    assert status == 0, output
    assert "━" in output, f"no progress bar drawn:\n{output}"
    assert re.search(r"real: 3 changes, \d+ comments, 25 new CI runs in", output), output

    store = await Store.open(f"sqlite+aiosqlite:///{database}")
    try:
        stored = await all_runs(store)
    finally:
        await store.close()
    problems = compare_with_truth(poster.truth, stored)
    assert not problems, "\n".join(problems)
    assert {run.source for run in stored} == {"rest"}


async def test_capture_for_simulator_fidelity(real_gerrit: RealGerrit) -> None:
    """Capture the real Gerrit's stream-events lines and REST answers during the scenario; they must
    have the structure of the committed captures (tests/sim/test_sim_fidelity.py holds the simulator to
    those). CIDASH_WRITE_REAL_GERRIT_CAPTURES=1 rewrites the committed captures instead."""
    projects = await real_gerrit.new_projects("capture")
    watcher = real_gerrit.community.watcher
    lines: list[str] = []
    async with asyncssh.connect(
        "127.0.0.1",
        real_gerrit.site.ssh_port,
        username=watcher.username,
        client_keys=[str(watcher.key_path)],
        known_hosts=str(real_gerrit.known_hosts),
    ) as connection:
        process = await connection.create_process("gerrit stream-events", encoding="utf-8")
        server_version = str(connection.get_extra_info("server_version"))

        async def read() -> None:
            async for line in process.stdout:
                lines.append(line.rstrip("\n"))

        reader = asyncio.create_task(read())
        poster = Poster(real_gerrit.community)
        try:
            for index in range(2):  # more open changes than one page holds: _more_changes
                await poster.create_change("zoe", projects[1], f"open change {index}")
            await run_scenario(poster, projects)  # its open change is the most recently updated
        finally:
            await poster.aclose()
        await until(lambda: sum('"change-abandoned"' in line for line in lines) >= 1, 30, "the last events")
        await asyncio.sleep(1)  # the point: what Gerrit sends after the abandon (ref updates) is captured too
        reader.cancel()
    change = poster.truth[0].change
    rest = await capture_rest(real_gerrit.site.url, watcher.username, watcher.password, change, projects[0])
    meta = {
        "gerrit": real_gerrit.site.version,
        "assembled_from": "gerrit-plugin-api + gerrit-acceptance-framework jars (Maven Central), --headless",
        "ssh_server_version": server_version,
    }
    events = events_by_type(lines)
    assert {"comment-added", "patchset-created", "ref-updated", "change-merged", "change-abandoned"} <= set(events)
    if os.environ.get("CIDASH_WRITE_REAL_GERRIT_CAPTURES") == "1":
        CAPTURE_DIR.mkdir(parents=True, exist_ok=True)
        (CAPTURE_DIR / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
        (CAPTURE_DIR / "stream-events.jsonl").write_text("".join(line + "\n" for line in lines), encoding="utf-8")
        (CAPTURE_DIR / "rest.json").write_text(json.dumps(rest, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    committed_meta, committed_lines, committed_rest = load_capture()
    assert committed_meta["gerrit"] == real_gerrit.site.version, "captures are of another Gerrit: rewrite them"
    problems: list[str] = []
    committed_events = events_by_type(committed_lines)
    for kind, fresh in events.items():
        problems += compare_shapes(kind, shape_of(committed_events.get(kind, [])), shape_of(fresh))
    for name, fresh in rest.items():
        old = committed_rest[name]
        if (old["status"], sorted(old["headers"])) != (fresh["status"], sorted(fresh["headers"])):
            problems.append(f"{name}: {old['status']} {old['headers']} is now {fresh['status']} {fresh['headers']}")
    fresh_pools, committed_pools = rest_pools(rest), rest_pools(committed_rest)
    for kind, objects in fresh_pools.items():
        problems += compare_shapes(kind, shape_of(committed_pools[kind]), shape_of(objects))
    assert not problems, "\n".join(problems)


async def test_drive_posts_the_simulated_world(real_gerrit: RealGerrit) -> None:
    """`cidash drive`: the world's changes and CI reports land in the real Gerrit as its accounts.
    (Last in this file: it adds the world's CIs to the shared server's CI group.)"""
    stats = await drive(real_gerrit.site.url, seed=3, rate=None, events=80)
    assert stats.failed == 0, stats.last_error
    assert stats.posted.get("change", 0) >= 3 and stats.posted.get("review", 0) >= 20, stats.posted
    async with GerritRestClient.for_server(real_gerrit.server(())) as client:
        members = {member["username"] for member in await client.group_members("Third-Party CI")}
        changes = [change async for page in client.query_changes("project:openstack/nova") for change in page]
    world = World(3)
    assert members & {ci.username for ci in world.third_party}, "the world's CIs joined the CI group"
    authors = {m["author"].get("username") for c in changes for m in c.get("messages", [])}
    assert authors & {ci.username for ci in world.cis}, "CI reports were posted as the CI accounts"
