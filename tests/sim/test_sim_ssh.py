"""The simulator's SSH server against real clients: asyncssh and the OpenSSH `ssh` binary."""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import asyncssh
import orjson
import pytest

from cidash.gerrit.events import MAX_LINE_BYTES, StreamEvent
from cidash.sim.faults import FaultRequest, Faults
from cidash.sim.hub import MAX_EVENTS, EventHub
from cidash.sim.ssh import SshServerHandle, start_ssh_server
from cidash.sim.world import World
from tests.support.wait import until

GERRIT_IDENT = "SSH-2.0-GerritCodeReview_3.10.1 (APACHE-SSHD-2.12.0)"


def ev(n: int, type_: str = "comment-added") -> StreamEvent:
    return StreamEvent({"author": {"name": "CI <ci@example.com>"}, "n": n, "type": type_, "eventCreatedOn": n})


@dataclass
class Sim:
    hub: EventHub
    faults: Faults
    ssh: SshServerHandle
    key: asyncssh.SSHKey

    async def connect(self, key: asyncssh.SSHKey | None = None, **kwargs: Any) -> asyncssh.SSHClientConnection:
        return await asyncssh.connect(
            "127.0.0.1",
            self.ssh.port,
            username="ci-bot",
            client_keys=[key or self.key],
            known_hosts=None,
            agent_path=None,
            **kwargs,
        )

    async def wait_subscribers(self, count: int) -> None:
        await until(lambda: self.hub.subscriber_count == count, 5, f"{count} subscribers", 0.005)


class Collector(asyncssh.SSHClientSession[bytes]):
    """Splits stdout into lines; keeps stderr and the close."""

    def __init__(self) -> None:
        self.buffer = b""
        self.lines: list[bytes] = []
        self.stdout_bytes = 0
        self.stderr = b""
        self.changed = asyncio.Event()
        self.closed = asyncio.Event()

    def data_received(self, data: bytes, datatype: asyncssh.DataType) -> None:
        if datatype == asyncssh.EXTENDED_DATA_STDERR:
            self.stderr += data
        else:
            self.stdout_bytes += len(data)
            *complete, self.buffer = (self.buffer + data).split(b"\n")
            self.lines.extend(line + b"\n" for line in complete)
        self.changed.set()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed.set()
        self.changed.set()

    async def wait_lines(self, count: int, limit_s: float = 5.0) -> list[bytes]:
        async with asyncio.timeout(limit_s):
            while len(self.lines) < count:
                self.changed.clear()
                await self.changed.wait()
        return self.lines

    def events(self) -> list[dict[str, Any]]:
        return [orjson.loads(line) for line in self.lines]


async def open_stream(
    conn: asyncssh.SSHClientConnection, command: str = "gerrit stream-events"
) -> tuple[asyncssh.SSHClientChannel[bytes], Collector]:
    chan, session = await conn.create_session(Collector, command, encoding=None)
    assert isinstance(session, Collector)
    return chan, session


@pytest.fixture
def client_key() -> asyncssh.SSHKey:
    return asyncssh.generate_private_key("ssh-ed25519")


@pytest.fixture
async def sim(client_key: asyncssh.SSHKey) -> AsyncIterator[Sim]:
    faults = Faults()
    hub = EventHub(faults)
    handle = await start_ssh_server(hub, None, faults)
    try:
        yield Sim(hub, faults, handle, client_key)
    finally:
        hub.close()
        handle.close()
        await handle.wait_closed()


# -- identity --------------------------------------------------------------------------------------


async def test_identifies_like_gerrit(sim: Sim) -> None:
    async with await sim.connect() as conn:
        assert conn.get_extra_info("server_version") == GERRIT_IDENT
        assert sim.ssh.host_key_fingerprint.startswith("SHA256:")
        assert sim.ssh.host_key_fingerprint == sim.ssh.host_key.get_fingerprint("sha256")
        assert "=" not in sim.ssh.host_key_fingerprint  # OpenSSH prints it unpadded


async def test_host_key_is_saved_and_reused(tmp_path: Path, client_key: asyncssh.SSHKey) -> None:
    path = tmp_path / "host_key"
    faults = Faults()
    prints = []
    for _ in range(2):
        handle = await start_ssh_server(EventHub(), None, faults, host_key_path=path)
        prints.append(handle.host_key_fingerprint)
        handle.close()
        await handle.wait_closed()
    assert path.exists() and prints[0] == prints[1]
    assert asyncssh.read_private_key(str(path)).get_fingerprint("sha256") == prints[0]


# -- stream-events -------------------------------------------------------------------------------


async def test_stream_events_delivers_published_events(sim: Sim) -> None:
    async with await sim.connect() as conn:
        chan, stream = await open_stream(conn)
        await sim.wait_subscribers(1)
        events = [ev(1), ev(2, "patchset-created"), ev(3)]
        await sim.hub.publish(events)
        lines = await stream.wait_lines(3)
        assert lines == [event.to_line() for event in events]
        assert [StreamEvent.from_json(line).type for line in lines] == [
            "comment-added",
            "patchset-created",
            "comment-added",
        ]
        assert b"\\u003cci@example.com\\u003e" in lines[0]  # Gson escaping on the wire
        chan.close()
    await sim.wait_subscribers(0)  # the close unsubscribes


@pytest.mark.parametrize(
    "command",
    [
        "gerrit stream-events -s comment-added",
        "gerrit stream-events --subscribe comment-added",
        "gerrit stream-events --subscribe=comment-added -s ref-updated",
        "gerrit stream-events -s 'comment-added'",
    ],
)
async def test_subscribe_filters_exact_types(sim: Sim, command: str) -> None:
    async with await sim.connect() as conn:
        _, stream = await open_stream(conn, command)
        await sim.wait_subscribers(1)
        await sim.hub.publish(
            [ev(1, "patchset-created"), ev(2), ev(3, "comment-added-x"), ev(4), ev(5, "Comment-Added")]
        )
        await stream.wait_lines(2)
        await asyncio.sleep(0.1)  # the point: room for a third line that must not come
        assert [e["n"] for e in stream.events()] == [2, 4]


async def test_nothing_is_sent_while_idle(sim: Sim) -> None:
    async with await sim.connect() as conn:
        chan, stream = await open_stream(conn)
        await sim.wait_subscribers(1)
        await asyncio.sleep(0.5)  # the point: an idle half second in which nothing may be sent
        assert stream.stdout_bytes == 0 and stream.stderr == b""
        assert not chan.is_closing()
        await sim.hub.publish([ev(1)])
        assert len(await stream.wait_lines(1)) == 1


async def test_overflow_reports_dropped_output_then_resumes(sim: Sim) -> None:
    async with await sim.connect() as conn:
        _, stream = await open_stream(conn)
        await sim.wait_subscribers(1)
        # one publish call does not yield: the writer cannot drain, so the queue overflows
        await sim.hub.publish([ev(n) for n in range(MAX_EVENTS + 50)])
        assert sim.hub.dropped == 50
        await stream.wait_lines(MAX_EVENTS + 1)
        await sim.hub.publish([ev(1000), ev(1001)])
        await stream.wait_lines(MAX_EVENTS + 3)
        got = stream.events()
        assert got[0]["type"] == "dropped-output" and isinstance(got[0]["eventCreatedOn"], int)
        assert [e["n"] for e in got[1:]] == [*range(MAX_EVENTS), 1000, 1001]
        assert sum(e["type"] == "dropped-output" for e in got) == 1


async def test_a_client_that_stops_reading_gets_dropped_output(sim: Sim) -> None:
    async with await sim.connect() as conn:
        chan, stream = await conn.create_session(Collector, "gerrit stream-events", encoding=None, window=64 * 1024)
        assert isinstance(stream, Collector)
        await sim.wait_subscribers(1)
        chan.pause_reading()  # no more window adjusts: the server's writer blocks, its queue fills
        padding = "x" * 1000
        for start in range(0, 3000, 100):
            batch = [StreamEvent({"pad": padding, "n": n, "type": "comment-added"}) for n in range(start, start + 100)]
            await sim.hub.publish(batch)
            await asyncio.sleep(0.005)
        assert sim.hub.dropped > 0
        dropped = sim.hub.dropped
        chan.resume_reading()
        async with asyncio.timeout(10):
            await sim.hub.wait_drained()  # the writer catches up once the window opens again
        await sim.hub.publish([StreamEvent({"n": 9999, "type": "comment-added"})])
        async with asyncio.timeout(10):
            while not stream.lines or orjson.loads(stream.lines[-1]).get("n") != 9999:
                stream.changed.clear()
                await stream.changed.wait()
        got = stream.events()
        kinds = [e["type"] for e in got]
        assert kinds.count("dropped-output") == 1
        numbers = [e["n"] for e in got if e["type"] == "comment-added"]
        assert sim.hub.dropped == dropped  # the late event was not lost
        assert numbers == sorted(numbers) and len(numbers) + dropped == 3001
        gap = kinds.index("dropped-output")
        assert 0 < gap < len(got) - 1  # what was written before the loss, the marker, then the rest


async def test_events_without_subscriber_are_lost(sim: Sim) -> None:
    await sim.hub.publish([ev(1), ev(2)])
    async with await sim.connect() as conn:
        _, stream = await open_stream(conn)
        await sim.wait_subscribers(1)
        await sim.hub.publish([ev(3)])
        await stream.wait_lines(1)
        await asyncio.sleep(0.1)  # the point: room for the lost events, which must not come
        assert [e["n"] for e in stream.events()] == [3]
        assert sim.hub.unheard == 2


async def test_ctrl_c_ends_the_stream(sim: Sim) -> None:
    async with await sim.connect() as conn:
        chan, _ = await open_stream(conn)
        await sim.wait_subscribers(1)
        chan.write(b"\x03")
        async with asyncio.timeout(5):
            await chan.wait_closed()
        assert chan.get_exit_status() == 130
        await sim.wait_subscribers(0)


async def test_stdin_eof_does_not_end_the_stream(sim: Sim) -> None:
    async with await sim.connect() as conn:
        chan, stream = await open_stream(conn)
        await sim.wait_subscribers(1)
        chan.write_eof()
        await asyncio.sleep(0.1)  # the point: the server has seen the EOF (and must keep streaming)
        await sim.hub.publish([ev(7)])
        assert [orjson.loads(line)["n"] for line in await stream.wait_lines(1)] == [7]


async def test_keepalive_is_answered(sim: Sim) -> None:
    async with await sim.connect(keepalive_interval=0.1, keepalive_count_max=2) as conn:
        _, stream = await open_stream(conn)
        await sim.wait_subscribers(1)
        await asyncio.sleep(0.8)  # ~8 keepalives; unanswered ones would have closed the connection
        assert not stream.closed.is_set()
        await sim.hub.publish([ev(1)])
        assert len(await stream.wait_lines(1)) == 1


# -- other commands --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("command", "stderr"),
    [
        ("gerrit foo", b"fatal: gerrit: foo: not found\n"),
        ("gerrit review-all --now", b"fatal: gerrit: review-all: not found\n"),
        ("ls -la", b"fatal: ls: not found\n"),
        ("gerrit stream-events --foo", b'fatal: "--foo" is not a valid option\n'),
        ("gerrit stream-events extra", b"fatal: No argument is allowed: extra\n"),
        ("gerrit stream-events -s", b'fatal: Option "--subscribe (-s)" takes an operand\n'),
    ],
)
async def test_errors_are_fatal_lines_with_status_1(sim: Sim, command: str, stderr: bytes) -> None:
    async with await sim.connect() as conn:
        result = await conn.run(command, encoding=None)
        assert result.exit_status == 1
        assert result.stderr == stderr
        assert result.stdout == b""
    assert sim.hub.subscriber_count == 0


async def test_gerrit_version(sim: Sim) -> None:
    async with await sim.connect() as conn:
        result = await conn.run("gerrit version", encoding=None)
        assert (result.exit_status, result.stdout, result.stderr) == (0, b"gerrit version 3.10.1\n", b"")


@pytest.fixture
async def world_sim(client_key: asyncssh.SSHKey, request: pytest.FixtureRequest) -> AsyncIterator[Sim]:
    world = World(5, legacy_2x=getattr(request, "param", False))
    world.generate_history(timedelta(hours=12))
    faults = Faults()
    hub = EventHub(faults)
    handle = await start_ssh_server(hub, world, faults)
    try:
        yield Sim(hub, faults, handle, client_key)
    finally:
        handle.close()
        await handle.wait_closed()


async def test_gerrit_query_ends_with_a_stats_line(world_sim: Sim) -> None:
    async with await world_sim.connect() as conn:
        result = await conn.run("gerrit query --format=JSON status:open limit:2", encoding=None)
    assert result.exit_status == 0 and result.stderr == b""
    lines = [orjson.loads(line) for line in result.stdout.splitlines()]
    assert len(lines) == 3
    assert lines[-1]["type"] == "stats" and lines[-1]["rowCount"] == 2
    assert all(change["open"] is True and isinstance(change["number"], int) for change in lines[:2])


async def test_gerrit_query_errors_go_to_stderr(world_sim: Sim) -> None:
    async with await world_sim.connect() as conn:
        result = await conn.run("gerrit query --format=JSON --start", encoding=None)
    assert result.exit_status == 1 and result.stdout == b""
    assert result.stderr.startswith(b"fatal: ") and result.stderr.endswith(b"\n")


@pytest.mark.parametrize("world_sim", [True], indirect=True)
async def test_legacy_world_identifies_as_gerrit_2(world_sim: Sim) -> None:
    async with await world_sim.connect() as conn:
        assert conn.get_extra_info("server_version").startswith("SSH-2.0-GerritCodeReview_2.")
        result = await conn.run("gerrit version", encoding=None)
        assert result.stdout.startswith(b"gerrit version 2.")
        query = await conn.run("gerrit query --format=JSON status:open limit:1", encoding=None)
        change = orjson.loads(query.stdout.splitlines()[0])
        assert isinstance(change["number"], str)  # Gerrit <= 2.13 sent numbers as strings


async def test_interactive_shell_is_refused(sim: Sim) -> None:
    async with await sim.connect() as conn:
        result = await conn.run(encoding=None)  # no command: a shell request
        assert result.exit_status == 127
        assert b"Hi ci-bot, you have successfully connected over SSH." in result.stderr
        assert b"Unfortunately, interactive shells are disabled." in result.stderr
        assert f"git clone ssh://ci-bot@127.0.0.1:{sim.ssh.port}/REPOSITORY_NAME.git".encode() in result.stderr


# -- faults ----------------------------------------------------------------------------------------


async def test_drop_all_closes_every_session(sim: Sim) -> None:
    conns = [await sim.connect() for _ in range(2)]
    try:
        streams = [(await open_stream(conn))[1] for conn in conns]
        await sim.wait_subscribers(2)
        sim.faults.apply(FaultRequest(drop_ssh=True))
        async with asyncio.timeout(5):
            for conn, stream in zip(conns, streams, strict=True):
                await conn.wait_closed()
                await stream.closed.wait()
        await sim.wait_subscribers(0)
        assert sim.ssh.connection_count == 0 and sim.ssh.dropped == 2
        assert sim.faults.counts["ssh_drop"] == 1
        async with await sim.connect() as conn:  # new connections are welcome again
            assert (await conn.run("gerrit version")).exit_status == 0
    finally:
        for conn in conns:
            conn.close()


async def test_refusal_window(sim: Sim) -> None:
    sim.faults.apply(FaultRequest(refuse_ssh_s=30))
    with pytest.raises((OSError, asyncssh.Error)):
        async with asyncio.timeout(5):
            await sim.connect()
    assert sim.faults.counts["ssh_refused"] == 1 and sim.ssh.refused == 1
    sim.faults.apply(FaultRequest(refuse_ssh_s=0))
    async with await sim.connect() as conn:
        assert (await conn.run("gerrit version")).exit_status == 0


async def test_authorized_keys_restrict_clients(tmp_path: Path, client_key: asyncssh.SSHKey) -> None:
    allowed = tmp_path / "authorized_keys"
    allowed.write_bytes(client_key.export_public_key())
    faults = Faults()
    handle = await start_ssh_server(EventHub(), None, faults, authorized_keys=allowed)
    try:
        sim = Sim(EventHub(), faults, handle, client_key)
        async with await sim.connect() as conn:
            assert (await conn.run("gerrit version")).exit_status == 0
        stranger = asyncssh.generate_private_key("ssh-ed25519")
        with pytest.raises(asyncssh.PermissionDenied):
            await sim.connect(stranger)
    finally:
        handle.close()
        await handle.wait_closed()


async def test_any_key_is_accepted_without_authorized_keys(sim: Sim) -> None:
    for key in (asyncssh.generate_private_key("ssh-ed25519"), asyncssh.generate_private_key("ssh-rsa", key_size=2048)):
        async with await sim.connect(key) as conn:
            assert (await conn.run("gerrit version")).exit_status == 0


async def test_password_auth_is_not_offered(sim: Sim) -> None:
    with pytest.raises(asyncssh.PermissionDenied):
        await asyncssh.connect(
            "127.0.0.1", sim.ssh.port, username="u", password="secret", client_keys=None, known_hosts=None
        )


async def test_injected_lines_reach_the_client(sim: Sim) -> None:
    sim.faults.apply(FaultRequest(malformed_rate=1.0, truncated_rate=1.0, oversized_rate=1.0))
    async with await sim.connect() as conn:
        _, stream = await open_stream(conn)
        await sim.wait_subscribers(1)
        await sim.hub.publish([ev(1), ev(2), ev(3)])
        lines = await stream.wait_lines(12, limit_s=10)
    assert sim.faults.counts == {"malformed": 3, "truncated": 3, "oversized": 3}
    real = [line for line in lines if line in {ev(n).to_line() for n in (1, 2, 3)}]
    assert real == [ev(1).to_line(), ev(2).to_line(), ev(3).to_line()]
    assert sum(len(line) > MAX_LINE_BYTES for line in lines) == 3
    broken = [line for line in lines if line not in real and len(line) <= MAX_LINE_BYTES]
    assert len(broken) == 6
    for line in broken:
        with pytest.raises(ValueError):
            StreamEvent.from_json(line)


async def test_dropped_output_fault_over_ssh(sim: Sim) -> None:
    async with await sim.connect() as conn:
        _, stream = await open_stream(conn)
        await sim.wait_subscribers(1)
        sim.faults.apply(FaultRequest(dropped_output=2))
        await sim.hub.publish([ev(1), ev(2), ev(3)])
        await stream.wait_lines(2)
        got = stream.events()
        assert [e["type"] for e in got] == ["dropped-output", "comment-added"]
        assert got[1]["n"] == 3


# -- the real OpenSSH client -----------------------------------------------------------------------


async def test_openssh_client_streams_events(sim: Sim, tmp_path: Path) -> None:
    ssh = shutil.which("ssh") or "/usr/bin/ssh"
    keygen = shutil.which("ssh-keygen") or "/usr/bin/ssh-keygen"
    assert os.access(ssh, os.X_OK), "the OpenSSH client is required for this test"
    key = tmp_path / "id_ed25519"
    made = await asyncio.create_subprocess_exec(
        keygen, "-q", "-t", "ed25519", "-N", "", "-f", str(key), stdout=asyncio.subprocess.DEVNULL
    )
    assert await made.wait() == 0
    proc = await asyncio.create_subprocess_exec(
        ssh,
        "-p",
        str(sim.ssh.port),
        "-o",
        "StrictHostKeyChecking=no",
        "-o",
        "UserKnownHostsFile=/dev/null",
        "-o",
        "BatchMode=yes",
        "-o",
        "LogLevel=ERROR",
        "-i",
        str(key),
        "user@127.0.0.1",
        "gerrit stream-events",
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        await sim.wait_subscribers(1)
        events = [ev(n) for n in range(200)]
        await sim.hub.publish(events[:100])
        await asyncio.sleep(0.01)  # two writes apart: the client reads across them
        await sim.hub.publish(events[100:])
        assert proc.stdout is not None
        async with asyncio.timeout(10):
            lines = [await proc.stdout.readline() for _ in range(200)]
        assert lines == [event.to_line() for event in events]
        assert all(StreamEvent.from_json(line).type == "comment-added" for line in lines)
    finally:
        if proc.returncode is None:
            proc.terminate()
        await proc.wait()
    await sim.wait_subscribers(0)
