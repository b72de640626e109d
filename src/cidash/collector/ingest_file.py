"""`cidash ingest FILE.jsonl`: store an archive of stream-events lines through the normal ingest path."""

from __future__ import annotations

from pathlib import Path

from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn

from cidash.collector.ingest import Ingestor, IngestStats
from cidash.config import Settings
from cidash.gerrit.stream import LineFramer
from cidash.observations import Source
from cidash.parsing import CommentParser
from cidash.store.migrate import upgrade
from cidash.store.writer import Store

CHUNK = 1 << 20


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
    store = await Store.open(settings.database_url)
    try:
        parser = CommentParser(settings.ci, auto_detect=settings.auto_detect_ci)
        await store.sync_ci_configs(settings.ci, [server])
        ingestor = Ingestor(store, parser, server, source=Source.ARCHIVE, batch_size=batch_size)
        framer = LineFramer()
        received_at = path.stat().st_mtime
        with (
            Progress(BarColumn(), DownloadColumn(), TransferSpeedColumn(), disable=not show_progress) as progress,
            path.open("rb") as handle,
        ):
            task = progress.add_task("ingest", total=path.stat().st_size)
            while chunk := handle.read(CHUNK):
                lines, oversized = framer.feed(chunk)
                for head, size in oversized:
                    ingestor.add_oversized(head, size)
                for line in lines:
                    ingestor.add_line(line, received_at)
                    if ingestor.pending >= batch_size:
                        await ingestor.flush()
                progress.advance(task, len(chunk))
            tail = framer.pending()
            if tail:
                ingestor.add_line(tail, received_at)
            await ingestor.flush()
        return ingestor.stats
    finally:
        await store.close()
