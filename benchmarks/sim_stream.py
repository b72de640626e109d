"""Throughput of the simulator's `gerrit stream-events`: one SSH client, N events, events per second.

Starts `cidash sim --rate max --events N --wait-for-clients 1 --exit-when-done` in a subprocess,
connects ONE asyncssh client to `gerrit stream-events`, and times from the session opening to the
N-th event line. Two figures:

* live world: the world generates each event while streaming (generation + serialisation + SSH);
* pregenerated: the same N events are generated before the clock starts (`--pregenerate`), so the
  figure is the stream itself (hub fan-out, serialisation, SSH encryption, client parsing).

Usage: .venv/bin/python benchmarks/sim_stream.py [--events 100000] [--cipher aes128-gcm@openssh.com]
"""

from __future__ import annotations

import argparse
import asyncio
import re
import shlex
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import asyncssh

REPO = Path(__file__).resolve().parent.parent
# `cidash sim` without depending on the console script being installed
LAUNCH = "import typer; from cidash.sim.command import sim; typer.run(sim)"
TARGET_EVENTS_PER_S = 20_000


@dataclass
class Figure:
    label: str
    events: int
    seconds: float
    bytes: int
    dropped_output: int

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds else float("inf")


class Counter(asyncssh.SSHClientSession[bytes]):
    def __init__(self, target: int) -> None:
        self.target = target
        self.lines = 0
        self.bytes = 0
        self.dropped_output = 0
        self.first_byte: float | None = None
        self.finished: float | None = None
        self.done = asyncio.Event()

    def data_received(self, data: bytes, datatype: asyncssh.DataType) -> None:
        if datatype is not None:  # stderr
            sys.stderr.write(data.decode("utf-8", "replace"))
            return
        if self.first_byte is None:
            self.first_byte = time.perf_counter()
        self.bytes += len(data)
        self.lines += data.count(b"\n")
        if b'"dropped-output"' in data:
            self.dropped_output += data.count(b'"type":"dropped-output"')
        if self.lines - self.dropped_output >= self.target and self.finished is None:
            self.finished = time.perf_counter()
            self.done.set()

    def connection_lost(self, exc: Exception | None) -> None:
        self.done.set()


async def read_port(proc: asyncio.subprocess.Process) -> int:
    assert proc.stdout is not None
    async with asyncio.timeout(600):  # --pregenerate builds the events before printing
        while True:
            line = await proc.stdout.readline()
            if not line:
                raise RuntimeError("the simulator exited before printing its ports")
            match = re.search(rb"SSH\s+port\s+(\d+)", line)
            if match:
                return int(match.group(1))


async def measure(label: str, events: int, extra: list[str], cipher: str | None) -> tuple[Figure, str]:
    args = ["--ssh-port", "0", "--http-port", "0", "--rate", "max", "--events", str(events)]
    args += ["--wait-for-clients", "1", "--exit-when-done", *extra]
    shown = "cidash sim " + shlex.join(args)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", LAUNCH, *args, cwd=REPO, stdout=asyncio.subprocess.PIPE
    )
    try:
        port = await read_port(proc)
        options: dict[str, object] = {}
        if cipher:
            options["encryption_algs"] = [cipher]
        key = asyncssh.generate_private_key("ssh-ed25519")
        async with asyncssh.connect(
            "127.0.0.1", port, username="bench", client_keys=[key], known_hosts=None, agent_path=None, **options
        ) as conn:
            started = time.perf_counter()
            chan, counter = await conn.create_session(lambda: Counter(events), "gerrit stream-events", encoding=None)
            await counter.done.wait()
            finished = counter.finished or time.perf_counter()
            chan.close()
        figure = Figure(
            label,
            counter.lines - counter.dropped_output,
            finished - started,
            counter.bytes,
            counter.dropped_output,
        )
        await asyncio.wait_for(proc.wait(), 60)
        return figure, shown
    finally:
        if proc.returncode is None:
            proc.terminate()
            await proc.wait()


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--cipher", default=None, help="client encryption algorithm (default: asyncssh's choice)")
    parser.add_argument("--only", choices=["live", "pregenerated"], default=None)
    opts = parser.parse_args()

    runs = [("live world", []), ("pregenerated", ["--pregenerate"])]
    ok = True
    for label, extra in runs:
        if opts.only and not label.startswith(opts.only):
            continue
        figure, shown = await measure(label, opts.events, extra, opts.cipher)
        client = f"1 asyncssh client{f', cipher {opts.cipher}' if opts.cipher else ''}"
        print(f"command ({label}): {shown}   [{client}]")
        print(
            f"{label}: {figure.events} events in {figure.seconds:.2f} s = {figure.rate:,.0f} events/s"
            f" ({figure.bytes / figure.seconds / 1e6:.1f} MB/s, dropped-output lines: {figure.dropped_output})"
        )
        ok = ok and figure.events >= opts.events
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
