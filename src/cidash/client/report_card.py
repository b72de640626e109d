"""The weekly report card as Markdown (a mailing-list post), HTML (printed, ten CIs a page) or CSV.

Every number links to the dashboard's list of the runs behind it: footnote links in Markdown
(``45% [3]`` with ``[3]: https://...`` under the table, readable as plain text), anchors in
HTML, URL columns in CSV. Arrows compare with the week before; the sparkline is the daily
success rate over both weeks.
"""

from __future__ import annotations

import csv
import html
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from cidash.client.http import printable
from cidash.client.render import DASH, duration
from cidash.domain.views import ReportCard, ReportNumbers, ReportRow

FORMATS = ("md", "html", "csv")
ROWS_PER_PAGE = 10
SPARK_LEVELS = "▁▂▃▄▅▆▇█"
RECHECK_NOTE = (
    "Rechecks: human recheck comments aimed at the CI (recheck-<name>, or a plain recheck after a failure of its own), "
    "/100: per 100 of its runs. Recovered: of the patch sets it failed, the share it passed after a recheck there."
)
ALERTS_NOTE = "Incidents: open = still open at the week's end; new = started during the week (resolved since or not)."


def _pct(value: float | None) -> str:
    return DASH if value is None else f"{round(value * 100)}%"


def _count(value: float | None) -> str:
    return DASH if value is None else f"{int(value)}"


def _tenths(value: float | None) -> str:
    return DASH if value is None else f"{value:.1f}"


def arrow(now: float | None, before: float | None, step: float) -> str:
    """↑ or ↓ when the value moved by at least `step` since the week before, = otherwise; "" when
    either week has no value."""
    if now is None or before is None:
        return ""
    if now - before >= step:
        return "↑"
    if before - now >= step:
        return "↓"
    return "="


def sparkline(values: Sequence[float | None]) -> str:
    """One character per day: the success rate as a bar, a space for a day without runs."""
    return "".join(
        " " if v is None else SPARK_LEVELS[min(len(SPARK_LEVELS) - 1, int(v * len(SPARK_LEVELS)))] for v in values
    )


@dataclass(frozen=True, slots=True)
class Column:
    title: str
    value: Callable[[ReportNumbers], float | None]
    text: Callable[[float | None], str]
    step: float  # the change that earns an arrow
    link: str  # key in ReportRow.links
    key: str = ""  # its CSV column when the title is not one

    @property
    def csv_name(self) -> str:
        return self.key or self.title.replace(" ", "_")


COLUMNS: tuple[Column, ...] = (
    Column("runs", lambda n: n.runs, _count, 1, "runs"),
    Column("success", lambda n: n.success_rate, _pct, 0.01, "success"),
    Column("infra", lambda n: n.infra_error_rate, _pct, 0.01, "infra"),
    Column("coverage", lambda n: n.coverage, _pct, 0.01, "coverage"),
    Column("agreement", lambda n: n.agreement, _pct, 0.01, "agreement"),
    Column("false -1", lambda n: n.false_negative_share, _pct, 0.01, "false_negative"),
    Column("p50", lambda n: n.latency_p50_s, duration, 60, "latency"),
    Column("p95", lambda n: n.latency_p95_s, duration, 60, "latency"),
    Column("queue", lambda n: n.queue_p50_s, duration, 60, "latency"),
    Column("rechecks", lambda n: n.rechecks, _count, 1, "rechecks"),
    Column("/100", lambda n: n.rechecks_per_100_runs, _tenths, 0.5, "rechecks", "rechecks_per_100_runs"),
    Column("recovered", lambda n: n.recheck_recovery, _pct, 0.01, "recovery"),
    Column("open inc.", lambda n: n.incidents_open, _count, 1, "incidents", "incidents_open"),
    Column("new inc.", lambda n: n.incidents_opened, _count, 1, "incidents", "incidents_new"),
)


def _cell(column: Column, row: ReportRow) -> str:
    now, before = column.value(row.week), column.value(row.previous)
    shown = column.text(now)
    moved = arrow(now, before, column.step)
    return f"{shown} {moved}" if moved and moved != "=" else shown


def _name(row: ReportRow) -> str:
    return printable(row.name) + (" (ref)" if row.is_reference else "")


def _title(card: ReportCard) -> str:
    last_day = card.end.date().fromordinal(card.end.date().toordinal() - 1)
    scope = f" on {printable(card.project)}" if card.project else ""
    return f"CI report card{scope}: {card.start.date().isoformat()} to {last_day.isoformat()} (UTC)"


def _url(base: str, fragment: str) -> str:
    return base.rstrip("/") + "/" + fragment


@dataclass(slots=True)
class _Footnotes:
    """Numbered links, each URL once."""

    urls: list[str] = field(default_factory=list)

    def ref(self, url: str) -> int:
        if url not in self.urls:
            self.urls.append(url)
        return self.urls.index(url) + 1


def markdown(card: ReportCard, base_url: str) -> str:
    """A Markdown table that reads as plain text too: worst CI first, footnote links under it."""
    notes = _Footnotes()
    header = ["CI", "state", *(c.title for c in COLUMNS), "14 days"]
    lines = [
        f"# {_title(card)}",
        "",
        "Worst first. ↑/↓: moved since the week before. [n]: the runs behind a number (links at the end).",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "|".join(["---", "---", *(["---:"] * len(COLUMNS)), "---"]) + "|",
    ]
    for row in card.rows:
        cells = [_name(row), row.state]
        for column in COLUMNS:
            cells.append(f"{_cell(column, row)} [{notes.ref(_url(base_url, row.links[column.link]))}]")
        cells.append(f"`{sparkline(row.sparkline)}`")
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    if not card.rows:
        lines.append("| no CI system | | " + " | " * len(COLUMNS) + " |")
    lines += ["", "Why each CI is in its state:", ""]
    lines += [f"* {_name(row)}: {printable(row.state_reason)}" for row in card.rows]
    lines += ["", RECHECK_NOTE, ALERTS_NOTE, ""]
    lines += [f"[{i}]: {url}" for i, url in enumerate(notes.urls, start=1)]
    return "\n".join(lines) + "\n"


_STYLE = """
body { font: 12px/1.4 system-ui, sans-serif; margin: 16px; }
h1 { font-size: 16px; }
table { border-collapse: collapse; width: 100%; margin-bottom: 12px; }
th, td { border-bottom: 1px solid #ccc; padding: 3px 6px; text-align: right; white-space: nowrap; }
th:first-child, td:first-child, td.state { text-align: left; }
td.reason { text-align: left; white-space: normal; color: #555; font-size: 11px; }
a { color: inherit; }
.failing { color: #b00020; font-weight: 600; } .degraded { color: #a15c00; font-weight: 600; }
.silent { color: #7a1fa2; font-weight: 600; }
.spark { font-family: monospace; letter-spacing: -1px; }
section.page { break-after: page; page-break-after: always; }
section.page:last-of-type { break-after: auto; page-break-after: auto; }
@page { size: A4 landscape; margin: 10mm; }
"""


def report_html(card: ReportCard, base_url: str) -> str:
    """A standalone page; printed, every ten CIs start a new page (each with its own header)."""
    esc = html.escape
    head = "".join(f"<th>{esc(c.title)}</th>" for c in COLUMNS)
    pages = [card.rows[i : i + ROWS_PER_PAGE] for i in range(0, len(card.rows), ROWS_PER_PAGE)] or [[]]
    sections = []
    for number, rows in enumerate(pages, start=1):
        body = []
        for row in rows:
            cells = "".join(
                f'<td><a href="{esc(_url(base_url, row.links[c.link]))}">{esc(_cell(c, row))}</a></td>' for c in COLUMNS
            )
            body.append(
                f'<tr data-ci="{esc(row.name)}"><td>{esc(_name(row))}</td>'
                f'<td class="state {esc(row.state)}">{esc(row.state)}</td>{cells}'
                f'<td class="spark">{esc(sparkline(row.sparkline))}</td></tr>'
                f'<tr><td class="reason" colspan="{len(COLUMNS) + 3}">{esc(printable(row.state_reason))}</td></tr>'
            )
        sections.append(
            f'<section class="page"><table><thead><tr><th>CI</th><th>state</th>{head}<th>14 days</th></tr>'
            f"</thead><tbody>{''.join(body)}</tbody></table>"
            f'<p class="pageno">page {number} of {len(pages)}</p></section>'
        )
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{esc(_title(card))}</title>'
        f"<style>{_STYLE}</style></head><body><h1>{esc(_title(card))}</h1>"
        f"<p>Worst first. ↑/↓: moved since the week before. Every number links to the runs behind it.</p>"
        f"{''.join(sections)}<p>{esc(RECHECK_NOTE)} {esc(ALERTS_NOTE)}</p></body></html>\n"
    )


def report_csv(card: ReportCard, base_url: str) -> str:
    """One line per CI: this week's numbers, the week before's, and the link behind each."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    titles = [c.csv_name for c in COLUMNS]
    writer.writerow(
        ["ci", "server", "state", *titles, *(f"previous_{t}" for t in titles), *(f"{t}_url" for t in titles)]
    )
    for row in card.rows:
        now = [c.value(row.week) for c in COLUMNS]
        before = [c.value(row.previous) for c in COLUMNS]
        urls = [_url(base_url, row.links[c.link]) for c in COLUMNS]
        writer.writerow([row.name, row.server, row.state, *_csv_values(now), *_csv_values(before), *urls])
    return out.getvalue()


def _csv_values(values: Sequence[float | None]) -> list[str]:
    return ["" if v is None else f"{v:.4g}" for v in values]


RENDERERS: dict[str, Callable[[ReportCard, str], str]] = {"md": markdown, "html": report_html, "csv": report_csv}
