"""`cidash ingest FILE.jsonl`: store an archive of stream-events lines through the normal ingest path.

On MySQL/MariaDB reading and writing overlap: while the server stores one batch, the next one is
read and parsed (at most one batch is being written at a time, and batches commit in file
order). Not on SQLite: its work runs in aiosqlite's thread, which needs the GIL between every
two rows and would crawl while the parser holds it.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn

from cidash.collector.ingest import Batch, Ingestor, IngestStats
from cidash.config import Settings
from cidash.domain.comments import Source
from cidash.gerrit.stream import LineFramer
from cidash.parsing import CommentParser
from cidash.store import is_sqlite, open_store, upgrade

CHUNK = 1 << 20
YIELD_EVERY = 32  # lines parsed between two chances for the batch being written to move on


class _Writer:
    """Writes detached batches one at a time, in order: in the background with `overlap`."""

    def __init__(self, ingestor: Ingestor, *, overlap: bool) -> None:
        self._ingestor = ingestor
        self._overlap = overlap
        self._task: asyncio.Task[None] | None = None

    @property
    def busy(self) -> bool:
        return self._task is not None and not self._task.done()

    async def submit(self, batch: Batch) -> None:
        """Wait for the previous batch (raising its error), then start writing this one."""
        await self.wait()
        self._task = asyncio.create_task(self._ingestor.write(batch))
        if not self._overlap:
            await self.wait()

    async def wait(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            await task

    async def abandon(self) -> None:
        """After a failure elsewhere: let a running write end (its transaction commits or rolls
        back as a whole), without raising its own error over the first one."""
        if self._task is not None:
            await asyncio.wait([self._task])
            self._task = None


async def ingest_file(
    settings: Settings,
    path: Path,
    server: str,
    *,
    batch_size: int = 2000,
    show_progress: bool = False,
    migrate: bool = True,
) -> IngestStats:
    if migrate:
        await upgrade(settings.database_url)
    store = await open_store(settings.database_url, live=False)  # an archive is history
    try:
        parser = CommentParser(settings.ci, auto_detect=settings.auto_detect_ci)
        await store.sync_ci_configs(settings.ci, [server])
        ingestor = Ingestor(store, parser, server, source=Source.ARCHIVE, batch_size=batch_size)
        writer = _Writer(ingestor, overlap=not is_sqlite(store.engine))
        try:
            await _read(path, ingestor, writer, show_progress)
            await writer.submit(ingestor.detach())
            await writer.wait()
        except BaseException:
            await writer.abandon()
            raise
        return ingestor.stats
    finally:
        await store.close()


async def _read(path: Path, ingestor: Ingestor, writer: _Writer, show_progress: bool) -> None:
    framer = LineFramer()
    received_at = path.stat().st_mtime
    batch_size = ingestor.batch_size
    with (
        Progress(BarColumn(), DownloadColumn(), TransferSpeedColumn(), disable=not show_progress) as progress,
        path.open("rb") as handle,
    ):
        task = progress.add_task("ingest", total=path.stat().st_size)
        while chunk := handle.read(CHUNK):
            lines, oversized = framer.feed(chunk)
            for head, size in oversized:
                ingestor.add_oversized(head, size)
            for count, line in enumerate(lines):
                ingestor.add_line(line, received_at)
                if ingestor.accumulated >= batch_size:
                    await writer.submit(ingestor.detach())
                elif count % YIELD_EVERY == 0 and writer.busy:
                    await asyncio.sleep(0)  # the write in progress resumes between our lines
            progress.advance(task, len(chunk))
        tail = framer.pending()
        if tail:
            ingestor.add_line(tail, received_at)
