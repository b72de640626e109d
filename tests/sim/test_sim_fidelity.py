"""The simulator against the committed captures of a real Gerrit (tests/data/real-gerrit-3.10/; no Java).

Structure only: for every stream-event type the simulator produces and every REST answer cidash
reads, key sets and order, value types, omitted fields, escaping, timestamp formats, the headers
a client looks at and the status codes of errors.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path
from typing import Any

import asyncssh
import pytest

from cidash.sim.runner import RunningSim, SimOptions
from tests.support.fidelity import (
    CAPTURE_DIR,
    capture_rest,
    compare_shapes,
    events_by_type,
    load_capture,
    raw_escaping_problems,
    rest_json,
    rest_pools,
    shape_of,
)
from tests.support.paths import REPO
from tests.support.sim_fixtures import client_key
from tests.support.wait import until

pytestmark = pytest.mark.timeout(120)

SIM_EVENT_TYPES = ("comment-added", "patchset-created", "ref-updated", "change-merged", "change-abandoned")
# Paths the real capture has that the simulator leaves out on purpose, with the reason.
SIM_MAY_LACK: dict[str, str] = {
    "$.submitter.email": "the simulator's submitter is Zuul, which has no e-mail (Gerrit omits it then too)",
    "$.messages[].accounts_in_message[]": "the simulator never deletes votes, so no message names an account",
    "$.accounts_in_message[]": "the same, in GET /changes/{id}/messages",
    "$.removed_from_attention_set.<id>": "the simulator's attention set is the owner only, nobody is removed",
}


async def _sim_capture(tmp_path: Path) -> tuple[list[str], dict[str, Any]]:
    # rate None: the hub waits for the reader instead of dropping (a loaded machine reads slower than
    # a fixed rate writes, and a dropped event would never arrive); this test is about shapes, not loss.
    options = SimOptions(seed=5, rate=None, events=4000, history=timedelta(hours=12), wait_for_clients=1)
    async with RunningSim(options) as sim:
        lines: list[str] = []
        async with asyncssh.connect(
            "127.0.0.1",
            sim.ssh_port,
            username="cidash",
            client_keys=[str(client_key(tmp_path))],
            known_hosts=None,
        ) as connection:
            process = await connection.create_process("gerrit stream-events", encoding="utf-8")
            ident = str(connection.get_extra_info("server_version"))

            async def read() -> None:
                async for line in process.stdout:
                    lines.append(line.rstrip("\n"))

            reader = asyncio.create_task(read())
            await asyncio.wait_for(sim.done.wait(), 60)
            await until(lambda: len(lines) >= sim.hub.published, 10, "every published event to be read")
            reader.cancel()
            assert sim.hub.dropped == 0, "the simulator dropped events in backpressure mode"
        world = sim.world
        change = max(world.changes.values(), key=lambda c: len(c.messages))  # type: ignore[attr-defined]
        rest = await capture_rest(sim.http_url, options.http_user, options.http_password, change.number, change.project)
    rest["ssh_server_version"] = ident
    return lines, rest


@pytest.fixture(scope="module")
def captures(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[str], dict[str, Any]]:
    return asyncio.run(_sim_capture(tmp_path_factory.mktemp("fidelity")))


def test_captures_are_of_the_pinned_real_gerrit() -> None:
    meta, lines, rest = load_capture()
    pinned = (REPO / "scripts" / "ensure-gerrit").read_text()
    assert f"GERRIT_VERSION={meta['gerrit']}\n" in pinned
    assert set(events_by_type(lines)) >= set(SIM_EVENT_TYPES)
    assert rest, f"no REST captures in {CAPTURE_DIR}"


def test_stream_events_have_the_real_structure(captures: tuple[list[str], dict[str, Any]]) -> None:
    _, real_lines, _ = load_capture()
    sim_lines, _ = captures
    real, sim = events_by_type(real_lines), events_by_type(sim_lines)
    problems: list[str] = []
    for kind in SIM_EVENT_TYPES:
        assert sim.get(kind), f"the simulator produced no {kind}"
        problems += compare_shapes(kind, shape_of(real[kind]), shape_of(sim[kind]), sim_may_lack=SIM_MAY_LACK)
    problems += raw_escaping_problems("real", real_lines) + raw_escaping_problems("simulator", sim_lines)
    assert any("\\u0027" in line or "\\u003c" in line for line in real_lines)
    assert not problems, "\n".join(problems)


def test_rest_answers_have_the_real_structure(captures: tuple[list[str], dict[str, Any]]) -> None:
    _, _, real = load_capture()
    _, sim = captures
    problems: list[str] = []
    for name, want in real.items():
        got = sim[name]  # (the real ones hold only REST answers)
        if got["status"] != want["status"]:
            problems.append(f"{name}: status real {want['status']}, simulator {got['status']}")
        if got["headers"] != want["headers"]:
            problems.append(f"{name}: headers real {want['headers']}, simulator {got['headers']}")
        if want["status"] == 200:
            problems += raw_escaping_problems(f"{name} (simulator)", [got["body"]])
        elif got["body"].rstrip("\n").split(":")[0] != want["body"].rstrip("\n").split(":")[0]:
            problems.append(f"{name}: error text real {want['body']!r}, simulator {got['body']!r}")
    real_pools, sim_pools = rest_pools(real), rest_pools(sim)
    # SSH identification: same shape and the same Apache MINA SSHD release as Gerrit 3.10
    real_ident = load_capture()[0]["ssh_server_version"]
    assert sim["ssh_server_version"].split(" ", 1)[1] == real_ident.split(" ", 1)[1]
    assert sim["ssh_server_version"].startswith("SSH-2.0-GerritCodeReview_")
    for kind, objects in real_pools.items():
        problems += compare_shapes(kind, shape_of(objects), shape_of(sim_pools[kind]), sim_may_lack=SIM_MAY_LACK)
    version = rest_json(sim["server_version"]["body"])
    assert isinstance(version, str) and isinstance(rest_json(real["server_version"]["body"]), str)
    assert not problems, "\n".join(problems)
