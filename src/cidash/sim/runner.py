"""Run the whole simulated Gerrit: world + event hub + SSH (stream-events) + REST, on loopback.

`run_simulator` is what `cidash sim` runs; `RunningSim` is the same thing as an async context
manager for tests. After the world has emitted its events the servers KEEP SERVING (collectors
backfill over REST after the stream ends) until cancelled, SIGINT/SIGTERM, or — with
`exit_when_done` — until every stream-events session has written everything queued for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import signal
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol

import uvicorn

from cidash.errors import CidashError
from cidash.gerrit.events import StreamEvent
from cidash.serving import QuietServer
from cidash.sim.faults import FaultRequest, Faults
from cidash.sim.hub import EventHub
from cidash.sim.rest import create_rest_app
from cidash.sim.ssh import SshServerHandle, SshSetupError, start_ssh_server
from cidash.sim.world import World

log = logging.getLogger(__name__)

_HTTP_GRACE_S = 2


class SimError(CidashError):
    """The simulator cannot start (port in use, unusable key file...): one line for the operator."""


class WorldLike(Protocol):
    """What the runner needs from `cidash.sim.world.World`."""

    base_url: str

    def generate_history(self, span: timedelta) -> Any: ...

    def next_activity(self) -> list[StreamEvent]: ...

    async def run(
        self,
        publish: Callable[[list[StreamEvent]], Awaitable[None]],
        *,
        rate: float | None,
        events: int | None,
        duration: float | None,
    ) -> int: ...


@dataclass
class SimOptions:
    """Everything `cidash sim` accepts. Ports 0 pick free ports (the CLI defaults are 29418/8080)."""

    ssh_port: int = 0
    http_port: int = 0
    host: str = "127.0.0.1"
    seed: int = 1
    rate: float | None = 5.0  # events per second; None = as fast as the clients read (backpressure)
    events: int | None = None  # stop emitting after this many events
    duration: float | None = None  # ... or after this many seconds
    history: timedelta | None = None  # pre-generate this much past activity (REST-visible)
    host_key: Path | None = None  # read, or generate and write when absent
    authorized_keys: Path | None = None  # only these client keys (default: any key)
    legacy_2x: bool = False
    http_user: str = "admin"
    http_password: str = "secret"
    malformed_rate: float = 0.0
    truncated_rate: float = 0.0
    oversized_rate: float = 0.0
    refuse_ssh_s: float = 0.0
    rest_429_s: float = 0.0
    rest_500_s: float = 0.0
    rest_delay_s: float = 0.0
    exit_when_done: bool = False
    wait_for_clients: int = 0  # hold the emission until this many stream-events sessions listen
    pregenerate: bool = False  # build the `events` events before serving, then stream them from memory
    fault_seed: int = 0


@dataclass(frozen=True)
class SimInfo:
    host: str
    ssh_port: int
    http_port: int
    http_user: str
    http_password: str
    host_key_fingerprint: str
    server_version: str

    @property
    def http_url(self) -> str:
        return f"http://{self.host}:{self.http_port}"

    def ssh_example(self, user: str = "user") -> str:
        return f"ssh -p {self.ssh_port} {user}@{self.host} gerrit stream-events"


def _bind(host: str, port: int, what: str) -> socket.socket:
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
    except OSError as exc:
        sock.close()
        raise _port_error(exc, host, port, what) from None
    sock.setblocking(False)
    return sock


def _port_error(exc: OSError, host: str, port: int, what: str) -> SimError:
    if exc.errno == errno.EADDRINUSE:
        return SimError(f"{what} port {port} on {host} is already in use")
    if exc.errno == errno.EACCES:
        return SimError(f"no permission to listen on {what} port {port} on {host}")
    return SimError(f"cannot listen on {what} port {host}:{port}: {exc.strerror or exc}")


def make_faults(options: SimOptions) -> Faults:
    faults = Faults()
    faults.rng.seed(options.fault_seed)
    faults.apply(
        FaultRequest(
            malformed_rate=options.malformed_rate,
            truncated_rate=options.truncated_rate,
            oversized_rate=options.oversized_rate,
            refuse_ssh_s=options.refuse_ssh_s or None,
            rest_429_s=options.rest_429_s or None,
            rest_500_s=options.rest_500_s or None,
            rest_delay_s=options.rest_delay_s or None,
        )
    )
    return faults


class RunningSim:
    """`async with RunningSim(SimOptions(...)) as sim:` — a live simulator on free ports.

    Attributes once entered: ssh_port, http_port, world, hub, faults, ssh (the SshServerHandle),
    host_key_fingerprint, info (SimInfo), done (asyncio.Event set when emission has finished),
    emitted (events the world reported), error (exception from the world, if any).
    Pass `world=` to drive a scripted world instead of `cidash.sim.world.World`.
    """

    def __init__(self, options: SimOptions, *, world: WorldLike | None = None) -> None:
        self.options = options
        self._given_world = world
        self.done = asyncio.Event()
        self.emitted = 0
        self.error: BaseException | None = None
        self._emit_task: asyncio.Task[None] | None = None
        self._http: QuietServer | None = None
        self._http_task: asyncio.Task[None] | None = None
        self._http_sock: socket.socket | None = None
        self._ssh: SshServerHandle | None = None
        self._replay: list[list[StreamEvent]] | None = None
        self.pregenerate_s = 0.0  # time spent building the events up front (options.pregenerate)

    # -- attributes available inside the context ---------------------------------------------------
    @property
    def ssh(self) -> SshServerHandle:
        assert self._ssh is not None, "RunningSim not started"
        return self._ssh

    @property
    def ssh_port(self) -> int:
        return self.ssh.port

    @property
    def host_key_fingerprint(self) -> str:
        return self.ssh.host_key_fingerprint

    @property
    def http_port(self) -> int:
        assert self._http_sock is not None, "RunningSim not started"
        return int(self._http_sock.getsockname()[1])

    @property
    def http_url(self) -> str:
        return f"http://{self.options.host}:{self.http_port}"

    @property
    def info(self) -> SimInfo:
        return SimInfo(
            host=self.options.host,
            ssh_port=self.ssh_port,
            http_port=self.http_port,
            http_user=self.options.http_user,
            http_password=self.options.http_password,
            host_key_fingerprint=self.host_key_fingerprint,
            server_version=self.ssh.server_version,
        )

    def stats(self) -> dict[str, Any]:
        """For REST `/__sim/stats`."""
        hub = self.hub
        return {
            "published": hub.published,
            "dropped": hub.dropped,
            "unheard": hub.unheard,
            "subscribers": hub.subscriber_count,
            "ssh_connections": self._ssh.connection_count if self._ssh is not None else 0,
            "emitted": self.emitted,
            "done": self.done.is_set(),
        }

    # -- lifecycle ---------------------------------------------------------------------------------
    async def __aenter__(self) -> RunningSim:
        try:
            await self._start()
        except BaseException:
            await self._stop()
            raise
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._stop()

    async def _start(self) -> None:
        opts = self.options
        self.faults = make_faults(opts)
        self._http_sock = _bind(opts.host, opts.http_port, "HTTP")
        if self._given_world is not None:
            self.world: WorldLike = self._given_world
        else:
            self.world = World(opts.seed, legacy_2x=opts.legacy_2x)
        self.hub = EventHub(self.faults, backpressure=opts.rate is None)
        try:
            self._ssh = await start_ssh_server(
                self.hub,
                self.world,
                self.faults,
                host=opts.host,
                port=opts.ssh_port,
                host_key_path=opts.host_key,
                authorized_keys=opts.authorized_keys,
            )
        except SshSetupError as exc:
            raise SimError(str(exc)) from None
        except OSError as exc:
            raise _port_error(exc, opts.host, opts.ssh_port, "SSH") from None
        with contextlib.suppress(AttributeError):
            self.world.base_url = self.http_url
        if opts.history is not None:
            self.world.generate_history(opts.history)
        if opts.pregenerate:
            self._replay = self._pregenerate(opts.events or 0)

        world: Any = self.world  # a scripted test world quacks like World
        app = create_rest_app(world, self.faults, user=opts.http_user, password=opts.http_password, stats=self.stats)
        config = uvicorn.Config(
            app,
            log_config=None,  # leave the host process's logging alone
            log_level="warning",
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=_HTTP_GRACE_S,
        )
        self._http = QuietServer(config)
        self._http_task = asyncio.create_task(self._http.serve(sockets=[self._http_sock]))
        while not self._http.started:
            if self._http_task.done():
                self._http_task.result()  # raises what uvicorn raised
                raise SimError("the HTTP server stopped during start-up")
            await asyncio.sleep(0.005)
        self._emit_task = asyncio.create_task(self._emit())

    async def _emit(self) -> None:
        opts = self.options
        try:
            if opts.wait_for_clients:
                await self.hub.wait_for_subscribers(opts.wait_for_clients)
            if self._replay is not None:
                self.emitted = await replay(self.hub.publish, self._replay, rate=opts.rate, duration=opts.duration)
            else:
                self.emitted = await self.world.run(
                    self.hub.publish, rate=opts.rate, events=opts.events, duration=opts.duration
                )
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("the simulated world stopped with an error")
            self.error = exc
        finally:
            self.done.set()

    def _pregenerate(self, count: int) -> list[list[StreamEvent]]:
        began = time.perf_counter()
        batches: list[list[StreamEvent]] = []
        total = 0
        while total < count:
            batch = self.world.next_activity()
            batches.append(batch)
            total += len(batch)
        self.pregenerate_s = time.perf_counter() - began
        return batches

    async def wait_done(self) -> None:
        """Until the world has emitted everything and every subscriber has written its queue."""
        await self.done.wait()
        await self.hub.wait_drained()

    async def _stop(self) -> None:
        if self._emit_task is not None and not self._emit_task.done():
            self._emit_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._emit_task
        hub: EventHub | None = getattr(self, "hub", None)
        if hub is not None:
            hub.close()
        if self._ssh is not None:
            self._ssh.close()
            await self._ssh.wait_closed()
        if self._http is not None and self._http_task is not None:
            self._http.should_exit = True
            with contextlib.suppress(Exception):
                await self._http_task
        elif self._http_sock is not None:
            self._http_sock.close()


async def replay(
    publish: Callable[[list[StreamEvent]], Awaitable[None]],
    batches: list[list[StreamEvent]],
    *,
    rate: float | None,
    duration: float | None,
) -> int:
    """Publish ready-made batches, paced like `World.run` (rate None: as fast as the readers go)."""
    loop = asyncio.get_running_loop()
    began = loop.time()
    published = 0
    for batch in batches:
        now = loop.time()
        if duration is not None and now - began >= duration:
            break
        if rate is not None:
            due = began + published / rate
            if due > now:
                await asyncio.sleep(due - now)
        await publish(batch)
        before = published
        published += len(batch)
        if rate is None and (published >> 8) != (before >> 8):
            await asyncio.sleep(0)
    return published


async def run_simulator(options: SimOptions, *, ready: Callable[[SimInfo], None] | None = None) -> None:
    """Serve until cancelled or SIGINT/SIGTERM (or, with exit_when_done, until everything is written).

    Raises SimError when it cannot start; re-raises an error of the simulated world.
    """
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    installed: list[signal.Signals] = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
            installed.append(sig)
        except (NotImplementedError, RuntimeError, ValueError):  # not the main thread / not Unix
            pass
    try:
        async with RunningSim(options) as sim:
            if ready is not None:
                ready(sim.info)
            waiters: list[asyncio.Task[Any]] = [asyncio.create_task(stop.wait())]
            if options.exit_when_done:
                waiters.append(asyncio.create_task(sim.wait_done()))
            try:
                await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for waiter in waiters:
                    waiter.cancel()
                await asyncio.gather(*waiters, return_exceptions=True)
            if sim.error is not None:
                raise sim.error
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)
