"""The one path every received byte takes into the store: lines or REST comments in, batches out.

Each stream line is journaled; a line that cannot be used is dead-lettered with its reason
(never dropped); comment-added events and REST messages are parsed and written as CI runs.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime

from cidash.domain.comments import ObservedComment, Source
from cidash.gerrit.events import EventParseError, StreamEvent
from cidash.gerrit.normalize import comment_from_event
from cidash.gerrit.wire import from_epoch
from cidash.parsing import CommentParser, ParsedComment
from cidash.store import JournalEvent, Store, WriteStats

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


@dataclass(slots=True)
class Batch:
    """What one flush writes, in one transaction."""

    comments: list[tuple[ObservedComment, ParsedComment]] = field(default_factory=list)
    journal: list[JournalEvent] = field(default_factory=list)
    dead: list[tuple[str, bytes]] = field(default_factory=list)  # (reason, raw)

    def __len__(self) -> int:
        return len(self.comments) + len(self.journal) + len(self.dead)

    def extend(self, later: Batch) -> None:
        self.comments += later.comments
        self.journal += later.journal
        self.dead += later.dead


class Ingestor:
    """Accumulates work and writes it in batches; `flush()` commits everything pending.

    A caller that wants to read on while a batch is written (``cidash ingest``) uses
    :meth:`detach` and :meth:`write` instead of :meth:`flush`.
    """

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
        self._batch = Batch()
        self._in_flight = 0  # items of batches being written
        self._received: tuple[float, datetime] = (-1.0, from_epoch(0))  # last received_at, converted

    @property
    def pending(self) -> int:
        """Items not committed yet, including a batch being written."""
        return len(self._batch) + self._in_flight

    @property
    def accumulated(self) -> int:
        """Items of the batch that the next flush or :meth:`detach` takes."""
        return len(self._batch)

    def add_line(self, line: bytes, received_at: float) -> StreamEvent | None:
        """Take one stream line; return the event when it parsed (the caller reacts to its type)."""
        self.stats.lines += 1
        try:
            event = StreamEvent.from_json(line)
        except EventParseError as exc:
            self._dead_letter(exc.reason, line)
            return None
        self.stats.events += 1
        event_type = event.type
        if self._journal_enabled:
            # every parsed line, ref-updated included: the journal is the raw record of the stream
            created_on = event.event_created_on
            self._batch.journal.append(
                (self._received_at(received_at), event_type, created_on, line.decode("utf-8", "replace"))
            )
        if event_type == "comment-added":
            comment = comment_from_event(event, self._server, self._source)
            if comment is None:
                self._dead_letter("unusable-comment-added", line)
            else:
                self._add(comment)
        elif event_type == "dropped-output":
            self.stats.dropped_output += 1
        return event

    def _received_at(self, received_at: float) -> datetime:
        """`received_at` as a datetime; a whole read chunk shares one time, convert it once."""
        if received_at != self._received[0]:
            self._received = (received_at, from_epoch(received_at))
        return self._received[1]

    def add_oversized(self, head: bytes, size: int) -> None:
        self._dead_letter("too-long", head + f"... [{size} bytes in all]".encode())

    def add_comments(self, comments: Iterable[ObservedComment]) -> None:
        for comment in comments:
            self._add(comment)

    def _add(self, comment: ObservedComment) -> None:
        self.stats.comments += 1
        self._batch.comments.append((comment, self._parser.parse(comment)))

    def _dead_letter(self, reason: str, raw: bytes) -> None:
        self.stats.dead_lettered += 1
        self.stats.by_reason[reason] = self.stats.by_reason.get(reason, 0) + 1
        self._batch.dead.append((reason, raw))

    async def flush_if_full(self) -> None:
        if self.accumulated >= self.batch_size:
            await self.flush()

    async def flush(self) -> None:
        """Write what is pending; on failure nothing is forgotten (the caller may retry)."""
        batch = self.detach()
        try:
            result = await self._commit(batch)
        except BaseException:
            batch.extend(self._batch)  # anything added meanwhile stays after it
            self._batch = batch
            raise
        await self._count(result)

    def detach(self) -> Batch:
        """Take the accumulated batch, to :meth:`write` it while the next one accumulates."""
        batch, self._batch = self._batch, Batch()
        return batch

    async def write(self, batch: Batch) -> None:
        """Write a detached batch (one transaction), then count what it did."""
        await self._count(await self._commit(batch))

    async def _commit(self, batch: Batch) -> WriteStats:
        if not batch:
            return WriteStats()
        source = self._source.value
        self._in_flight += len(batch)
        try:
            return await self._store.write_batch(
                self._server,
                lines=batch.journal,
                dead_letters=[(self._server, source, reason, raw) for reason, raw in batch.dead],
                comments=batch.comments,
            )
        finally:
            self._in_flight -= len(batch)

    async def _count(self, result: WriteStats) -> None:
        self.stats.runs_inserted += result.runs_inserted
        self.stats.runs_duplicate += result.runs_duplicate
        self.stats.runs_merged += result.runs_merged
        if self._on_written is not None and result.runs_inserted:
            await self._on_written(result)
        self.stats.flushes += 1
