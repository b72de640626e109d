"""`cidash sim`: the command-line face of the simulator (registered by cli.py as `app.command("sim")(sim)`).

Every argument is validated here so that a mistake is ONE line on stderr and exit status 2,
whatever the Typer/rich configuration of the application that registers the command.
"""

from __future__ import annotations

import asyncio
import math
import sys
from datetime import timedelta
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console
from rich.markup import escape

from cidash.domain import spans
from cidash.sim.runner import SimError, SimInfo, SimOptions, run_simulator
from cidash.sim.ssh import SshSetupError, load_authorized_keys, load_host_key


class _Invalid(Exception):
    pass


def _fail(message: str) -> NoReturn:
    sys.stderr.write(f"cidash sim: error: {message}\n")
    sys.stderr.flush()
    raise typer.Exit(2)


def parse_port(text: str, option: str) -> int:
    try:
        port = int(text.strip())
    except ValueError:
        raise _Invalid(f"{option}: {text!r} is not a port number") from None
    if not 0 <= port <= 65535:
        raise _Invalid(f"{option}: port {port} is out of range (0-65535; 0 picks a free port)")
    return port


def parse_rate(text: str) -> float | None:
    """Events per second, or `max` (None: as fast as the clients read)."""
    if text.strip().lower() == "max":
        return None
    try:
        rate = float(text)
    except ValueError:
        raise _Invalid(f'--rate: {text!r} is neither a number of events per second nor "max"') from None
    if not math.isfinite(rate) or rate <= 0:
        raise _Invalid(f"--rate: must be a positive number of events per second (or max), got {text!r}")
    return rate


def parse_span(text: str, option: str = "--history") -> timedelta:
    """`90s`, `30m`, `12h`, `7d`, `2w` (the spans every cidash command reads)."""
    try:
        return spans.parse_span(text)
    except ValueError:
        raise _Invalid(f"{option}: {text!r} is not a duration like 90s, 30m, 12h, 7d or 2w") from None


def parse_seconds(text: str | None, option: str) -> float | None:
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        raise _Invalid(f"{option}: {text!r} is not a number of seconds") from None
    if not math.isfinite(value) or value < 0:
        raise _Invalid(f"{option}: must be zero or more seconds, got {text!r}")
    return value


def parse_probability(text: str | None, option: str) -> float:
    if text is None:
        return 0.0
    try:
        value = float(text)
    except ValueError:
        raise _Invalid(f"{option}: {text!r} is not a probability") from None
    if not 0.0 <= value <= 1.0:
        raise _Invalid(f"{option}: must be between 0 and 1, got {text!r}")
    return value


def parse_count(text: str | None, option: str) -> int | None:
    if text is None:
        return None
    try:
        value = int(text)
    except ValueError:
        raise _Invalid(f"{option}: {text!r} is not a whole number") from None
    if value < 0:
        raise _Invalid(f"{option}: must be zero or more, got {value}")
    return value


def check_key_files(host_key: Path | None, authorized_keys: Path | None) -> None:
    """Fail early (before binding ports) on key files that cannot be used."""
    if host_key is not None:
        if host_key.is_dir():
            raise _Invalid(f"--host-key: {host_key} is a directory")
        if host_key.exists():
            load_host_key(host_key)
        elif not host_key.parent.is_dir():
            raise _Invalid(f"--host-key: directory {host_key.parent} does not exist (cannot save a new key)")
    if authorized_keys is not None:
        if not authorized_keys.is_file():
            raise _Invalid(f"--authorized-keys: {authorized_keys} does not exist")
        load_authorized_keys(authorized_keys)


def print_banner(info: SimInfo, console: Console | None = None) -> None:
    out = console or Console(soft_wrap=True, highlight=False)
    out.print(f"[bold]cidash sim[/bold]: a simulated Gerrit ({escape(info.server_version)})")
    out.print(f"  SSH  port  {info.ssh_port}   host key {info.host_key_fingerprint}")
    out.print(
        f"  HTTP port  {info.http_port}   {info.http_url}/a/  user {info.http_user}  password {info.http_password}"
    )
    out.print(f"  try: {escape(info.ssh_example())}")
    out.file.flush()


def sim(
    ssh_port: Annotated[str, typer.Option("--ssh-port", metavar="PORT", help="SSH port (0: any free port).")] = "29418",
    http_port: Annotated[
        str, typer.Option("--http-port", metavar="PORT", help="HTTP port (0: any free port).")
    ] = "8080",
    seed: Annotated[str, typer.Option("--seed", metavar="N", help="Seed of the simulated world.")] = "1",
    rate: Annotated[
        str, typer.Option("--rate", metavar="EVENTS_PER_S|max", help="Events per second, or max (backpressure).")
    ] = "5",
    events: Annotated[str | None, typer.Option("--events", metavar="N", help="Stop emitting after N events.")] = None,
    duration: Annotated[
        str | None, typer.Option("--duration", metavar="SECONDS", help="Stop emitting after this long.")
    ] = None,
    history: Annotated[
        str | None, typer.Option("--history", metavar="SPAN", help="Pre-generate past activity, e.g. 7d (s m h d w).")
    ] = None,
    host_key: Annotated[
        Path | None, typer.Option("--host-key", metavar="FILE", help="SSH host key (generated and saved if absent).")
    ] = None,
    authorized_keys: Annotated[
        Path | None,
        typer.Option("--authorized-keys", metavar="FILE", help="Accept only these client keys (default: any key)."),
    ] = None,
    legacy_2x: Annotated[bool, typer.Option("--legacy-2x", help="Speak like Gerrit 2.x (string numbers...).")] = False,
    http_user: Annotated[str, typer.Option("--http-user", metavar="USER", help="REST user.")] = "admin",
    http_password: Annotated[
        str, typer.Option("--http-password", metavar="PASSWORD", help="REST password.")
    ] = "secret",
    malformed_rate: Annotated[
        str | None, typer.Option("--malformed-rate", metavar="P", help="Extra non-JSON line per event, probability.")
    ] = None,
    truncated_rate: Annotated[
        str | None, typer.Option("--truncated-rate", metavar="P", help="Extra cut-short line per event, probability.")
    ] = None,
    oversized_rate: Annotated[
        str | None, typer.Option("--oversized-rate", metavar="P", help="Extra 2 MiB line per event, probability.")
    ] = None,
    refuse_ssh: Annotated[
        str | None, typer.Option("--refuse-ssh", metavar="SECONDS", help="Refuse SSH connections at first.")
    ] = None,
    rest_429: Annotated[
        str | None, typer.Option("--rest-429", metavar="SECONDS", help="Answer 429 Quota limit reached at first.")
    ] = None,
    rest_500: Annotated[str | None, typer.Option("--rest-500", metavar="SECONDS", help="Answer 500 at first.")] = None,
    rest_delay: Annotated[
        str | None, typer.Option("--rest-delay", metavar="SECONDS", help="Latency added to every REST answer.")
    ] = None,
    exit_when_done: Annotated[
        bool, typer.Option("--exit-when-done", help="Exit once the events are emitted and written.")
    ] = False,
    pregenerate: Annotated[
        bool, typer.Option("--pregenerate", help="Build the --events events first, then stream them (benchmarks).")
    ] = False,
    wait_for_clients: Annotated[
        str | None,
        typer.Option("--wait-for-clients", metavar="N", help="Start emitting once N stream-events clients listen."),
    ] = None,
) -> None:
    """Run a simulated Gerrit (SSH stream-events + REST) on loopback, for demos, tests and benchmarks."""
    try:
        try:
            seed_value = int(seed)
        except ValueError:
            raise _Invalid(f"--seed: {seed!r} is not a whole number") from None
        options = SimOptions(
            ssh_port=parse_port(ssh_port, "--ssh-port"),
            http_port=parse_port(http_port, "--http-port"),
            seed=seed_value,
            rate=parse_rate(rate),
            events=parse_count(events, "--events"),
            duration=parse_seconds(duration, "--duration"),
            history=parse_span(history) if history is not None else None,
            host_key=host_key,
            authorized_keys=authorized_keys,
            legacy_2x=legacy_2x,
            http_user=http_user,
            http_password=http_password,
            malformed_rate=parse_probability(malformed_rate, "--malformed-rate"),
            truncated_rate=parse_probability(truncated_rate, "--truncated-rate"),
            oversized_rate=parse_probability(oversized_rate, "--oversized-rate"),
            refuse_ssh_s=parse_seconds(refuse_ssh, "--refuse-ssh") or 0.0,
            rest_429_s=parse_seconds(rest_429, "--rest-429") or 0.0,
            rest_500_s=parse_seconds(rest_500, "--rest-500") or 0.0,
            rest_delay_s=parse_seconds(rest_delay, "--rest-delay") or 0.0,
            exit_when_done=exit_when_done,
            wait_for_clients=parse_count(wait_for_clients, "--wait-for-clients") or 0,
            pregenerate=pregenerate,
        )
        if pregenerate and options.events is None:
            raise _Invalid("--pregenerate needs --events N")
        if options.ssh_port and options.ssh_port == options.http_port:
            raise _Invalid(f"--ssh-port and --http-port are both {options.ssh_port}")
        check_key_files(host_key, authorized_keys)
    except (_Invalid, SshSetupError) as exc:
        _fail(str(exc))

    try:
        asyncio.run(run_simulator(options, ready=print_banner))
    except SimError as exc:
        _fail(str(exc))
    except KeyboardInterrupt:
        raise typer.Exit(130) from None
