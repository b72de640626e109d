"""The API client commands: `cidash systems`, `system`, `runs`, `grid`, `alerts`, `incidents`, `ack`,
`report`, `collection` and `watch`.

`register(app)` adds them to the main `cidash` app. Each takes `--url` (env CIDASH_URL), `--token`
(env CIDASH_TOKEN) and `--json`. Errors are one line, ``cidash: error: ...``, exit status 1.
"""

from __future__ import annotations

import asyncio
import os
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Annotated, Any, NoReturn, Protocol, TypeVar

import orjson
import typer
from rich.console import Console, RenderableType
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from cidash.client import render, report_card
from cidash.client.http import (
    DEFAULT_URL,
    FEED_KINDS,
    ApiClient,
    ClientError,
    FeedWatcher,
    Fetched,
    Subscription,
    one_line,
)
from cidash.client.render_collection import collection_view
from cidash.domain.spans import parse_span
from cidash.domain.views import FeedMessage

WINDOWS = ("1h", "24h", "7d", "30d")
REPARSE_POLL_S = 0.5  # how often `cidash reparse` asks for progress
PIPE_WIDTH = 1000  # rich's width when stdout is not a terminal (and COLUMNS is unset): no wrapping in pipes

UrlOption = Annotated[
    str,
    typer.Option("--url", envvar="CIDASH_URL", help="Address of the cidash API.", rich_help_panel="Connection"),
]
TokenOption = Annotated[
    str | None,
    typer.Option(
        "--token",
        envvar="CIDASH_TOKEN",
        help="API token, sent as `Authorization: Bearer`.",
        show_default=False,
        rich_help_panel="Connection",
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print the raw JSON (one document) for scripts.")]
LimitOption = Annotated[int, typer.Option(min=1, help="Items per page (the server caps it).")]
CursorOption = Annotated[str | None, typer.Option(help="Start at this page (next_cursor of a previous answer).")]


# -- plumbing -----------------------------------------------------------------------------------


def _fail(message: str, code: int = 1) -> NoReturn:
    typer.echo(f"cidash: error: {one_line(message, 500)}", err=True)
    raise typer.Exit(code)


def _quiet_stdout() -> None:
    """After a broken pipe (`cidash runs | head`): point stdout at /dev/null so the exit flush is silent."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass


@contextmanager
def _errors() -> Iterator[None]:
    try:
        yield
    except ClientError as exc:
        _fail(str(exc))
    except BrokenPipeError:
        _quiet_stdout()
        raise typer.Exit(0) from None


def _console() -> Console:
    width = None
    if not sys.stdout.isatty() and not os.environ.get("COLUMNS"):
        width = PIPE_WIDTH
    return Console(file=sys.stdout, width=width, highlight=False, markup=False, emoji=False)


def _show(renderable: RenderableType) -> None:
    with _errors():
        _console().print(renderable)


def _print_json(raw: Any) -> None:
    with _errors():
        sys.stdout.write(orjson.dumps(raw, option=orjson.OPT_INDENT_2).decode() + "\n")
        sys.stdout.flush()


def _now() -> datetime:
    return datetime.now(UTC)


def _iso(moment: datetime) -> str:
    return render.utc(moment).strftime("%Y-%m-%dT%H:%M:%SZ")


def _moment(option: str, value: str, now: datetime) -> str:
    """`--from`/`--to`: an ISO 8601 time (UTC when it has no offset) or a span ago such as ``6h``."""
    try:
        return _iso(now - parse_span(value))
    except ValueError:
        pass
    try:
        return _iso(datetime.fromisoformat(value.strip()))
    except ValueError:
        _fail(f"{option}: {value!r} is neither a time (e.g. 2026-11-25T10:00Z) nor a span ago (e.g. 6h)")


def _more(next_cursor: str | None, what: str) -> str | None:
    if not next_cursor:
        return None
    return f"more {what} match: --all fetches every page, --cursor {next_cursor} the next one"


def _reply(fetched: Fetched[M], as_json: bool, view: Callable[[M], RenderableType]) -> None:
    """Print an answer: as the server sent it with ``--json``, else as `view` shows its model."""
    if as_json:
        _print_json(fetched.raw)
    else:
        _show(view(fetched.model))


class _Page(Protocol):
    """What the paged answers (runs, alerts, incidents) have in common."""

    @property
    def items(self) -> Sequence[Any]: ...

    @property
    def next_cursor(self) -> str | None: ...


M = TypeVar("M")
P = TypeVar("P", bound=_Page)


def _reply_page(
    fetched: Fetched[P],
    as_json: bool,
    what: str,
    table: Callable[[Sequence[Any], str | None], RenderableType],
    empty: str | None = None,
) -> None:
    """A page of `what`: `table(items, caption)`, the caption naming the next page; one dim line when empty."""

    def view(page: P) -> RenderableType:
        if not page.items:
            return render.text(empty or f"no {what}", "dim")
        return table(page.items, _more(page.next_cursor, what))

    _reply(fetched, as_json, view)


# -- commands -----------------------------------------------------------------------------------


def systems(
    window: Annotated[str, typer.Option(help="Health window: 1h, 24h, 7d or 30d.")] = "24h",
    project: Annotated[str | None, typer.Option(help="Only runs on this project count.")] = None,
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
    as_json: JsonOption = False,
) -> None:
    """Every CI system: state, success and infra-error rates, latency, coverage, agreement."""
    if window not in WINDOWS:
        _fail(f"--window must be one of {', '.join(WINDOWS)}, not {window!r}")
    with _errors(), ApiClient(url, token) as client:
        fetched = client.systems(window, project)
    _reply(fetched, as_json, lambda found: render.systems_table(found, _now(), window))


def system(
    name: Annotated[str, typer.Argument(help="The CI system's name (its Gerrit account).")],
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
    as_json: JsonOption = False,
) -> None:
    """One CI system: state, reason, owner and its health in every window."""
    with _errors(), ApiClient(url, token) as client:
        fetched = client.system(name)
    _reply(fetched, as_json, lambda found: render.system_view(found, _now()))


def runs(
    ci: Annotated[str | None, typer.Option(help="Only this CI system.")] = None,
    project: Annotated[str | None, typer.Option(help="Only this project.")] = None,
    branch: Annotated[str | None, typer.Option(help="Only this branch.")] = None,
    result: Annotated[str | None, typer.Option(help="Only this result (e.g. failure).")] = None,
    since: Annotated[str | None, typer.Option(help="Only runs posted in this span, e.g. 24h or 7d.")] = None,
    from_: Annotated[
        str | None, typer.Option("--from", help="Posted at or after: ISO time (UTC if no offset) or a span ago.")
    ] = None,
    to: Annotated[str | None, typer.Option(help="Posted before: ISO time or a span ago.")] = None,
    limit: LimitOption = 50,
    all_pages: Annotated[bool, typer.Option("--all", help="Follow the cursors: every matching run.")] = False,
    cursor: CursorOption = None,
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
    as_json: JsonOption = False,
) -> None:
    """CI runs, newest first: time, CI, change/patch set, project, result, vote, latency, log."""
    now = _now()
    if since is not None and from_ is not None:
        _fail("use either --since or --from/--to, not both")
    start: str | None = None
    if since is not None:
        try:
            start = _iso(now - parse_span(since))
        except ValueError as exc:
            _fail(f"--since: {exc}")
    elif from_ is not None:
        start = _moment("--from", from_, now)
    end = _moment("--to", to, now) if to is not None else None
    if start is not None and end is not None and start > end:
        _fail(f"the start of the range ({start}) is after its end ({end})")
    with _errors(), ApiClient(url, token) as client:
        fetched = client.runs(
            ci=ci,
            project=project,
            branch=branch,
            result=result,
            from_=start,
            to=end,
            limit=limit,
            cursor=cursor,
            follow=all_pages,
        )
    _reply_page(fetched, as_json, "runs", render.runs_table, "no runs match")


def grid(
    project: Annotated[str, typer.Argument(help="The project, e.g. openstack/nova.")],
    limit: Annotated[int, typer.Option(min=1, help="How many of the newest patch sets.")] = 20,
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
    as_json: JsonOption = False,
) -> None:
    """Patch sets × CI systems: what each CI said on each of the newest patch sets of PROJECT."""
    with _errors(), ApiClient(url, token) as client:
        fetched = client.grid(project, limit)
    nothing = render.text(f"no patch sets with CI results on {project}", "dim")
    _reply(fetched, as_json, lambda found: render.grid_table(found) if found.rows else nothing)


def alerts(
    ci: Annotated[str | None, typer.Option(help="Only this CI system.")] = None,
    limit: LimitOption = 50,
    all_pages: Annotated[bool, typer.Option("--all", help="Follow the cursors: every alert.")] = False,
    cursor: CursorOption = None,
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
    as_json: JsonOption = False,
) -> None:
    """Alerts raised on CI systems, newest first."""
    with _errors(), ApiClient(url, token) as client:
        fetched = client.alerts(ci=ci, limit=limit, cursor=cursor, follow=all_pages)
    _reply_page(fetched, as_json, "alerts", lambda items, caption: render.alerts_table(items, _now(), caption))


def report(
    week: Annotated[bool, typer.Option("--week", help="The last complete week (the only period so far).")] = False,
    project: Annotated[str | None, typer.Option(help="Only CI systems following this project, counted on it.")] = None,
    fmt: Annotated[str, typer.Option("--format", help="md (a mailing-list post), html (printable) or csv.")] = "md",
    end: Annotated[
        str | None, typer.Option(help="The week ends at this day's midnight UTC (default: today's), e.g. 2026-11-30.")
    ] = None,
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
    as_json: JsonOption = False,
) -> None:
    """The weekly report card: every CI, worst first, with the change since the week before and
    a link from each number to the runs behind it."""
    if not week:
        _fail("say which period: --week (the last complete week)", 2)
    if fmt not in report_card.FORMATS:
        _fail(f"--format must be one of {', '.join(report_card.FORMATS)}, not {fmt!r}", 2)
    with _errors(), ApiClient(url, token) as client:
        fetched = client.report(end, project)
    if as_json:
        _print_json(fetched.raw)
        return
    with _errors():
        sys.stdout.write(report_card.RENDERERS[fmt](fetched.model, url))
        sys.stdout.flush()


def incidents(
    state: Annotated[str | None, typer.Option(help="firing or resolved (default: both).")] = "firing",
    ci: Annotated[str | None, typer.Option(help="Only this CI system.")] = None,
    every: Annotated[bool, typer.Option("--all", help="Firing and resolved.")] = False,
    limit: LimitOption = 50,
    cursor: CursorOption = None,
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
    as_json: JsonOption = False,
) -> None:
    """Incidents, newest first: the open ones unless --all or --state resolved."""
    if state not in (None, "firing", "resolved"):
        _fail(f"--state takes firing or resolved, not {state!r}", 2)
    with _errors(), ApiClient(url, token) as client:
        fetched = client.incidents(state=None if every else state, ci=ci, limit=limit, cursor=cursor)
    _reply_page(fetched, as_json, "incidents", lambda items, caption: render.incidents_table(items, _now(), caption))


def ack(
    incident: Annotated[int, typer.Argument(help="The incident's id (see cidash incidents).")],
    author: Annotated[str, typer.Option("--as", help="Who acknowledges (a name or e-mail).")],
    note: Annotated[str | None, typer.Option(help="What you are doing about it.")] = None,
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
    as_json: JsonOption = False,
) -> None:
    """Acknowledge an incident (needs the write token)."""
    with _errors(), ApiClient(url, token) as client:
        fetched = client.ack(incident, author, note)
    _reply(fetched, as_json, lambda acked: render.incidents_table([acked], _now()))


def collection(
    server: Annotated[str | None, typer.Option(help="Only this Gerrit server.")] = None,
    since: Annotated[str, typer.Option("--from", help="Start: an ISO 8601 time or a span ago (e.g. 7d).")] = "24h",
    until: Annotated[str | None, typer.Option("--to", help="End: an ISO 8601 time or a span ago.")] = None,
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
    as_json: JsonOption = False,
) -> None:
    """Collector completeness: per Gerrit server, the share of the window with the stream connected
    or its gap covered by a backfill, and the gaps with the pass that covered each."""
    now = _now()
    start = _moment("--from", since, now)
    end = _moment("--to", until, now) if until else None
    with _errors(), ApiClient(url, token) as client:
        fetched = client.collection(server, start, end)
    _reply(fetched, as_json, lambda out: collection_view(out, now))


def watch(
    ci: Annotated[list[str] | None, typer.Option("--ci", help="Only this CI system (repeatable).")] = None,
    project: Annotated[list[str] | None, typer.Option("--project", help="Only this project (repeatable).")] = None,
    kinds: Annotated[str, typer.Option(help="Comma-separated message kinds: run, alert, state.")] = "run,alert,state",
    since_id: Annotated[
        int | None, typer.Option("--since-id", min=0, help="Replay the feed after this message id first.")
    ] = None,
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
    as_json: JsonOption = False,
    max_messages: Annotated[int | None, typer.Option("--max-messages", min=1, hidden=True)] = None,
) -> None:
    """Live tail of the feed, one line per message; reconnects and resumes by itself. Ctrl-C stops."""
    wanted = tuple(dict.fromkeys(k.strip() for k in kinds.split(",") if k.strip()))
    unknown = [k for k in wanted if k not in FEED_KINDS]
    if not wanted or unknown:
        _fail(f"--kinds takes a comma-separated list of {', '.join(FEED_KINDS)}, not {kinds!r}")
    subscription = Subscription(kinds=wanted, ci=tuple(ci or ()), projects=tuple(project or ()))
    console = _console()

    def show(message: FeedMessage, raw: dict[str, Any]) -> None:
        if as_json:
            sys.stdout.write(orjson.dumps(raw).decode() + "\n")
        else:
            console.print(render.feed_line(message), soft_wrap=True)
        sys.stdout.flush()

    def notice(text: str) -> None:
        typer.echo(f"cidash: {one_line(text, 500)}", err=True)

    with _errors():
        watcher = FeedWatcher(url, token, subscription, show, notice, since=since_id, max_messages=max_messages)
        try:
            asyncio.run(watcher.run())
        except KeyboardInterrupt:
            pass


def reparse(
    ci: Annotated[str | None, typer.Option(help="Only this CI system's comments.")] = None,
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
    as_json: JsonOption = False,
) -> None:
    """Re-read the stored comments with the server's current rules (needs the write token), with
    a progress bar on stderr; prints what changed."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            with ApiClient(url, token) as poster:
                outcome["counts"] = poster.post_json("/runs/reparse", {"ci": ci}, timeout=None)
        except ClientError as exc:
            outcome["error"] = str(exc)

    worker = threading.Thread(target=run, name="reparse", daemon=True)
    worker.start()
    columns = (TextColumn("re-reading stored comments"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with _errors(), ApiClient(url, token) as poller, Progress(*columns, console=Console(stderr=True)) as bar:
        task = bar.add_task("reparse", total=None)
        while worker.is_alive():
            worker.join(REPARSE_POLL_S)
            state = poller.get_json("/runs/reparse")
            if state.get("total"):
                bar.update(task, completed=state["done"], total=state["total"])
    if "error" in outcome:
        _fail(outcome["error"])
    counts = outcome["counts"]
    if as_json:
        _print_json(counts)
        return
    typer.echo(
        f"runs read {counts['runs']}: {counts['changed']} changed, {counts['unchanged']} unchanged, "
        f"{counts['not_results']} no longer results (left as they were)"
    )
    typer.echo(
        f"starts and unread comments read {counts['comments']}: {counts['now_results']} now results (became runs), "
        f"{counts['comments_changed']} changed between start and unread"
    )


def register(app: typer.Typer) -> None:
    """Add the client commands to the main `cidash` app."""
    for command in (systems, system, runs, grid, alerts, incidents, ack, report, collection, watch):
        app.command(command.__name__, rich_help_panel="Reading the API")(command)
    app.command("reparse", rich_help_panel="Changing the API's data")(reparse)
