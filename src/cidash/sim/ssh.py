"""The simulator's SSH side: Gerrit's port 29418 as far as a stream-events client can tell.

Behaviour copied from Gerrit's SSHD (see gerrit-protocol-notes.md, section 1, in the shared material):
identification `SSH-2.0-GerritCodeReview_3.10.1 (APACHE-SSHD-2.12.0)`, public-key auth only,
`keepalive@openssh.com` answered, exec commands `gerrit stream-events [-s TYPE]...`,
`gerrit version`, `gerrit query ...`, `fatal: ...` + exit 1 for the rest, and the "interactive
shells are disabled" banner + exit 127 for a shell. Channels are binary; each stream-events batch
(at most 32 events) goes out in a single channel write.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shlex
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncssh

from cidash.sim.faults import Faults
from cidash.sim.gerrit_query import gerrit_query_lines
from cidash.sim.hub import BATCH_SIZE, EventHub, Subscription

log = logging.getLogger(__name__)

GERRIT_VERSION = "3.10.1"
LEGACY_GERRIT_VERSION = "2.13.9"
SSHD_VERSION = "APACHE-SSHD-2.12.0"
LEGACY_SSHD_VERSION = "SSHD-CORE-1.2.0"
CTRL_C = b"\x03"
EXIT_INTERRUPTED = 130
EXIT_NO_SHELL = 127
_GRACE_S = 2.0  # shutdown: how long sessions get to flush what they already wrote

_GERRIT_COMMANDS = (
    "apropos",
    "ban-commit",
    "close-connection",
    "create-account",
    "create-branch",
    "create-group",
    "create-project",
    "flush-caches",
    "gc",
    "index",
    "logging",
    "ls-groups",
    "ls-members",
    "ls-projects",
    "ls-user-refs",
    "plugin",
    "query",
    "review",
    "set-account",
    "set-head",
    "set-members",
    "set-project",
    "set-project-parent",
    "set-reviewers",
    "set-topic",
    "show-caches",
    "show-connections",
    "show-queue",
    "stream-events",
    "test-submit",
    "version",
)
_STREAM_EVENTS_USAGE = (
    "gerrit stream-events [--subscribe (-s) VAL] [--help (-h)]\n\n"
    " --help (-h)            : display this help text\n"
    " --subscribe (-s) VAL   : subscribe to specific stream-events\n"
)


class SshSetupError(Exception):
    """Host key or authorized keys unusable (message is one line, for the operator)."""


@dataclass
class CommandResult:
    stdout: bytes = b""
    stderr: bytes = b""
    status: int = 0


def _fatal(message: str, status: int = 1) -> CommandResult:
    return CommandResult(stderr=f"fatal: {message}\n".encode(), status=status)


def parse_stream_events_args(args: list[str]) -> frozenset[str] | CommandResult | None:
    """`-s TYPE`/`--subscribe TYPE`/`--subscribe=TYPE`, repeatable; else args4j-style errors."""
    types: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg in ("-s", "--subscribe"):
            if i + 1 >= len(args):
                return _fatal('Option "--subscribe (-s)" takes an operand')
            types.append(args[i + 1])
            i += 2
            continue
        if arg.startswith("--subscribe="):
            types.append(arg.partition("=")[2])
        elif arg in ("-h", "--help"):
            return CommandResult(stderr=_STREAM_EVENTS_USAGE.encode(), status=1)
        elif arg.startswith("-"):
            return _fatal(f'"{arg}" is not a valid option')
        else:
            return _fatal(f"No argument is allowed: {arg}")
        i += 1
    return frozenset(types) if types else None


def _query(world: Any, args: list[str]) -> CommandResult:
    lines, status = gerrit_query_lines(world, args)
    body = b"".join(line if line.endswith(b"\n") else line + b"\n" for line in lines)
    return CommandResult(stdout=body, status=status) if status == 0 else CommandResult(stderr=body, status=status)


def _gerrit_usage() -> bytes:
    names = "".join(f"   {name}\n" for name in _GERRIT_COMMANDS)
    return f"gerrit COMMAND [ARG ...] [--] [--help (-h)]\n\nAvailable commands of gerrit are:\n\n{names}\n".encode()


# -- server -------------------------------------------------------------------------------------


@dataclass
class _ServerState:
    hub: EventHub
    world: Any
    faults: Faults
    authorized_keys: asyncssh.SSHAuthorizedKeys | None
    version: str
    connections: set[asyncssh.SSHServerConnection] = field(default_factory=set)
    sessions: set[_GerritSession] = field(default_factory=set)
    accepted: int = 0
    refused: int = 0
    dropped: int = 0


class _GerritSession(asyncssh.SSHServerSession[bytes]):
    """One SSH channel: an exec command or a (refused) shell."""

    def __init__(self, state: _ServerState, username: str) -> None:
        self._state = state
        self._username = username
        self._chan: asyncssh.SSHServerChannel[bytes] | None = None
        self._command: str | None = None
        self._shell = False
        self._sub: Subscription | None = None
        self._task: asyncio.Task[None] | None = None
        self._writable = asyncio.Event()
        self._writable.set()
        self._exit_status = 0

    @property
    def channel(self) -> asyncssh.SSHServerChannel[bytes] | None:
        return self._chan

    # -- asyncssh callbacks -------------------------------------------------------------------
    def connection_made(self, chan: asyncssh.SSHServerChannel[bytes]) -> None:
        self._chan = chan
        self._state.sessions.add(self)

    def pty_requested(self, term_type: str, term_size: Any, term_modes: Any) -> bool:
        return True  # MINA accepts a pty; it changes nothing for Gerrit's commands

    def shell_requested(self) -> bool:
        self._shell = True
        return True

    def exec_requested(self, command: str | bytes) -> bool:
        self._command = command.decode("utf-8", "replace") if isinstance(command, bytes) else command
        return True

    def subsystem_requested(self, subsystem: str) -> bool:
        return False

    def session_started(self) -> None:
        if self._shell or not (self._command or "").strip():
            self._refuse_shell()
            return
        self._run(self._command or "")

    def data_received(self, data: bytes, datatype: Any) -> None:
        if self._sub is not None and CTRL_C in data:  # what Zuul sends to stop the stream
            self._exit_status = EXIT_INTERRUPTED
            self._state.hub.unsubscribe(self._sub)

    def eof_received(self) -> bool:
        return True  # stdin closed (`ssh -n`, `< /dev/null`): the stream goes on, as on Gerrit

    def pause_writing(self) -> None:
        self._writable.clear()

    def resume_writing(self) -> None:
        self._writable.set()

    def connection_lost(self, exc: Exception | None) -> None:
        self._state.sessions.discard(self)
        if self._sub is not None:
            self._state.hub.unsubscribe(self._sub)
        self._writable.set()
        if self._task is not None and not self._task.done():
            self._task.cancel()

    def end(self) -> None:
        """Server shutdown: stop streaming; what is already written is flushed before the close."""
        if self._sub is not None:
            self._state.hub.unsubscribe(self._sub)  # the writer exits the channel
        elif self._chan is not None and not self._chan.is_closing():
            self._chan.close()

    # -- commands -----------------------------------------------------------------------------
    def _finish(self, result: CommandResult) -> None:
        chan = self._chan
        if chan is None or chan.is_closing():
            return
        if result.stdout:
            chan.write(result.stdout)
        if result.stderr:
            chan.write_stderr(result.stderr)
        chan.exit(result.status)

    def _refuse_shell(self) -> None:
        local = self._chan.get_extra_info("sockname") if self._chan is not None else None
        where = f"{local[0]}:{local[1]}" if local else "<host>:<port>"
        text = (
            "\r\n  ****    Welcome to Gerrit Code Review    ****\r\n\r\n"
            f"  Hi {self._username}, you have successfully connected over SSH.\r\n\r\n"
            "  Unfortunately, interactive shells are disabled.\r\n"
            "  To clone a hosted Git repository, use:\r\n\r\n"
            f"  git clone ssh://{self._username}@{where}/REPOSITORY_NAME.git\r\n\r\n"
        )
        self._finish(CommandResult(stderr=text.encode(), status=EXIT_NO_SHELL))

    def _run(self, command: str) -> None:
        try:
            argv = shlex.split(command)
        except ValueError as exc:
            self._finish(_fatal(str(exc)))
            return
        if not argv:
            self._refuse_shell()
            return
        if argv[0] != "gerrit":
            self._finish(_fatal(f"{argv[0]}: not found"))
            return
        if len(argv) == 1:
            self._finish(CommandResult(stderr=_gerrit_usage(), status=1))
            return
        name, args = argv[1], argv[2:]
        if name == "stream-events":
            parsed = parse_stream_events_args(args)
            if isinstance(parsed, CommandResult):
                self._finish(parsed)
                return
            self._sub = self._state.hub.subscribe(parsed)
            self._task = asyncio.get_running_loop().create_task(self._stream(self._sub))
        elif name == "version":
            self._finish(CommandResult(stdout=f"gerrit version {self._state.version}\n".encode()))
        elif name == "query":
            try:
                result = _query(self._state.world, args)
            except Exception as exc:  # a simulator bug must not kill the server
                log.exception("gerrit query failed")
                result = _fatal(f"internal error: {exc}")
            self._finish(result)
        else:
            self._finish(_fatal(f"gerrit: {name}: not found"))

    async def _stream(self, sub: Subscription) -> None:
        chan = self._chan
        assert chan is not None
        writable = self._writable
        try:
            while True:
                batch = await sub.next_batch(BATCH_SIZE)
                if not batch or chan.is_closing():
                    break
                chan.write(batch[0] if len(batch) == 1 else b"".join(batch))
                if not writable.is_set():
                    await writable.wait()
        except asyncio.CancelledError:
            pass
        except Exception:  # the channel went away under us
            log.debug("stream-events writer stopped", exc_info=True)
        finally:
            self._state.hub.unsubscribe(sub)
            if not chan.is_closing():
                chan.exit(self._exit_status)


class _GerritSshServer(asyncssh.SSHServer):
    def __init__(self, state: _ServerState) -> None:
        self._state = state
        self._conn: asyncssh.SSHServerConnection | None = None
        self._username = ""

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        self._conn = conn
        if self._state.faults.ssh_refused():
            self._state.refused += 1
            self._state.faults.count("ssh_refused")
            conn.abort()
            return
        self._state.accepted += 1
        self._state.connections.add(conn)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._conn is not None:
            self._state.connections.discard(self._conn)

    def begin_auth(self, username: str) -> bool:
        self._username = username
        return True

    def public_key_auth_supported(self) -> bool:
        return True

    def password_auth_supported(self) -> bool:
        return False

    def kbdint_auth_supported(self) -> bool:
        return False

    def validate_public_key(self, username: str, key: asyncssh.SSHKey) -> bool:
        keys = self._state.authorized_keys
        if keys is None:
            return True
        peer = self._conn.get_extra_info("peername") if self._conn is not None else None
        host = str(peer[0]) if peer else ""
        return keys.validate(key, host, host) is not None

    def session_requested(self) -> _GerritSession:
        return _GerritSession(self._state, self._username)


# -- handle ---------------------------------------------------------------------------------------


class SshServerHandle:
    """A running simulator SSH server."""

    def __init__(self, acceptor: Any, state: _ServerState, host_key: asyncssh.SSHKey, ident: str) -> None:
        self._acceptor = acceptor
        self._state = state
        self.port: int = int(acceptor.get_port())
        self.host_key = host_key
        self.host_key_fingerprint: str = host_key.get_fingerprint("sha256")
        self.server_version = f"SSH-2.0-{ident}"
        self._closed = False

    @property
    def connection_count(self) -> int:
        return len(self._state.connections)

    @property
    def accepted(self) -> int:
        return self._state.accepted

    @property
    def refused(self) -> int:
        return self._state.refused

    @property
    def dropped(self) -> int:
        return self._state.dropped

    def drop_all(self) -> None:
        """Close every SSH connection now (the fault `drop_ssh`)."""
        connections = list(self._state.connections)
        for conn in connections:
            conn.abort()
        self._state.connections.clear()
        self._state.dropped += len(connections)

    def close(self) -> None:
        """Stop listening and end every session (buffered output is still flushed)."""
        if self._closed:
            return
        self._closed = True
        self._acceptor.close()
        for session in list(self._state.sessions):
            session.end()

    async def wait_closed(self) -> None:
        """After `close()`: let sessions flush (up to 2 s), then drop the connections."""
        channels = [session.channel for session in list(self._state.sessions) if session.channel is not None]
        if channels:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(_GRACE_S):
                    await asyncio.gather(*(chan.wait_closed() for chan in channels), return_exceptions=True)
        connections = list(self._state.connections)
        for conn in connections:
            conn.close()
        if connections:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(_GRACE_S):
                    await asyncio.gather(*(conn.wait_closed() for conn in connections), return_exceptions=True)
        await self._acceptor.wait_closed()


def load_host_key(path: Path | None) -> asyncssh.SSHKey:
    """Read the host key, or generate an ed25519 one (saved to `path` when given and absent)."""
    if path is not None and path.exists():
        try:
            return asyncssh.read_private_key(str(path))
        except (OSError, ValueError, asyncssh.KeyImportError) as exc:
            raise SshSetupError(f"cannot read host key {path}: {exc}") from None
    key = asyncssh.generate_private_key("ssh-ed25519")
    if path is not None:
        try:
            key.write_private_key(str(path))
            path.chmod(0o600)
        except OSError as exc:
            raise SshSetupError(f"cannot write host key {path}: {exc.strerror or exc}") from None
    return key


def load_authorized_keys(path: Path) -> asyncssh.SSHAuthorizedKeys:
    try:
        text = path.read_text()
    except OSError as exc:
        raise SshSetupError(f"cannot read authorized keys {path}: {exc.strerror or exc}") from None
    if not any(line.strip() and not line.lstrip().startswith("#") for line in text.splitlines()):
        raise SshSetupError(f"authorized keys {path} contains no key")
    try:
        return asyncssh.import_authorized_keys(text)
    except (ValueError, asyncssh.KeyImportError) as exc:
        raise SshSetupError(f"authorized keys {path} does not parse: {exc}") from None


def server_version(world: Any) -> tuple[str, str]:
    """(gerrit version, SSH identification after `SSH-2.0-`), following the world's flavour."""
    legacy = bool(getattr(world, "legacy_2x", False))
    version = getattr(world, "version", None)
    if not isinstance(version, str) or not version:
        version = LEGACY_GERRIT_VERSION if legacy else GERRIT_VERSION
    return version, f"GerritCodeReview_{version} ({LEGACY_SSHD_VERSION if legacy else SSHD_VERSION})"


async def start_ssh_server(
    hub: EventHub,
    world: Any,
    faults: Faults,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    host_key_path: Path | None = None,
    authorized_keys: Path | None = None,
    host_key: asyncssh.SSHKey | None = None,
) -> SshServerHandle:
    """Listen on host:port (0 = any free port). Raises SshSetupError / OSError (port in use)."""
    key = host_key if host_key is not None else load_host_key(host_key_path)
    auth_keys = load_authorized_keys(authorized_keys) if authorized_keys is not None else None
    version, ident = server_version(world)
    state = _ServerState(hub=hub, world=world, faults=faults, authorized_keys=auth_keys, version=version)
    factory: Callable[[], _GerritSshServer] = lambda: _GerritSshServer(state)  # noqa: E731
    acceptor = await asyncssh.create_server(
        factory,
        host,
        port,
        server_host_keys=[key],
        server_version=ident,
        encoding=None,
        line_editor=False,
        allow_pty=True,
        agent_forwarding=False,
        x11_forwarding=False,
        allow_scp=False,
        keepalive_interval=0,
        reuse_address=True,
    )
    handle = SshServerHandle(acceptor, state, key, ident)
    faults.on_drop_ssh(handle.drop_all)
    return handle
