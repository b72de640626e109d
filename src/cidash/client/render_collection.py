"""``cidash collection``: each Gerrit server's completeness over a window, one line per server,
then its gaps (newest first) and the pass that covered each; fits a 100-column terminal."""

from __future__ import annotations

from datetime import datetime

from rich.console import Group, RenderableType
from rich.table import Table

from cidash.client.render import DASH, _table, duration, pct, text, when
from cidash.domain.views import BackfillPassOut, CollectionGap, CollectionOut, ServerCollection

GAP_STYLES = {"covered": "yellow", "uncovered": "bold red", "open": "red"}
MAX_GAPS = 20  # per server; --json has them all


def collection_view(out: CollectionOut, now: datetime) -> RenderableType:
    if not out.servers:
        return text("no Gerrit server has been collected yet", "dim")
    parts: list[RenderableType] = [servers_table(out)]
    for server in out.servers:
        if server.gaps:
            parts += [text(""), gaps_table(server, now)]
    return Group(*parts)


def servers_table(out: CollectionOut) -> Table:
    table = _table(caption=f"{when(out.window_from)} to {when(out.window_to)} UTC; complete = connected or covered")
    for name, justify in (
        ("server", "left"),
        ("stream", "left"),
        ("complete", "right"),
        ("connected", "right"),
        ("covered", "right"),
        ("uncovered", "right"),
        ("open", "right"),
        ("passes ok/failed/stalled", "right"),
    ):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for s in out.servers:
        sum_ = s.summary
        table.add_row(
            text(s.server, "bold"),
            text("connected", "green") if s.connected else text("down", "bold red"),
            text(pct(sum_.completeness), "green" if sum_.completeness == 1.0 else "bold red"),
            text(duration(sum_.connected_s)),
            text(duration(sum_.covered_s)),
            text(f"{duration(sum_.uncovered_s)} ({sum_.uncovered_gaps})", "bold red" if sum_.uncovered_gaps else ""),
            text(duration(sum_.open_s) if sum_.open_gap else DASH),
            text(f"{sum_.passes_ok}/{sum_.passes_failed}/{sum_.passes_stalled}"),
        )
    return table


def gaps_table(server: ServerCollection, now: datetime) -> Table:
    passes = {p.id: p for p in server.passes}
    shown = server.gaps[-MAX_GAPS:][::-1]
    more = len(server.gaps) - len(shown)
    table = _table(title=f"{server.server}: gaps", caption=f"{more} older gaps: --json lists them" if more else None)
    table.add_column("from (UTC)", no_wrap=True)
    table.add_column("to", no_wrap=True)
    table.add_column("length", justify="right")
    table.add_column("state")
    table.add_column("covered by", overflow="fold")
    for gap in shown:
        end = gap.end or now
        table.add_row(
            text(when(gap.start)),
            text(when(gap.end) if gap.end else "now"),
            text(duration((end - gap.start).total_seconds())),
            text(gap.state, GAP_STYLES.get(gap.state, "")),
            text(_covered_words(gap, passes)),
        )
    return table


def _covered_words(gap: CollectionGap, passes: dict[int, BackfillPassOut]) -> str:
    if gap.covered_by is not None:
        return _pass_words(passes.get(gap.covered_by))
    return f"read up to {when(gap.read_until)}" if gap.read_until else DASH


def _pass_words(p: BackfillPassOut | None) -> str:
    if p is None:
        return DASH
    return f"pass #{p.id}, {when(p.finished_at)}: {p.changes} changes, {p.runs_new} new runs"
