"""The one path every received byte takes into the store: lines or REST comments in, batches out.

Each stream line is journaled; a line that cannot be used is dead-lettered with its reason
(never dropped); comment-added events and REST messages are parsed and written as CI runs.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime

from cidash.gerrit.events import EventParseError, StreamEvent
from cidash.gerrit.normalize import comment_from_event
from cidash.gerrit.wire import from_epoch
from cidash.observations import ObservedComment, Source
from cidash.parsing import CommentParser, ParsedComment
from cidash.store.comments import WriteStats
from cidash.store.writer import Store

OnWritten = Callable[[WriteStats], Awaitable[None]]  # after each committed batch of comments

log = logging.getLogger(__name__)


@dataclass
class IngestStats:
    lines: int = 0
    events: int = 0
    comments: int = 0
    dead_lettered: int = 0
    dropped_output: int = 0
    runs_inserted: int = 0
    runs_duplicate: int = 0
    runs_merged: int = 0
    flushes: int = 0
    by_reason: dict[str, int] = field(default_factory=dict)


class Ingestor:
    """Accumulates work and writes it in batches; `flush()` commits everything pending."""

    def __init__(
        self,
        store: Store,
        parser: CommentParser,
        server: str,
        *,
        source: Source = Source.STREAM,
        batch_size: int = 1000,
        journal: bool = True,
        on_written: OnWritten | None = None,
    ) -> None:
        self._store = store
        self._parser = parser
        self._server = server
        self._source = source
        self._journal_enabled = journal
        self._on_written = on_written
        self.batch_size = batch_size
        self.stats = IngestStats()
        self._comments: list[tuple[ObservedComment, ParsedComment]] = []
        self._journal: list[tuple[datetime, str, int | None, str]] = []
        self._dead: list[tuple[str, bytes]] = []

    @property
    def pending(self) -> int:
        return len(self._comments) + len(self._journal) + len(self._dead)

    def add_line(self, line: bytes, received_at: float) -> StreamEvent | None:
        """Take one stream line; return the event when it parsed (the caller reacts to its type)."""
        self.stats.lines += 1
        try:
            event = StreamEvent.from_json(line)
        except EventParseError as exc:
            self._dead_letter(exc.reason, line)
            return None
        self.stats.events += 1
        if self._journal_enabled:
            text = line.decode("utf-8", "replace")
            self._journal.append((from_epoch(received_at), event.type, event.event_created_on, text))
        if event.type == "dropped-output":
            self.stats.dropped_output += 1
        elif event.type == "comment-added":
            comment = comment_from_event(event, self._server, self._source)
            if comment is None:
                self._dead_letter("unusable-comment-added", line)
            else:
                self._add(comment)
        return event

    def add_oversized(self, head: bytes, size: int) -> None:
        self._dead_letter("too-long", head + f"... [{size} bytes in all]".encode())

    def add_comments(self, comments: Iterable[ObservedComment]) -> None:
        for comment in comments:
            self._add(comment)

    def _add(self, comment: ObservedComment) -> None:
        self.stats.comments += 1
        self._comments.append((comment, self._parser.parse(comment)))

    def _dead_letter(self, reason: str, raw: bytes) -> None:
        self.stats.dead_lettered += 1
        self.stats.by_reason[reason] = self.stats.by_reason.get(reason, 0) + 1
        self._dead.append((reason, raw))

    async def flush_if_full(self) -> None:
        if self.pending >= self.batch_size:
            await self.flush()

    async def flush(self) -> None:
        """Write what is pending; on failure nothing is forgotten (the caller may retry)."""
        if self._dead:
            source = self._source.value
            await self._store.dead_letters([(self._server, source, reason, raw) for reason, raw in self._dead])
            self._dead = []
        if self._journal:
            await self._store.journal_events(self._server, self._journal)
            self._journal = []
        if self._comments:
            result = await self._store.write_comments(self._comments)
            self._comments = []
            self.stats.runs_inserted += result.runs_inserted
            self.stats.runs_duplicate += result.runs_duplicate
            self.stats.runs_merged += result.runs_merged
            if self._on_written is not None and result.runs_inserted:
                await self._on_written(result)
        self.stats.flushes += 1
