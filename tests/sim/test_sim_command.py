"""`cidash sim` (command.py) and the simulator runner (runner.py)."""

from __future__ import annotations

import asyncio
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Awaitable, Callable, Iterator
from datetime import timedelta
from pathlib import Path

import asyncssh
import httpx
import orjson
import pytest
import typer
from typer.testing import CliRunner

from cidash.gerrit.events import StreamEvent
from cidash.gerrit.wire import strip_xssi
from cidash.sim.command import parse_rate, parse_span, sim
from cidash.sim.runner import RunningSim, SimError, SimInfo, SimOptions, run_simulator
from tests.support.paths import REPO


def make_app() -> typer.Typer:
    app = typer.Typer(add_completion=False)

    @app.callback()
    def main() -> None:  # a group, like cli.py, so "sim" is a sub-command
        pass

    app.command("sim")(sim)
    return app


@pytest.fixture
def busy_port() -> Iterator[int]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(1)
    try:
        yield int(sock.getsockname()[1])
    finally:
        sock.close()


# -- argument errors: one line on stderr, exit 2 ---------------------------------------------------


def bad_args(tmp_path: Path) -> list[tuple[list[str], str]]:
    garbage = tmp_path / "garbage"
    garbage.write_text("this is not a key\n")
    return [
        (["--rate", "fast"], "--rate"),
        (["--rate", "-3"], "--rate"),
        (["--ssh-port", "-1"], "--ssh-port"),
        (["--ssh-port", "70000"], "--ssh-port"),
        (["--http-port", "http"], "--http-port"),
        (["--history", "7x"], "--history"),
        (["--history", "d"], "--history"),
        (["--events", "many"], "--events"),
        (["--duration", "-1"], "--duration"),
        (["--malformed-rate", "1.5"], "--malformed-rate"),
        (["--refuse-ssh", "soon"], "--refuse-ssh"),
        (["--seed", "x"], "--seed"),
        (["--authorized-keys", str(tmp_path / "missing")], "does not exist"),
        (["--authorized-keys", str(garbage)], "does not parse"),
        (["--host-key", str(garbage)], "cannot read host key"),
        (["--host-key", str(tmp_path / "no-such-dir" / "key")], "--host-key"),
        (["--ssh-port", "2222", "--http-port", "2222"], "both 2222"),
        (["--pregenerate"], "--pregenerate"),
    ]


@pytest.mark.parametrize("case", range(18))
def test_bad_arguments_are_one_line_and_exit_2(tmp_path: Path, case: int) -> None:
    args, expected = bad_args(tmp_path)[case]
    result = CliRunner().invoke(make_app(), ["sim", *args])
    assert result.exit_code == 2, result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("cidash sim: error: ")
    assert expected in lines[0]
    assert "Traceback" not in result.output
    assert result.stdout == ""


def test_every_bad_argument_case_is_run(tmp_path: Path) -> None:
    assert len(bad_args(tmp_path)) == 18


@pytest.mark.parametrize("which", ["--ssh-port", "--http-port"])
def test_port_in_use_is_one_line_and_exit_2(busy_port: int, which: str) -> None:
    other = "--http-port" if which == "--ssh-port" else "--ssh-port"
    args = ["sim", which, str(busy_port), other, "0", "--events", "0", "--exit-when-done"]
    result = CliRunner().invoke(make_app(), args)
    assert result.exit_code == 2, result.output
    what = "SSH" if which == "--ssh-port" else "HTTP"
    assert result.stderr.splitlines() == [f"cidash sim: error: {what} port {busy_port} on 127.0.0.1 is already in use"]


def test_parsers() -> None:
    assert parse_rate("max") is None and parse_rate("MAX") is None
    assert parse_rate("2.5") == 2.5
    assert parse_span("7d") == timedelta(days=7)
    assert parse_span("90m") == timedelta(minutes=90)
    assert parse_span("2w") == timedelta(weeks=2)
    assert parse_span("30s") == timedelta(seconds=30)
    assert parse_span("1.5h") == timedelta(minutes=90)


# -- the command in a subprocess ---------------------------------------------------------------------


def test_subprocess_run_prints_ports_and_exits_when_done(tmp_path: Path) -> None:
    code = "import sys, typer; from cidash.sim.command import sim; typer.run(sim)"
    host_key = tmp_path / "host_key"
    cmd = [sys.executable, "-c", code, "--ssh-port", "0", "--http-port", "0", "--events", "50", "--rate", "max"]
    cmd += ["--exit-when-done", "--host-key", str(host_key)]
    proc = subprocess.run(cmd, capture_output=True, timeout=120, cwd=REPO, text=True)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    ssh = re.search(r"SSH\s+port\s+(\d+)", out)
    http = re.search(r"HTTP port\s+(\d+)", out)
    assert ssh and http and int(ssh.group(1)) > 0 and int(http.group(1)) > 0
    assert "user admin" in out and "password secret" in out
    fingerprint = asyncssh.read_private_key(str(host_key)).get_fingerprint("sha256")
    assert fingerprint in out
    assert f"ssh -p {ssh.group(1)} user@127.0.0.1 gerrit stream-events" in out
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signal_stops_the_simulator_gracefully(signum: int) -> None:
    code = "import typer; from cidash.sim.command import sim; typer.run(sim)"
    cmd = [sys.executable, "-c", code, "--ssh-port", "0", "--http-port", "0", "--rate", "20"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)
    try:
        assert proc.stdout is not None
        http_port = None
        for _ in range(20):
            match = re.search(r"HTTP port\s+(\d+)", proc.stdout.readline())
            if match:
                http_port = int(match.group(1))
                break
        assert http_port is not None
        stats = httpx.get(f"http://127.0.0.1:{http_port}/__sim/stats", timeout=10).json()
        assert stats["done"] is False  # --rate 20 with no --events: emits until stopped
        proc.send_signal(signum)
        assert proc.wait(timeout=30) == 0
        assert proc.stderr is not None and "Traceback" not in proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


# -- RunningSim (in process) ------------------------------------------------------------------------


class ScriptedWorld:
    """A tiny world: publishes `count` numbered comment-added events."""

    def __init__(self, count: int = 10) -> None:
        self.base_url = "http://example.invalid"
        self.version = "3.10.1"
        self.count = count
        self.histories: list[timedelta] = []
        self.changes: dict[int, object] = {}  # what the REST app's /__sim/stats reads
        self.truth: list[object] = []
        self.message_count = 0
        self.events_emitted = 0

    def generate_history(self, span: timedelta) -> None:
        self.histories.append(span)

    def next_activity(self) -> list[StreamEvent]:
        return [StreamEvent({"n": 0, "type": "comment-added", "eventCreatedOn": 1})]

    async def run(
        self,
        publish: Callable[[list[StreamEvent]], Awaitable[None]],
        *,
        rate: float | None,
        events: int | None,
        duration: float | None,
    ) -> int:
        total = events if events is not None else self.count
        for n in range(total):
            await publish([StreamEvent({"n": n, "type": "comment-added", "eventCreatedOn": 1})])
            if rate is not None:
                await asyncio.sleep(1 / rate)
        return total


async def connect(sim: RunningSim) -> asyncssh.SSHClientConnection:
    key = asyncssh.generate_private_key("ssh-ed25519")
    return await asyncssh.connect(
        "127.0.0.1", sim.ssh_port, username="u", client_keys=[key], known_hosts=None, agent_path=None
    )


async def read_events(process: asyncssh.SSHClientProcess[bytes], count: int) -> list[dict[str, object]]:
    got: list[dict[str, object]] = []
    async with asyncio.timeout(20):
        while len(got) < count:
            got.append(orjson.loads(await process.stdout.readline()))
    return got


async def test_running_sim_streams_waits_for_clients_and_keeps_serving() -> None:
    world = ScriptedWorld()
    options = SimOptions(rate=None, events=300, wait_for_clients=1, history=timedelta(days=1))
    async with RunningSim(options, world=world) as sim:
        assert world.histories == [timedelta(days=1)]
        assert world.base_url == f"http://127.0.0.1:{sim.http_port}"
        await asyncio.sleep(0.1)  # the point: time to publish, which it must not use without a client
        assert not sim.done.is_set() and sim.hub.published == 0  # held until a client listens
        async with await connect(sim) as conn:
            process = await conn.create_process("gerrit stream-events", encoding=None)
            got = await read_events(process, 300)
            assert [e["n"] for e in got] == list(range(300))  # backpressure: nothing dropped
            async with asyncio.timeout(5):
                await sim.done.wait()
            assert sim.emitted == 300 and sim.hub.dropped == 0
            process.close()
        async with await connect(sim) as conn:  # still serving after the emission
            result = await conn.run("gerrit version", encoding=None)
            assert result.stdout == b"gerrit version 3.10.1\n"
        async with httpx.AsyncClient(base_url=sim.http_url, auth=("admin", "secret")) as http:
            stats = (await http.get("/__sim/stats")).json()
        assert stats["published"] == 300 and stats["done"] is True
    assert sim.hub.subscriber_count == 0


async def test_running_sim_with_the_real_world_and_rest() -> None:
    options = SimOptions(rate=200.0, events=40, seed=3, history=timedelta(hours=6))
    async with RunningSim(options) as sim:
        async with await connect(sim) as conn:
            process = await conn.create_process("gerrit stream-events -s comment-added", encoding=None)
            got = await read_events(process, 3)
            assert all(e["type"] == "comment-added" for e in got)
            query = await conn.run("gerrit query --format=JSON status:open limit:2", encoding=None)
            assert query.exit_status == 0, query.stderr
            lines = [orjson.loads(line) for line in query.stdout.splitlines()]
            assert lines[-1]["type"] == "stats" and lines[-1]["rowCount"] == len(lines) - 1 == 2
        async with httpx.AsyncClient(base_url=sim.http_url) as http:
            denied = await http.get("/a/changes/?q=status:open&n=1")
            assert denied.status_code == 401
            ok = await http.get("/a/changes/?q=status:open&n=1", auth=("admin", "secret"))
            assert ok.status_code == 200 and ok.text.startswith(")]}'\n")
            assert len(orjson.loads(strip_xssi(ok.text))) == 1


async def test_rest_fault_endpoint_drives_the_ssh_side() -> None:
    async with RunningSim(SimOptions(rate=None), world=ScriptedWorld(0)) as sim:
        async with await connect(sim) as conn, httpx.AsyncClient(base_url=sim.http_url) as http:
            process = await conn.create_process("gerrit stream-events", encoding=None)
            await sim.hub.wait_for_subscribers(1)
            answer = await http.post("/__sim/faults", json={"drop_ssh": True, "dropped_output": 1})
            assert answer.status_code == 200
            async with asyncio.timeout(5):
                await conn.wait_closed()
            with pytest.raises((asyncssh.Error, OSError)):  # an abrupt drop, like a network failure
                await process.stdout.read()
            assert sim.faults.pending_drops == 1 and sim.ssh.dropped == 1


async def test_running_sim_applies_start_faults() -> None:
    options = SimOptions(refuse_ssh_s=30, rest_429_s=30, malformed_rate=0.5)
    async with RunningSim(options, world=ScriptedWorld(0)) as sim:
        assert sim.faults.ssh_refused() and sim.faults.rest_status() == 429
        assert sim.faults.malformed_rate == 0.5
        with pytest.raises((OSError, asyncssh.Error)):
            async with asyncio.timeout(5):
                await connect(sim)


async def test_running_sim_port_in_use(busy_port: int) -> None:
    with pytest.raises(SimError, match=f"SSH port {busy_port} on 127.0.0.1 is already in use"):
        async with RunningSim(SimOptions(ssh_port=busy_port), world=ScriptedWorld()):
            pass


class Ready:
    """The `ready` callback of run_simulator, awaitable."""

    def __init__(self) -> None:
        self.info: SimInfo | None = None
        self.event = asyncio.Event()

    def __call__(self, info: SimInfo) -> None:
        self.info = info
        self.event.set()

    async def wait(self) -> SimInfo:
        async with asyncio.timeout(20):
            await self.event.wait()
        assert self.info is not None
        return self.info


async def test_run_simulator_exit_when_done_waits_for_the_reader() -> None:
    ready = Ready()
    options = SimOptions(rate=None, events=500, wait_for_clients=1, exit_when_done=True)
    task = asyncio.create_task(run_simulator(options, ready=ready))
    info = await ready.wait()
    assert info.host_key_fingerprint.startswith("SHA256:") and info.http_user == "admin"
    key = asyncssh.generate_private_key("ssh-ed25519")
    async with asyncssh.connect(
        "127.0.0.1", info.ssh_port, username="u", client_keys=[key], known_hosts=None, agent_path=None
    ) as conn:
        process = await conn.create_process("gerrit stream-events", encoding=None)
        body = b""
        async with asyncio.timeout(30):
            while True:
                chunk = await process.stdout.read(1 << 16)
                if not chunk:
                    break
                body += chunk
        events = [StreamEvent.from_json(line) for line in body.splitlines()]
        assert len(events) >= 500 and all(e.type != "dropped-output" for e in events)
    async with asyncio.timeout(20):
        await task  # exited on its own once everything was written


async def test_run_simulator_runs_until_cancelled() -> None:
    ready = Ready()
    task = asyncio.create_task(run_simulator(SimOptions(rate=50.0, events=5), ready=ready))
    info = await ready.wait()
    await asyncio.sleep(0.5)  # the 5 events are long emitted: it keeps serving
    assert not task.done()
    async with httpx.AsyncClient(base_url=info.http_url, auth=("admin", "secret")) as http:
        assert (await http.get("/a/config/server/version")).status_code == 200
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    with pytest.raises(httpx.ConnectError):
        async with httpx.AsyncClient(base_url=info.http_url) as http:
            await http.get("/a/config/server/version")
