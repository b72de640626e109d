"""Rich tables and lines for the client commands.

Everything that comes from Gerrit or the server (names, subjects, reasons, messages, URLs) is user
data: it goes into :class:`rich.text.Text` (never parsed as markup) after :func:`printable`, so
``[bold]``, ``<script>`` or an escape sequence in a name shows literally and cannot restyle the terminal.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson
from pydantic import ValidationError
from rich.console import Console, ConsoleOptions, Group, RenderableType
from rich.padding import Padding
from rich.segment import Segment
from rich.style import Style
from rich.table import Table
from rich.text import Text

from cidash.client.http import one_line, printable, safe_url
from cidash.domain.views import (
    AlertOut,
    FeedMessage,
    Grid,
    GridCell,
    HealthWindow,
    IncidentOut,
    RunOut,
    SystemDetail,
    SystemSummary,
)

DASH = "—"

STATE_STYLES = {
    "healthy": "bold green",
    "degraded": "bold yellow",
    "failing": "bold red",
    "silent": "bold magenta",
    "unknown": "dim",
}
RESULT_STYLES = {"success": "green", "failure": "red", "infra": "yellow", "other": "dim"}
RESULT_GLYPHS = {"success": "✓", "failure": "✗", "infra": "!", "other": "?"}
"""One character per result, as on the dashboard's grid."""
NOTE_INDENT = "    "
SEVERITY_STYLES = {"critical": "bold red", "warning": "yellow", "info": "cyan"}


# -- formatting (pure) ---------------------------------------------------------------------------


def utc(moment: datetime) -> datetime:
    """Aware UTC (a naive time from the server is UTC)."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def time_ago(moment: datetime | None, now: datetime) -> str:
    """ "just now", "42 s ago", "5 min ago", "3 h ago", "2 d ago", "4 mo ago", "2 y ago"; None → "never"."""
    if moment is None:
        return "never"
    diff = round((utc(now) - utc(moment)).total_seconds())
    future = diff < 0
    s = abs(diff)
    if s < 10 or (future and s < 60):
        return "just now"
    if s < 60:
        span = f"{s} s"
    elif s < 3600:
        span = f"{s // 60} min"
    elif s < 86400:
        span = f"{s // 3600} h"
    elif s < 86400 * 60:
        span = f"{s // 86400} d"
    elif s < 86400 * 365 * 2:
        span = f"{s // (86400 * 30)} mo"
    else:
        span = f"{s // (86400 * 365)} y"
    return f"in {span}" if future else f"{span} ago"


def duration(seconds: float | None) -> str:
    """Seconds → "45s", "42m", "1h02m", "2d03h"; None → "—"."""
    if seconds is None or not math.isfinite(seconds):
        return DASH
    s = max(0, round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m"
    if s < 86400:
        return f"{s // 3600}h{(s % 3600) // 60:02d}m"
    return f"{s // 86400}d{(s % 86400) // 3600:02d}h"


def pct(value: float | None) -> str:
    """Fraction → "95.3%" ("100%" and "0%" without decimals); None → "—"."""
    if value is None or not math.isfinite(value):
        return DASH
    v = value * 100
    if 99.95 <= v <= 100:
        return "100%"
    if v == 0:
        return "0%"
    return f"{v:.1f}%"


def vote(value: int | None) -> str:
    if value is None:
        return ""
    return f"+{value}" if value > 0 else str(value)


def when(moment: datetime | None) -> str:
    """Compact absolute UTC time: "2026-11-25 10:04"."""
    return utc(moment).strftime("%Y-%m-%d %H:%M") if moment is not None else DASH


# -- cells ---------------------------------------------------------------------------------------


def text(value: object, style: str | Style = "") -> Text:
    """User data as a cell: never markup, never a control sequence."""
    return Text(printable(str(value)), style=style)


def state_text(state: str) -> Text:
    return text(f"● {state}", STATE_STYLES.get(state, ""))


def result_text(result: str, result_class: str) -> Text:
    return text(result, RESULT_STYLES.get(result_class, ""))


def link_text(url: str | None) -> Text:
    safe = safe_url(url)
    if safe is None:
        return text(DASH, "dim")
    return text(safe, Style(link=safe, color="blue"))


def _table(title: str | None = None, caption: str | None = None) -> Table:
    return Table(
        title=Text(printable(title)) if title else None,
        caption=Text(printable(caption), style="dim") if caption else None,
        header_style="bold",
        show_edge=False,
        pad_edge=False,
        highlight=False,
    )


@dataclass(slots=True)
class NotedTable:
    """A table of one-line rows, each optionally followed by a note on its own line (a reason, a
    message, a log URL): the row keeps to the terminal's width and the long text wraps under it.

    Every column must be ``no_wrap`` so that each row renders as exactly one line."""

    table: Table
    notes: list[Text | None]
    title: str | None = None
    caption: str | None = None

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> Iterator[RenderableType | Segment]:
        if self.title:
            yield text(self.title, "italic")
        lines = console.render_lines(self.table, options, pad=False, new_lines=True)
        head = len(lines) - len(self.notes)
        if head < 0:  # a row took several lines after all: rows first, then the notes
            yield self.table
            yield from (note for note in self.notes if note is not None)
        else:
            for line in lines[:head]:
                yield from line
            for line, note in zip(lines[head:], self.notes, strict=True):
                yield from line
                if note is not None:
                    yield Padding(note, (0, 0, 0, len(NOTE_INDENT)), expand=False)
        if self.caption:
            yield text(self.caption, "dim")


def _one_line_column(table: Table, header: str | Text, *, right: bool = False, cut_at: int | None = None) -> None:
    """A column whose cells never wrap (NotedTable's rule); text longer than `cut_at` ends in "…"."""
    table.add_column(
        header,
        justify="right" if right else "left",
        no_wrap=True,
        overflow="ellipsis" if cut_at else "fold",
        max_width=cut_at,
    )


def _note(*parts: Text | str | None) -> Text | None:
    """The parts that are not empty, joined by " · " (None when there is nothing to say)."""
    shown = [part if isinstance(part, Text) else text(part) for part in parts if part]
    if not shown:
        return None
    note = Text(style="dim")
    for i, part in enumerate(shown):
        if i:
            note.append(" · ")
        note.append_text(part)
    return note


# -- tables --------------------------------------------------------------------------------------


def systems_table(systems: Sequence[SystemSummary], now: datetime, window: str | None = None) -> NotedTable:
    """One line of numbers per CI system (fits 100 columns), its display name and reason under it."""
    shown = window or (systems[0].health.window if systems else "24h")
    table = _table()
    _one_line_column(table, "state")
    _one_line_column(table, "name", cut_at=26)
    for column in ("runs", "success", "infra", "p50", "p95", "cover", "agree"):
        _one_line_column(table, column, right=True)
    _one_line_column(table, "last seen", right=True)
    notes: list[Text | None] = []
    for s in systems:
        h = s.health
        name_cell = text(s.name, "bold" if s.is_reference else "")
        if s.is_reference:
            name_cell.append(" (ref)", style="dim")
        table.add_row(
            state_text(s.state),
            name_cell,
            text(h.runs),
            text(pct(h.success_rate)),
            text(pct(h.infra_error_rate)),
            text(duration(h.latency_p50_s)),
            text(duration(h.latency_p95_s)),
            text(pct(h.coverage)),
            text(pct(h.agreement)),
            text(time_ago(s.last_seen, now)),
        )
        notes.append(_note(s.display_name if s.display_name != s.name else None, s.state_reason))
    return NotedTable(table, notes, title=f"CI systems — last {shown}")


def _windows_table(windows: Sequence[HealthWindow]) -> Table:
    table = _table()
    columns = ("window", "runs", "success", "failure", "infra", "p50", "p95", "queue", "cover", "agree")
    for name in (*columns, "disagree", "flaky"):
        table.add_column(name, justify="left" if name == "window" else "right")
    for w in windows:
        table.add_row(
            text(w.window, "bold"),
            text(w.runs),
            text(pct(w.success_rate)),
            text(pct(w.failure_rate)),
            text(pct(w.infra_error_rate)),
            text(duration(w.latency_p50_s)),
            text(duration(w.latency_p95_s)),
            text(duration(w.queue_p50_s)),
            text(pct(w.coverage)),
            text(pct(w.agreement)),
            text(w.disagreements),
            text(pct(w.flakiness)),
        )
    return table


def _vote_quality_lines(windows: Sequence[HealthWindow]) -> list[RenderableType]:
    """The 7 d false -1 / false +1 shares under the windows table (queue: p50 time to first answer)."""
    week = next((w for w in windows if w.window == "7d"), None)
    quality = week.vote_quality if week is not None else None
    if quality is None or not (quality.negatives or quality.positives):
        return []
    return [
        text(
            f"7d votes against the reference: false -1 {pct(quality.false_negative_share)} "
            f"({quality.false_negatives} of {quality.negatives} -1s where it passed and the change merged), "
            f"false +1 {pct(quality.false_positive_share)} "
            f"({quality.passed_reference_failed} of {quality.positives} +1s where it failed)",
            "dim",
        )
    ]


def system_view(system: SystemDetail, now: datetime) -> RenderableType:
    title = text(system.name, "bold")
    if system.display_name and system.display_name != system.name:
        title.append(" — ")
        title.append_text(text(system.display_name))
    state = Text("state: ")
    state.append_text(state_text(system.state))
    if system.state_reason:
        state.append(" — ")
        state.append_text(text(system.state_reason))
    flags = [f"server {system.server}", f"source {system.source}"]
    flags.append("reference CI" if system.is_reference else "compared with the reference CI")
    flags.append("confirmed" if system.confirmed else "unconfirmed")
    lines: list[RenderableType] = [
        title,
        state,
        Text("owner: ").append_text(text(system.owner or DASH)),
        Text("projects: ").append_text(text(", ".join(system.projects) or "all")),
        Text("last seen: ").append_text(
            text(f"{time_ago(system.last_seen, now)} ({when(system.last_seen)} UTC)" if system.last_seen else "never")
        ),
        text(" · ".join(flags), "dim"),
        Text(""),
        _windows_table(system.windows),
        *_vote_quality_lines(system.windows),
        _recheck_line(system.windows),
        *_comment_lines(system),
    ]
    return Group(*lines)


def _recheck_line(windows: Sequence[HealthWindow]) -> RenderableType:
    """Human recheck comments aimed at it per window (per 100 runs), and the recovery share."""

    def one(w: HealthWindow) -> str:
        per_100 = f" ({w.rechecks_per_100_runs:.1f}/100 runs)" if w.rechecks_per_100_runs is not None else ""
        return f"{w.window} {w.rechecks}{per_100}"

    recovered = " · ".join(f"{w.window} {pct(w.recheck_recovery)}" for w in windows)
    return (
        Text("rechecks aimed at it: ")
        .append_text(text(" · ".join(one(w) for w in windows)))
        .append_text(text(f"; recovered after a recheck: {recovered}", "dim"))
    )


def _comment_lines(system: SystemDetail) -> list[RenderableType]:
    """How its comments were read per window, and its latest unread comment with why."""
    if not system.comments:
        return []
    counts = " · ".join(f"{c.window} {c.results}/{c.starts}/{c.unread}" for c in system.comments)
    lines: list[RenderableType] = [Text("comments read (results/starts/unread): ").append_text(text(counts))]
    if system.unread:
        latest = system.unread[0]
        lines.append(Text("latest unread: ").append_text(text(f"{latest.change}/{latest.patchset} — {latest.why}")))
    return lines


def runs_table(runs: Sequence[RunOut], caption: str | None = None) -> NotedTable:
    """One line per run (fits 100 columns), its log URL under it."""
    table = _table()
    _one_line_column(table, "time (UTC)")
    _one_line_column(table, "CI", cut_at=22)
    _one_line_column(table, "change/ps", right=True)
    _one_line_column(table, "project", cut_at=22)
    _one_line_column(table, "result", cut_at=14)
    _one_line_column(table, "vote", right=True)
    _one_line_column(table, "latency", right=True)
    notes: list[Text | None] = []
    for r in runs:
        table.add_row(
            text(when(r.posted_at)),
            text(r.ci),
            text(f"{r.change}/{r.patchset}"),
            text(r.project),
            result_text(r.result, r.result_class),
            text(vote(r.vote)),
            text(duration(r.latency_s)),
        )
        notes.append(link_text(r.log_url) if safe_url(r.log_url) else None)
    return NotedTable(table, notes, caption=caption)


def column_key(position: int) -> str:
    """A, B, ..., Z, AA, AB, ...: the short header of the grid's `position`-th CI column (from 0)."""
    key = ""
    position += 1
    while position:
        position, rest = divmod(position - 1, 26)
        key = chr(ord("A") + rest) + key
    return key


def grid_cell(cell: GridCell | None) -> Text:
    """The dashboard's one character (✓ ✗ ! ?, · for none), followed by the run count on a recheck."""
    if cell is None:
        return text("·", "dim")
    shown = text(RESULT_GLYPHS.get(cell.result_class, "?"), RESULT_STYLES.get(cell.result_class, ""))
    if cell.runs > 1:
        shown.append(str(cell.runs), style="dim")
    return shown


def grid_table(grid: Grid) -> Group:
    """Patch sets x CI systems with one-character cells; CI columns are lettered (key under the table)."""
    title = f"{grid.project or 'all projects'}: newest {len(grid.rows)} patch sets"
    table = _table(title=title)
    table.add_column("change/ps", justify="right", no_wrap=True)
    table.add_column("subject", overflow="ellipsis", no_wrap=True, min_width=8)
    for position, _ in enumerate(grid.systems):
        table.add_column(column_key(position), justify="center", no_wrap=True)
    for row in grid.rows:
        cells: list[RenderableType] = [text(f"{row.change}/{row.patchset}"), text(row.subject or DASH)]
        cells.extend(grid_cell(row.cells.get(ci)) for ci in grid.systems)
        table.add_row(*cells)
    key = Text(style="dim")
    for position, ci in enumerate(grid.systems):
        key.append(f"{column_key(position)} ", style="bold")
        key.append_text(text(ci))
        key.append("   ")
    legend = text("✓ success · ✗ failure · ! infra error · ? other · · no result · ✗3: three runs (rechecks)", "dim")
    return Group(table, key, legend)


def alerts_table(alerts: Sequence[AlertOut], now: datetime, caption: str | None = None) -> NotedTable:
    """One line per alert (fits 100 columns), its age and message under it."""
    table = _table()
    _one_line_column(table, "id", right=True)
    _one_line_column(table, "time (UTC)")
    _one_line_column(table, "severity")
    _one_line_column(table, "kind", cut_at=22)
    _one_line_column(table, "CI", cut_at=22)
    _one_line_column(table, "project", cut_at=22)
    notes: list[Text | None] = []
    for a in alerts:
        severity = text(a.severity, SEVERITY_STYLES.get(a.severity, ""))
        if a.muted:
            severity.append(" (muted)", style="dim")
        table.add_row(
            text(a.id),
            text(when(a.created_at)),
            severity,
            text(a.kind),
            text(a.ci),
            text(a.project or DASH),
        )
        notes.append(_note(time_ago(a.created_at, now), a.message))
    return NotedTable(table, notes, caption=caption)


def incidents_table(incidents: Sequence[IncidentOut], now: datetime, caption: str | None = None) -> NotedTable:
    """One line per incident (fits 100 columns): since when, how bad, whose, its state, who acked it;
    under it its age, the summary, and the ack (who, when, note) and silence in full."""
    table = _table()
    _one_line_column(table, "id", right=True)
    _one_line_column(table, "since (UTC)")
    _one_line_column(table, "severity")
    _one_line_column(table, "CI", cut_at=22)
    _one_line_column(table, "rule", cut_at=24)
    _one_line_column(table, "state")
    _one_line_column(table, "acked by", cut_at=16)
    notes: list[Text | None] = []
    for i in incidents:
        state = text(i.state, "red" if i.state == "firing" else "green")
        if i.silenced_by:
            state.append(" (silenced)", style="dim")
        table.add_row(
            text(i.id),
            text(when(i.started_at)),
            text(i.severity, SEVERITY_STYLES.get(i.severity, "")),
            text(i.ci),
            text(i.rule + (f" · {i.scope}" if i.scope else "")),
            state,
            text(i.acked_by or DASH),
        )
        acked = f"acked by {i.acked_by} at {when(i.acked_at)}" + (f": {i.ack_note}" if i.ack_note else "")
        until = "until it resolves" if i.silenced_until_resolved else f"until {when(i.silenced_until)}"
        silenced = f"silenced by {i.silenced_by} {until}" + (f": {i.silence_reason}" if i.silence_reason else "")
        notes.append(
            _note(
                time_ago(i.started_at, now),
                i.summary,
                f"notifies no one ({i.quiet})" if i.quiet else None,
                acked if i.acked_by else None,
                silenced if i.silenced_by else None,
            )
        )
    return NotedTable(table, notes, caption=caption)


# -- live feed lines -----------------------------------------------------------------------------


def feed_line(message: FeedMessage) -> Text:
    """One line per feed message: ``#42 run 2026-11-25 10:04 acme-ci openstack/nova 1000/1 FAILURE -1 ...``."""
    line = Text(f"#{message.id} ", style="dim")
    data = message.data
    try:
        if message.type == "run":
            r = RunOut.model_validate(data)
            line.append("run   ", style="bold")
            parts = (text(when(r.posted_at)), text(r.ci, "bold"), text(r.project), text(f"{r.change}/{r.patchset}"))
            for part in parts:
                line.append_text(part)
                line.append(" ")
            line.append_text(result_text(r.result, r.result_class))
            if r.vote is not None:
                line.append(f" {vote(r.vote)}")
            if r.latency_s is not None:
                line.append(f" in {duration(r.latency_s)}")
            if safe_url(r.log_url):
                line.append(" ")
                line.append_text(link_text(r.log_url))
            return line
        if message.type == "alert":
            a = AlertOut.model_validate(data)
            line.append("alert ", style="bold")
            for part in (text(when(a.created_at)), text(a.severity, SEVERITY_STYLES.get(a.severity, "")), text(a.ci)):
                line.append_text(part)
                line.append(" ")
            line.append_text(text(one_line(a.message, 500)))
            return line
    except ValidationError:
        pass
    if message.type == "state" and isinstance(data.get("ci"), str) and isinstance(data.get("state"), str):
        line.append("state ", style="bold")
        line.append_text(text(data["ci"], "bold"))
        line.append(" → ")
        line.append_text(state_text(str(data["state"])))
        reason = data.get("state_reason")
        if isinstance(reason, str) and reason:
            line.append(": ")
            line.append_text(text(one_line(reason, 300)))
        return line
    line.append(f"{message.type:<5} ", style="bold")
    line.append_text(text(one_line(orjson.dumps(data, default=str).decode(), 500)))
    return line
