"""The `cidash` command line. Errors a user can fix are one line on stderr, never a traceback."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from collections.abc import Coroutine
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

import orjson
import typer

from cidash.config import Settings, load_settings
from cidash.domain.spans import parse_span
from cidash.errors import CidashError
from cidash.service import process

T = TypeVar("T")

app = typer.Typer(
    name="cidash",
    help="Live health of the CI systems that vote on Gerrit code review.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
db_app = typer.Typer(help="Database schema management.", no_args_is_help=True)
app.add_typer(db_app, name="db")

_state: dict[str, Any] = {"config": None}

ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="TOML config file (default ./cidash.toml when present; env CIDASH_CONFIG)."),
]


def _fail(message: str, code: int = 2) -> NoReturn:
    typer.echo(f"cidash: error: {message}", err=True)
    raise typer.Exit(code)


def _settings(**overrides: Any) -> Settings:
    try:
        return load_settings(_state["config"], **overrides)
    except CidashError as exc:
        _fail(str(exc))


def _run(coro: Coroutine[Any, Any, T]) -> T:
    try:
        return process.run(coro)
    except CidashError as exc:
        _fail(str(exc), 1)
    except OSError as exc:
        _fail(f"{exc.strerror or exc}", 1)


def _setup_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    for noisy in ("asyncssh", "apscheduler", "aiosqlite", "httpx", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


@app.callback()
def main_options(
    config: ConfigOption = None,
    log_level: Annotated[str, typer.Option(help="debug, info, warning or error.")] = "warning",
) -> None:
    _state["config"] = config
    _setup_logging(log_level)


# -- database ---------------------------------------------------------------------------------


@db_app.command("upgrade")
def db_upgrade(
    database_url: Annotated[str | None, typer.Option(help="Overrides database_url from the config.")] = None,
) -> None:
    """Create or upgrade the schema (alembic migrations)."""
    from cidash.store import upgrade

    settings = _settings(database_url=database_url)
    _run(upgrade(settings.database_url))
    typer.echo("database is at the latest schema")


# -- collection -------------------------------------------------------------------------------


class _StopSignals:
    """SIGINT/SIGTERM handling from the moment it is made, so that a signal during start-up is not
    the default kill: the first signal sets `event` (and, before `started`, cancels the start-up);
    the graceful stop that follows is bounded (runtime.STOP_DEADLINE_S) and backed by a hard exit
    a little later; a second signal ends the process at once."""

    def __init__(self) -> None:
        self.event = asyncio.Event()
        self.started = False
        self._loop = asyncio.get_running_loop()
        self._main = asyncio.current_task()
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._loop.add_signal_handler(sig, self._first)

    def _first(self) -> None:
        from cidash.service.runtime import STOP_DEADLINE_S

        self.event.set()
        process.exit_hard_after(STOP_DEADLINE_S + 3, "stop requested")
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._loop.add_signal_handler(sig, self._second)
        if not self.started and self._main is not None:
            self._main.cancel()

    def _second(self) -> None:
        typer.echo("cidash: second stop signal: exiting now", err=True)
        os._exit(process.FORCED_EXIT_CODE)


async def _until_signalled() -> None:
    signals = _StopSignals()
    signals.started = True
    await signals.event.wait()


@app.command()
def serve(
    role: Annotated[
        str | None, typer.Option(help="all (default), api (dashboard + API only) or collector (collection only).")
    ] = None,
    no_migrate: Annotated[bool, typer.Option("--no-migrate", help="Do not upgrade the schema on start.")] = False,
    insecure_host_key: Annotated[
        bool, typer.Option("--insecure-host-key", help="Accept any SSH host key (DANGEROUS; labs only).")
    ] = False,
) -> None:
    """Collect from every configured Gerrit server and serve the dashboard and API until interrupted."""
    from cidash.service.runtime import Runtime

    settings = _settings(role=role)
    if insecure_host_key:
        for server in settings.servers:
            server.insecure_host_key = True
    collect = settings.role in ("all", "collector")
    if collect and not settings.servers:
        _fail("no Gerrit server configured; add a [[servers]] table to the config file")

    async def main() -> None:
        signals = _StopSignals()
        try:
            async with Runtime(
                settings, migrate=not no_migrate, collect=collect, serve_api=settings.role != "collector"
            ) as rt:
                signals.started = True
                what = f"collecting from {', '.join(s.name for s in settings.servers)}" if collect else "not collecting"
                where = f"; API on http://{settings.api.host}:{rt.api_port}/" if rt.api_port else ""
                typer.echo(f"cidash: {what}{where}", err=True)
                process.freeze_startup_heap()
                await signals.event.wait()
        except asyncio.CancelledError:
            if not signals.event.is_set():
                raise
            typer.echo("cidash: stopped during start-up", err=True)

    _run(main())


@app.command()
def demo(
    port: Annotated[int, typer.Option(min=0, max=65535, help="Dashboard port (0: any free port).")] = 8080,
    seed: Annotated[int, typer.Option(help="Simulator seed.")] = 1,
    rate: Annotated[float, typer.Option(min=0.1, help="Live simulated events per second.")] = 4.0,
    history: Annotated[str, typer.Option(help="Simulated history to backfill first.")] = "7d",
) -> None:
    """Run the Gerrit simulator and cidash together on loopback: a live dashboard in seconds."""
    from cidash.service.demo import run_demo

    try:
        span = parse_span(history)
    except ValueError as exc:
        _fail(str(exc))
    _run(run_demo(port=port, seed=seed, rate=rate, history=span, until=_until_signalled, announce=typer.echo))


@app.command()
def drive(
    gerrit: Annotated[str, typer.Option(help="Base URL of a real Gerrit, e.g. http://127.0.0.1:8081.")],
    admin_user: Annotated[str, typer.Option(help="Gerrit admin (creates accounts, groups, projects).")] = "admin",
    admin_password: Annotated[str, typer.Option(help="The admin's HTTP password.")] = "secret",
    rate: Annotated[float, typer.Option(min=0.01, help="World events per second.")] = 2.0,
    events: Annotated[int | None, typer.Option(min=1, help="Stop after this many world events.")] = None,
    duration: Annotated[float | None, typer.Option(min=1, help="Stop after this many seconds.")] = None,
    seed: Annotated[int, typer.Option(help="Simulator seed.")] = 1,
) -> None:
    """Post the simulator's world (personas, comment styles) into a real Gerrit through its REST API."""
    from cidash.realgerrit.drive import drive as drive_world

    if not gerrit.startswith(("http://", "https://")):
        _fail(f"--gerrit: {gerrit!r} is not an http:// or https:// URL")
    stats = _run(
        drive_world(
            gerrit.rstrip("/"),
            seed=seed,
            rate=rate,
            events=events,
            duration=duration,
            admin_user=admin_user,
            admin_password=admin_password,
        )
    )
    typer.echo(f"cidash drive: {stats.events} world events, posted {stats.posted}, {stats.failed} not posted")
    if stats.last_error:
        typer.echo(f"cidash drive: last error: {stats.last_error}")


@app.command()
def backfill(
    since: Annotated[str, typer.Option(help="How far back to import, e.g. 30d.")] = "1d",
    server: Annotated[str | None, typer.Option(help="Only this configured server.")] = None,
) -> None:
    """One-off history import through the REST API, with a progress bar."""
    from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

    from cidash.collector.backfill import run_backfill
    from cidash.collector.completeness import completed_pass
    from cidash.gerrit.rest import GerritRestClient
    from cidash.service.runtime import Runtime

    try:
        span = parse_span(since)
    except ValueError as exc:
        _fail(str(exc))
    settings = _settings()
    servers = [settings.server(server)] if server else settings.servers
    if not servers:
        _fail("no Gerrit server configured; add a [[servers]] table to the config file")

    async def main() -> None:
        async with Runtime(settings, collect=False) as runtime:
            assert runtime.store is not None
            columns = (TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed} changes"))
            with Progress(*columns, TimeElapsedColumn(), transient=False) as progress:
                for target in servers:
                    task = progress.add_task(f"{target.name}", total=None)

                    def advance(_done: int, page: int, task: TaskID = task) -> None:
                        progress.advance(task, page)

                    started_at = datetime.now(UTC)
                    async with GerritRestClient.for_server(target) as client:
                        result = await run_backfill(
                            target,
                            client,
                            runtime.store,
                            runtime.parser,
                            since=datetime.now(UTC) - span,
                            progress=advance,
                        )
                    # the Collection page counts it: it may cover a gap the collector left
                    finished = completed_pass(started_at, datetime.now(UTC), result)
                    await runtime.store.record_backfill_pass(target.name, finished)
                    progress.update(task, total=result.changes, completed=result.changes)
                    progress.console.print(
                        f"{target.name}: {result.changes} changes, {result.comments} comments, "
                        f"{result.runs_inserted} new CI runs in {result.duration_s:.1f} s"
                    )

    _run(main())


@app.command()
def ingest(
    file: Annotated[Path, typer.Argument(help="Archive of stream-events lines (JSON lines).")],
    server: Annotated[str, typer.Option(help="Server name to file the events under.")] = "default",
    batch_size: Annotated[int, typer.Option(min=1)] = 2000,
) -> None:
    """Store an archive of stream-events lines (saved streams, benchmarks)."""
    from cidash.collector.ingest_file import ingest_file

    if not file.is_file():
        _fail(f"no such file: {file}")
    settings = _settings()
    stats = _run(ingest_file(settings, file, server, batch_size=batch_size, show_progress=sys.stderr.isatty()))
    typer.echo(
        f"{stats.lines} lines, {stats.events} events, {stats.comments} comments, "
        f"{stats.runs_inserted} new CI runs, {stats.runs_duplicate} duplicates, "
        f"{stats.dead_lettered} dead-lettered"
    )


@app.command()
def explain(
    author: Annotated[
        str | None, typer.Option(help="Read ONE comment text from stdin, written by this account.")
    ] = None,
    server: Annotated[str, typer.Option(help="Server name for config matching.")] = "default",
) -> None:
    """Show how comments are read: comment-added JSON lines on stdin, one JSON verdict per line."""
    from cidash.parsing.explain import explain_comment_text, explain_lines

    settings = _settings()
    if author is not None:
        typer.echo(orjson.dumps(explain_comment_text(settings, author, sys.stdin.read(), server)).decode())
        return
    for verdict in explain_lines(settings, sys.stdin.buffer, server):
        sys.stdout.write(orjson.dumps(verdict).decode() + "\n")


def _register_commands() -> None:
    from cidash.client.commands import register
    from cidash.sim.command import sim

    app.command("sim")(sim)
    register(app)


def main() -> None:
    _register_commands()
    app()
