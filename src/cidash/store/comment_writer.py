"""The batched, idempotent write of observed comments (the collector's hot path).

One call handles one batch inside the caller's transaction with a fixed number of statements,
whatever the batch size:

1. dedup first: content keys of the RESULT comments, one ``IN`` query for the stored runs with
   the same content keys or message ids, then the decision per comment (:mod:`.dedup`): new run,
   REST copy of a stream-only run (merge), or duplicate;
2. servers, accounts, changes, patch sets and CI systems, set by set (:func:`.bulk.resolve`:
   cached ids, one ``IN`` query for the rest, one multi-row insert, one update);
3. one update for the merged runs, then the new runs and their jobs as multi-row inserts whose
   statements are formatted while the server stores the previous one (:mod:`.fast`).

The id caches are only correct while this process is the only writer for its servers; the
:class:`~cidash.store.facade.Store` clears them whenever a transaction fails.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from cidash.domain.comments import ObservedComment
from cidash.domain.text import clip, clip_required
from cidash.gerrit.messages import strip_patchset_header
from cidash.parsing import CommentKind, JobResult, ParsedComment
from cidash.store import schema as m
from cidash.store.bulk_io import can_return, insert_formatted, insert_rows, row_format, select_in, update_rows
from cidash.store.dedup import KnownRun, content_key, dedup_key, find_match
from cidash.store.inserted_run import InsertedRun
from cidash.store.natural_keys import IN_CHUNK, Entity, Merge, chunks, earliest, latest, newer, resolve
from cidash.store.types import fit_int32

MAX_RAW_CHARS = 1_000_000  # a CI comment is a few KB; this keeps one row far below max_allowed_packet
UNKNOWN_RESULT = "UNKNOWN"


@dataclass(frozen=True, slots=True)
class WriteStats:
    """What one :meth:`Store.write_comments` call did.

    Every RESULT comment counts exactly once: ``runs_inserted + runs_duplicate + runs_merged``
    equals the number of RESULT comments in the batch. A REST copy that gives a stream-only run
    (stored, or earlier in the same batch) its message id and canonical time is a merge.
    """

    comments: int = 0
    runs_inserted: int = 0
    runs_duplicate: int = 0
    runs_merged: int = 0
    jobs_inserted: int = 0
    inserted: tuple[InsertedRun, ...] = ()  # the new runs, with their ids
    after_insert: object = None  # what the Store's after_insert hook returned (None without a hook)
    # a CI's comments that are not results (starts and unread ones), stored in ci_comments and
    # deduplicated like runs: noted_inserted + noted_duplicate + noted_merged of them per batch
    noted_inserted: int = 0
    noted_duplicate: int = 0
    noted_merged: int = 0
    # humans' recheck comments (recheck_comments), deduplicated like runs
    rechecks_inserted: int = 0
    rechecks_duplicate: int = 0
    rechecks_merged: int = 0


AfterInsert = Callable[[AsyncConnection, Sequence[InsertedRun]], Awaitable[object]]
# (conn, runs as they were, the same runs now): stored runs whose time or latency changed
AfterMove = Callable[[AsyncConnection, Sequence[InsertedRun], Sequence[InsertedRun]], Awaitable[object]]


def _aware(moment: datetime) -> datetime:
    if moment.tzinfo is UTC:
        return moment
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _fit(value: str | None, length: int) -> str | None:
    """`value` fitted to a VARCHAR(length) (fast path for the usual short ASCII text)."""
    if value is None or (value.isascii() and len(value) <= length):
        return value
    return clip(value, length)


def _key(value: str) -> str:
    if value.isascii() and len(value) <= m.NAME_LEN:
        return value
    return clip_required(value, m.NAME_LEN)


def _required_text(old: Any, new: Any) -> Any:
    """NOT NULL text: a known value wins over "", and a new row gets "" rather than NULL."""
    if new:
        return new
    return old if old is not None else ""


@dataclass(slots=True)
class _CI:
    id: int
    first_seen: datetime | None
    last_seen: datetime | None


@dataclass(slots=True)
class _Result:
    """A RESULT comment of the batch."""

    index: int  # position in the batch
    comment: ObservedComment
    parsed: ParsedComment
    content_key: str
    server_id: int
    posted_at: datetime  # aware UTC


@dataclass(slots=True)
class _Outcome:
    """What the dedup decided for the batch's RESULT comments."""

    pending: list[tuple[_Result, KnownRun]] = field(default_factory=list)  # new runs
    merged: list[tuple[KnownRun, _Result]] = field(default_factory=list)  # stored runs given a REST identity
    inserted: int = 0
    duplicate: int = 0
    merges: int = 0


@dataclass(slots=True)
class _Refs:
    """Ids the entity statements resolved, and which of them each comment of the batch uses."""

    accounts: list[tuple[int, str]]  # (server id, account key) of each comment's author
    patchsets: list[tuple[int, int, int]]  # (server id, change number, patch set number) of each comment
    account_ids: dict[tuple[int, str], int]
    change_ids: dict[tuple[int, int], int]
    patchset_ids: dict[tuple[int, int], int]  # by (change id, patch set number)
    ci_ids: dict[int, int]  # CI system id by account id

    def account_id(self, index: int) -> int:
        return self.account_ids[self.accounts[index]]

    def patchset_key(self, index: int) -> tuple[int, int]:
        server_id, change, number = self.patchsets[index]
        return self.change_ids[(server_id, change)], number


# run and job columns known from the comment alone (formatted while the server resolves ids) and
# the ones known only once ids and the dedup outcome are (formatted at insert time)
RUN_EARLY = (
    "project",
    "branch",
    "change_number",
    "patchset_number",
    "result",
    "vote",
    "pipeline",
    "content_key",
    "source",
    "raw_comment",
    "parsed_with",
)
RUN_LATE = ("server_id", "ci_system_id", "patchset_id", "posted_at", "latency_s", "dedup_key", "message_id")
_SERVER_ID, _POSTED_AT, _LATENCY, _DEDUP_KEY, _MESSAGE_ID = (
    RUN_LATE.index(name) for name in ("server_id", "posted_at", "latency_s", "dedup_key", "message_id")
)
NOTED_COLUMNS = (
    "server_id",
    "ci_system_id",
    "patchset_id",
    "project",
    "branch",
    "change_number",
    "patchset_number",
    "kind",
    "vote",
    "posted_at",
    "content_key",
    "dedup_key",
    "message_id",
    "source",
    "raw_comment",
    "why",
    "parsed_with",
)
RECHECK_COLUMNS = (
    "server_id",
    "patchset_id",
    "author_id",
    "project",
    "branch",
    "change_number",
    "patchset_number",
    "posted_at",
    "aimed_at",
    "text",
    "content_key",
    "dedup_key",
    "message_id",
    "source",
)
JOB_COLUMNS = ("name", "url", "result", "duration_s", "voting", "detail")
JOB_EARLY = ("position", *JOB_COLUMNS)
JOB_LATE = ("run_id",)


def _by_table(
    items: Sequence[tuple[ObservedComment, ParsedComment]], server_ids: Mapping[str, int]
) -> tuple[list[_Result], list[_Result], list[_Result]]:
    """The items to store, by the table they go to: results (``ci_runs``), a CI's starts and
    unread comments (``ci_comments``), humans' recheck comments (``recheck_comments``); a CI's
    notices and other humans' comments are not stored."""
    reported: list[_Result] = []
    noted: list[_Result] = []
    rechecks: list[_Result] = []
    for index, (comment, parsed) in enumerate(items):
        if parsed.kind == CommentKind.RESULT:
            into = reported
        elif parsed.is_ci:
            if parsed.kind == CommentKind.NOTICE:
                continue
            into = noted
        elif parsed.recheck is not None:
            into = rechecks
        else:
            continue
        key = content_key(comment)
        into.append(_Result(index, comment, parsed, key, server_ids[comment.server], _aware(comment.posted_at)))
    return reported, noted, rechecks


def _inserted_run(result: _Result, run: KnownRun, late: tuple[Any, ...], run_id: int) -> InsertedRun:
    """What the derived tables hear of a run just inserted (`late`: its late columns)."""
    return InsertedRun(
        id=run_id,
        server=result.comment.server,
        ci_system_id=late[1],
        ci=_key(result.comment.author.key),
        project=result.comment.project,
        branch=result.comment.branch,
        change_number=result.comment.change_number,
        patchset_number=result.comment.patchset.number,
        result=result.parsed.result or UNKNOWN_RESULT,
        vote=result.parsed.vote,
        pipeline=result.parsed.pipeline,
        posted_at=run.posted_at,
        latency_s=late[4],
        message_id=run.message_id,
        source=result.comment.source.value,
        jobs=result.parsed.jobs,
    )


def _run_values(result: _Result, parser_version: str) -> tuple[Any, ...]:
    """The run row's RUN_EARLY values."""
    comment, parsed = result.comment, result.parsed
    return (
        comment.project,
        comment.branch,
        comment.change_number,
        comment.patchset.number,
        parsed.result or UNKNOWN_RESULT,
        fit_int32(parsed.vote),
        parsed.pipeline,
        result.content_key,
        comment.source.value,
        comment.message[:MAX_RAW_CHARS],
        parser_version,
    )


def job_values(job: JobResult) -> tuple[Any, ...]:
    """A job row's JOB_COLUMNS values as the writer hands them to :mod:`cidash.store.bulk_io`
    (which fits the text to the columns)."""
    return (job.name, job.url, job.result or UNKNOWN_RESULT, fit_int32(job.duration_s), bool(job.voting), job.detail)


def _job_values(position: int, job: JobResult) -> tuple[Any, ...]:
    """A job row's JOB_EARLY values."""
    return (position, *job_values(job))


def _new_caches() -> tuple[Entity, Entity, Entity]:
    accounts = Entity(
        m.accounts_t, "server_id", "account_key", ("gerrit_account_id", "username", "name", "email"), (newer,) * 4
    )
    changes = Entity(
        m.changes_t,
        "server_id",
        "number",
        ("change_id", "project", "branch", "status", "subject", "url"),
        (newer, _required_text, _required_text, newer, newer, newer),
        stamp="updated_at",
    )
    patchsets = Entity(m.patchsets_t, "change_db_id", "number", ("created_at", "kind", "revision"), (newer,) * 3)
    return accounts, changes, patchsets


def _merge_into(rows: dict[Any, tuple[Any, ...]], key: Any, attrs: tuple[Any, ...], merge: Merge) -> None:
    """`attrs` of the row `key` merged into what the batch already holds for it."""
    previous = rows.get(key)
    if previous is None:
        rows[key] = attrs
    elif previous != attrs:
        rows[key] = merge(previous, attrs)


@dataclass(slots=True)
class _AuthorSeen:
    """What the batch shows of one author: any CI evidence, its display name, first and last comment."""

    evidence: bool
    display: str
    first: datetime
    last: datetime


@dataclass(slots=True)
class _BatchEntities:
    """The batch's entities by natural key, merged within the batch; and which of them each
    comment uses (its author and patch set, by position)."""

    accounts: dict[tuple[int, str], tuple[Any, ...]] = field(default_factory=dict)
    changes: dict[tuple[int, int], tuple[Any, ...]] = field(default_factory=dict)
    patchsets: dict[tuple[int, int, int], tuple[Any, ...]] = field(default_factory=dict)
    authors: dict[tuple[int, str], _AuthorSeen] = field(default_factory=dict)
    item_accounts: list[tuple[int, str]] = field(default_factory=list)
    item_patchsets: list[tuple[int, int, int]] = field(default_factory=list)

    def saw(self, account_key: tuple[int, str], evidence: bool, display: str, posted_at: datetime) -> None:
        posted_at = _aware(posted_at)
        seen = self.authors.get(account_key)
        if seen is None:
            self.authors[account_key] = _AuthorSeen(evidence, display, posted_at, posted_at)
            return
        seen.evidence = seen.evidence or evidence
        if posted_at < seen.first:
            seen.first = posted_at
        elif posted_at > seen.last:
            seen.last = posted_at

    def fitted_accounts(self) -> dict[tuple[int, str], tuple[Any, ...]]:
        return {
            key: (account_id, _fit(username, m.NAME_LEN), _fit(name, m.NAME_LEN), _fit(email, m.NAME_LEN))
            for key, (account_id, username, name, email) in self.accounts.items()
        }

    def fitted_changes(self) -> dict[tuple[int, int], tuple[Any, ...]]:
        return {
            key: (
                _fit(change_id, m.NAME_LEN),
                _fit(project, m.NAME_LEN),
                _fit(branch, m.NAME_LEN),
                _fit(status, 32),
                _fit(subject, m.SUBJECT_LEN),
                _fit(url, m.URL_LEN),
            )
            for key, (change_id, project, branch, status, subject, url) in self.changes.items()
        }

    def fitted_patchsets(self, change_ids: dict[Any, int]) -> dict[tuple[int, int], tuple[Any, ...]]:
        """By (change row id, number), as the patch set rows are keyed."""
        return {
            (change_ids[(server_id, change)], number): (created_at, _fit(kind, 32), _fit(revision, 64))
            for (server_id, change, number), (created_at, kind, revision) in self.patchsets.items()
        }


@dataclass(slots=True)
class CommentWriter:
    servers: dict[str, int] = field(default_factory=dict)
    accounts: Entity = field(init=False)
    changes: Entity = field(init=False)
    patchsets: Entity = field(init=False)
    ci: dict[int, _CI] | None = None  # account id -> CI system; None until loaded
    after_insert: AfterInsert | None = None  # called in the transaction with the new runs
    after_move: AfterMove | None = None  # called in the transaction with runs whose time/latency changed

    def __post_init__(self) -> None:
        self.accounts, self.changes, self.patchsets = _new_caches()

    def clear(self) -> None:
        self.servers.clear()
        self.accounts.clear()
        self.changes.clear()
        self.patchsets.clear()
        self.ci = None

    # -- entities ----------------------------------------------------------------------------
    async def server_ids(self, conn: AsyncConnection, names: Sequence[str]) -> dict[str, int]:
        wanted = set(names)
        missing = [name for name in wanted if name not in self.servers]
        if missing:
            table = m.servers_t
            query = sa.select(table.c.id, table.c.name).where(table.c.name.in_(missing))
            for row_id, name in await conn.execute(query):
                self.servers[name] = row_id
            new = [name for name in missing if name not in self.servers]
            if new:
                await conn.execute(sa.insert(table), [{"name": name} for name in new])
                query = sa.select(table.c.id, table.c.name).where(table.c.name.in_(new))
                for row_id, name in await conn.execute(query):
                    self.servers[name] = row_id
        return {name: self.servers[name] for name in wanted}

    async def ci_systems(self, conn: AsyncConnection) -> dict[int, _CI]:
        if self.ci is None:
            table = m.ci_systems_t
            query = sa.select(table.c.id, table.c.account_id, table.c.first_seen, table.c.last_seen)
            self.ci = {row[1]: _CI(row[0], row[2], row[3]) for row in await conn.execute(query)}
        return self.ci

    async def account_ids(
        self, conn: AsyncConnection, wanted: dict[tuple[int, str], tuple[Any, ...]]
    ) -> dict[tuple[int, str], int]:
        return (await resolve(conn, self.accounts, wanted)).ids

    async def _detect_ci(
        self,
        conn: AsyncConnection,
        seen: dict[int, tuple[int, str, datetime, datetime]],
    ) -> dict[int, int]:
        """CI system ids for the accounts in `seen` (account id -> server, name, first, last)."""
        known = await self.ci_systems(conn)
        table = m.ci_systems_t
        updates: list[tuple[int, tuple[Any, ...]]] = []
        new_rows: list[dict[str, Any]] = []
        for account_id, (server_id, display, first, last) in seen.items():
            ci = known.get(account_id)
            if ci is None:
                new_rows.append(
                    {
                        "server_id": server_id,
                        "account_id": account_id,
                        "display_name": clip_required(display, m.NAME_LEN, "unknown"),
                        "owner": None,
                        "is_reference": False,
                        "source": m.CISource.DETECTED.value,
                        "confirmed": False,
                        "first_seen": first,
                        "last_seen": last,
                    }
                )
                continue
            first_seen, last_seen = earliest(ci.first_seen, first), latest(ci.last_seen, last)
            if (first_seen, last_seen) != (ci.first_seen, ci.last_seen):
                ci.first_seen, ci.last_seen = first_seen, last_seen
                updates.append((ci.id, (first_seen, last_seen)))
        await update_rows(conn, table, ("first_seen", "last_seen"), updates)
        if new_rows:
            await conn.execute(sa.insert(table), new_rows)
            accounts = [row["account_id"] for row in new_rows]
            for part in chunks(accounts, IN_CHUNK):
                query = sa.select(table.c.id, table.c.account_id, table.c.first_seen, table.c.last_seen).where(
                    table.c.account_id.in_(part)
                )
                for row in await conn.execute(query):
                    known[row[1]] = _CI(row[0], row[2], row[3])
        return {account_id: known[account_id].id for account_id in seen}

    # -- the batch ---------------------------------------------------------------------------
    async def write(
        self,
        conn: AsyncConnection,
        items: Sequence[tuple[ObservedComment, ParsedComment]],
        parser_version: str,
    ) -> WriteStats:
        """See the module docstring for the order of the statements."""
        if not items:
            return WriteStats()
        server_ids = await self.server_ids(conn, list({comment.server for comment, _ in items}))
        reported, noted, rechecks = _by_table(items, server_ids)
        outcome = await self._dedup(conn, reported, m.runs_t) if reported else _Outcome()
        already_runs = 0
        unread = [item for item in noted if item.parsed.kind == CommentKind.OTHER]
        if unread:
            # another copy of the same comment that was read as a result (a start's text is
            # never a result's): the run counts it
            known = await self._stored_matches(conn, unread, m.runs_t)
            already_runs = len(known)
            noted = [item for item in noted if item.index not in known]
        noted_outcome = await self._dedup(conn, noted, m.ci_comments_t) if noted else _Outcome()
        noted_outcome.duplicate += already_runs
        recheck_outcome = await self._dedup(conn, rechecks, m.rechecks_t) if rechecks else _Outcome()
        if reported:
            # a copy read as a result now where an earlier one was kept as a start or unread
            # (a stream copy without its vote): the comment is counted once, as the run
            superseded = await self._stored_matches(conn, reported, m.ci_comments_t)
            for part in chunks(sorted(set(superseded.values())), IN_CHUNK):
                await conn.execute(sa.delete(m.ci_comments_t).where(m.ci_comments_t.c.id.in_(part)))
        refs = await self._entities(conn, items, server_ids)
        if outcome.merged:
            await self._merge_runs(conn, outcome.merged, refs)
        await self._write_noted(conn, noted_outcome, refs, parser_version)
        await self._write_rechecks(conn, recheck_outcome, refs)
        counts = (
            noted_outcome.inserted,
            noted_outcome.duplicate,
            noted_outcome.merges,
            recheck_outcome.inserted,
            recheck_outcome.duplicate,
            recheck_outcome.merges,
        )
        if not outcome.pending:
            return WriteStats(len(items), outcome.inserted, outcome.duplicate, outcome.merges, 0, (), None, *counts)
        jobs, inserted = await self._insert_runs(conn, outcome.pending, refs, parser_version)
        derived = await self.after_insert(conn, inserted) if self.after_insert is not None else None
        return WriteStats(
            len(items), outcome.inserted, outcome.duplicate, outcome.merges, jobs, inserted, derived, *counts
        )

    @staticmethod
    async def _give_rest_identity(conn: AsyncConnection, table: sa.Table, outcome: _Outcome) -> None:
        """Stored stream copies get their REST copy's message id, time and dedup key."""
        merged = [
            (run.id, (run.message_id, run.posted_at, run.dedup_key)) for run, _ in outcome.merged if run.id is not None
        ]
        await update_rows(conn, table, ("message_id", "posted_at", "dedup_key"), merged)

    async def _write_rechecks(self, conn: AsyncConnection, outcome: _Outcome, refs: _Refs) -> None:
        """Humans' recheck comments: REST identities given to stored stream copies, new rows inserted."""
        await self._give_rest_identity(conn, m.rechecks_t, outcome)
        rows = []
        for result, row in outcome.pending:
            comment, recheck = result.comment, result.parsed.recheck
            assert recheck is not None  # only rechecks are in this outcome
            rows.append(
                (
                    result.server_id,
                    refs.patchset_ids[refs.patchset_key(result.index)],
                    refs.account_id(result.index),
                    comment.project,
                    comment.branch,
                    comment.change_number,
                    comment.patchset.number,
                    row.posted_at,
                    _fit(recheck.aimed_at, m.NAME_LEN),
                    clip_required(strip_patchset_header(comment.message)[0], m.RECHECK_TEXT_LEN, "recheck"),
                    result.content_key,
                    row.dedup_key,
                    row.message_id,
                    comment.source.value,
                )
            )
        await insert_rows(conn, m.rechecks_t, RECHECK_COLUMNS, rows)

    async def _write_noted(self, conn: AsyncConnection, outcome: _Outcome, refs: _Refs, parser_version: str) -> None:
        """Starts and unread comments: REST identities given to stored stream copies, new rows inserted."""
        table = m.ci_comments_t
        await self._give_rest_identity(conn, table, outcome)
        rows = []
        for result, run in outcome.pending:
            comment, parsed = result.comment, result.parsed
            rows.append(
                (
                    result.server_id,
                    refs.ci_ids[refs.account_id(result.index)],
                    refs.patchset_ids[refs.patchset_key(result.index)],
                    comment.project,
                    comment.branch,
                    comment.change_number,
                    comment.patchset.number,
                    m.CommentKindStored.START.value
                    if parsed.kind == CommentKind.START
                    else m.CommentKindStored.UNREAD.value,
                    fit_int32(parsed.vote),
                    run.posted_at,
                    result.content_key,
                    run.dedup_key,
                    run.message_id,
                    comment.source.value,
                    comment.message[:MAX_RAW_CHARS],
                    parsed.why,
                    parser_version,
                )
            )
        await insert_rows(conn, table, NOTED_COLUMNS, rows)

    def _latency(self, refs: _Refs, result: _Result, posted_at: datetime) -> float | None:
        created_at: datetime | None = self.patchsets.cache[refs.patchset_key(result.index)][1][0]
        return (posted_at - created_at).total_seconds() if created_at is not None else None

    async def _entities(
        self,
        conn: AsyncConnection,
        items: Sequence[tuple[ObservedComment, ParsedComment]],
        server_ids: dict[str, int],
    ) -> _Refs:
        """Accounts, changes, patch sets and CI systems of the batch (one pass over the comments;
        values merged within the batch, a later known value winning, and clipped to their
        columns once per distinct row)."""
        batch = self._batch_entities(items, server_ids)
        account_ids = (await resolve(conn, self.accounts, batch.fitted_accounts())).ids
        resolved_changes = await resolve(conn, self.changes, batch.fitted_changes())
        change_ids = resolved_changes.ids
        new_changes = {change_ids[key] for key in resolved_changes.inserted}
        resolved_patchsets = await resolve(
            conn, self.patchsets, batch.fitted_patchsets(change_ids), new_scopes=new_changes
        )

        # CI systems: authors with CI evidence in this batch, or already known as CI systems
        known_ci = await self.ci_systems(conn)
        ci_seen = {
            account_ids[account_key]: (account_key[0], seen.display, seen.first, seen.last)
            for account_key, seen in batch.authors.items()
            if seen.evidence or account_ids[account_key] in known_ci
        }
        ci_ids = await self._detect_ci(conn, ci_seen) if ci_seen else {}
        filled = [
            row_id
            for row_id, before, after in resolved_patchsets.changed
            if before is not None and before[0] is None and after[0] is not None
        ]
        if filled:
            await self._fill_latency(conn, filled)
        return _Refs(batch.item_accounts, batch.item_patchsets, account_ids, change_ids, resolved_patchsets.ids, ci_ids)

    def _batch_entities(
        self, items: Sequence[tuple[ObservedComment, ParsedComment]], server_ids: dict[str, int]
    ) -> _BatchEntities:
        """The one pass over the batch's comments: each entity's attributes merged by its key."""
        batch = _BatchEntities()
        merge_account, merge_change, merge_patchset = self.accounts.merge, self.changes.merge, self.patchsets.merge
        for comment, parsed in items:
            server_id = server_ids[comment.server]
            author = comment.author
            account_key = (server_id, _key(author.key))
            batch.item_accounts.append(account_key)
            _merge_into(
                batch.accounts,
                account_key,
                (author.account_id, author.username, author.name, author.email),
                merge_account,
            )
            change_attrs = (
                comment.change_id,
                comment.project,
                comment.branch,
                comment.change_status,
                comment.subject,
                comment.change_url,
            )
            _merge_into(batch.changes, (server_id, comment.change_number), change_attrs, merge_change)
            patchset = comment.patchset
            patchset_key = (server_id, comment.change_number, patchset.number)
            batch.item_patchsets.append(patchset_key)
            created_at = _aware(patchset.created_at) if patchset.created_at is not None else None
            _merge_into(batch.patchsets, patchset_key, (created_at, patchset.kind, patchset.revision), merge_patchset)
            batch.saw(account_key, parsed.is_ci or parsed.kind == CommentKind.RESULT, author.display, comment.posted_at)
        return batch

    async def _fill_latency(self, conn: AsyncConnection, patchset_ids: Sequence[int]) -> None:
        """Runs stored before their patch set's creation time was known get their latency now."""
        runs, patchsets = m.runs_t, m.patchsets_t
        updates: list[tuple[int, tuple[Any, ...]]] = []
        for part in chunks(patchset_ids, IN_CHUNK):
            query = (
                sa.select(runs.c.id, runs.c.posted_at, patchsets.c.created_at)
                .join(patchsets, patchsets.c.id == runs.c.patchset_id)
                .where(runs.c.patchset_id.in_(part), runs.c.latency_s.is_(None))
            )
            for run_id, posted_at, created_at in await conn.execute(query):
                updates.append((run_id, ((posted_at - created_at).total_seconds(),)))
        await self._update_runs(conn, ("latency_s",), updates)

    async def _update_runs(
        self, conn: AsyncConnection, columns: Sequence[str], rows: Sequence[tuple[int, tuple[Any, ...]]]
    ) -> None:
        """Update stored runs; the after_move hook sees each of them before and after (as stored),
        so that what was derived from them (rollups) moves with them in this transaction."""
        if not rows:
            return
        ids = [run_id for run_id, _ in rows]
        before = await self._stored_runs(conn, ids) if self.after_move is not None else {}
        await update_rows(conn, m.runs_t, columns, rows)
        if self.after_move is not None:
            after = await self._stored_runs(conn, ids)
            await self.after_move(conn, [before[run_id] for run_id in after], list(after.values()))

    async def _stored_runs(self, conn: AsyncConnection, run_ids: Sequence[int]) -> dict[int, InsertedRun]:
        """Stored runs by id, in id order, as the derived tables saw them (without their jobs,
        which an update never changes)."""
        runs, servers, systems, accounts = m.runs_t, m.servers_t, m.ci_systems_t, m.accounts_t
        found: dict[int, InsertedRun] = {}
        for part in chunks(sorted(set(run_ids)), IN_CHUNK):
            query = (
                sa.select(
                    runs.c.id,
                    servers.c.name.label("server"),
                    runs.c.ci_system_id,
                    accounts.c.account_key.label("ci"),
                    runs.c.project,
                    runs.c.branch,
                    runs.c.change_number,
                    runs.c.patchset_number,
                    runs.c.result,
                    runs.c.vote,
                    runs.c.pipeline,
                    runs.c.posted_at,
                    runs.c.latency_s,
                    runs.c.message_id,
                    runs.c.source,
                )
                .join(servers, servers.c.id == runs.c.server_id)
                .join(systems, systems.c.id == runs.c.ci_system_id)
                .join(accounts, accounts.c.id == systems.c.account_id)
                .where(runs.c.id.in_(part))
                .order_by(runs.c.id)
            )
            for row in await conn.execute(query):  # labelled as InsertedRun's fields
                found[row.id] = InsertedRun(**row._mapping, jobs=())
        return found

    async def _stored_matches(self, conn: AsyncConnection, items: list[_Result], table: sa.Table) -> dict[int, int]:
        """The stored rows of `table` that are copies of these comments: batch index -> row id."""
        by_content, by_message = await self._candidates(conn, items, table)
        found: dict[int, int] = {}
        for item in items:
            message_id = clip(item.comment.message_id, m.MESSAGE_ID_LEN) or None
            row = by_message.get((item.server_id, message_id)) if message_id else None
            if row is None:
                row = find_match(by_content[(item.server_id, item.content_key)], message_id, item.posted_at)
            if row is not None and row.id is not None:
                found[item.index] = row.id
        return found

    async def _dedup(self, conn: AsyncConnection, reported: list[_Result], table: sa.Table) -> _Outcome:
        """Match each comment against the rows stored in `table` (``ci_runs`` for RESULT comments,
        ``ci_comments`` for a CI's other ones) and the batch's earlier ones."""
        by_content, by_message = await self._candidates(conn, reported, table)
        outcome = _Outcome()
        for result in reported:
            key, server_id, posted_at = result.content_key, result.server_id, result.posted_at
            message_id = clip(result.comment.message_id, m.MESSAGE_ID_LEN) or None
            group = by_content[(server_id, key)]
            run: KnownRun | None = by_message.get((server_id, message_id)) if message_id else None
            if run is None:
                run = find_match(group, message_id, posted_at)
            if run is None:
                taken = {other.dedup_key for other in group}
                run = KnownRun(key, posted_at, message_id, dedup_key(key, posted_at, taken))
                group.append(run)
                if message_id:
                    by_message[(server_id, message_id)] = run
                outcome.pending.append((result, run))
                outcome.inserted += 1
            elif message_id and run.message_id is None:
                # the REST copy of a stream-only run: REST's id and time are canonical
                taken = {other.dedup_key for other in group if other is not run}
                run.message_id, run.posted_at = message_id, posted_at
                run.dedup_key = dedup_key(key, posted_at, taken)
                by_message[(server_id, message_id)] = run
                if run.id is not None:  # a stored run is updated; a new one is simply inserted so
                    outcome.merged.append((run, result))
                outcome.merges += 1
            else:
                outcome.duplicate += 1
        return outcome

    async def _merge_runs(self, conn: AsyncConnection, merged: list[tuple[KnownRun, _Result]], refs: _Refs) -> None:
        # The REST copy is canonical: it knows at least as much as the stream's (the pipeline from
        # its tag), and its vote wins, because two comments with the same body seconds apart (gate
        # Verified-2 and check Verified-1 "Merge Failed.") may pair the other way round than they
        # were posted. A REST copy without a vote keeps the one the stream saw.
        columns = ("message_id", "posted_at", "dedup_key", "latency_s", "pipeline")
        with_vote: list[tuple[int, tuple[Any, ...]]] = []
        without_vote: list[tuple[int, tuple[Any, ...]]] = []
        for run, result in merged:
            if run.id is None:
                continue
            values = (
                run.message_id,
                run.posted_at,
                run.dedup_key,
                self._latency(refs, result, run.posted_at),
                result.parsed.pipeline,
            )
            if result.parsed.vote is None:
                without_vote.append((run.id, values))
            else:
                with_vote.append((run.id, (*values, result.parsed.vote)))
        await self._update_runs(conn, (*columns, "vote"), with_vote)
        await self._update_runs(conn, columns, without_vote)

    async def _candidates(
        self, conn: AsyncConnection, reported: Sequence[_Result], table: sa.Table
    ) -> tuple[dict[tuple[int, str], list[KnownRun]], dict[tuple[int, str], KnownRun]]:
        """Every row of `table` that could be one of these: same content key or same message id."""
        by_content: dict[tuple[int, str], list[KnownRun]] = {}
        by_message: dict[tuple[int, str], KnownRun] = {}
        contents: set[tuple[int, str]] = set()
        messages: set[tuple[int, str]] = set()
        for result in reported:
            key = result.content_key
            contents.add((result.server_id, key))
            by_content.setdefault((result.server_id, key), [])
            if result.comment.message_id:
                messages.add((result.server_id, clip_required(result.comment.message_id, m.MESSAGE_ID_LEN)))
        columns = ("id", "server_id", "content_key", "message_id", "posted_at", "dedup_key")
        rows = await select_in(conn, table, columns, "server_id", "content_key", sorted(contents))
        if messages:
            rows += await select_in(conn, table, columns, "server_id", "message_id", sorted(messages))
        loaded: set[int] = set()
        for run_id, server_id, content, message_id, posted_at, dedup in rows:
            if run_id in loaded:
                continue
            loaded.add(run_id)
            stored = KnownRun(content, posted_at, message_id, dedup, id=run_id)
            by_content.setdefault((server_id, content), []).append(stored)
            if message_id is not None:
                by_message[(server_id, message_id)] = stored
        return by_content, by_message

    async def _insert_runs(
        self, conn: AsyncConnection, pending: list[tuple[_Result, KnownRun]], refs: _Refs, parser_version: str
    ) -> tuple[int, tuple[InsertedRun, ...]]:
        """Insert the new runs, then their jobs. Rows are formatted lazily, statement by statement,
        so formatting the next statement overlaps the server storing this one. Returns the number
        of jobs and the new runs."""
        run_form = await row_format(conn, m.runs_t, RUN_EARLY, RUN_LATE)
        job_form = await row_format(conn, m.jobs_t, JOB_EARLY, JOB_LATE)
        lates = [
            (
                result.server_id,
                refs.ci_ids[refs.account_id(result.index)],
                refs.patchset_ids[refs.patchset_key(result.index)],
                run.posted_at,
                self._latency(refs, result, run.posted_at),
                run.dedup_key,
                run.message_id,
            )
            for result, run in pending
        ]
        # the new ids by their unique (server, dedup key): RETURNING where the server has it, else
        # read back in one query (both exact whatever other writers do; lastrowid ranges are not)
        returning = ("id", "server_id", "dedup_key") if can_return(conn) else ()
        new_rows: Sequence[Sequence[Any]] = await insert_formatted(
            conn,
            run_form,
            (
                run_form.row(run_form.early(_run_values(result, parser_version)), late)
                for (result, _), late in zip(pending, lates, strict=True)
            ),
            returning,
        )
        keys = [(late[_SERVER_ID], late[_DEDUP_KEY]) for late in lates]
        if not returning:
            new_rows = await select_in(conn, m.runs_t, ("id", "server_id", "dedup_key"), "server_id", "dedup_key", keys)
        ids = {(server_id, key): run_id for run_id, server_id, key in new_rows}
        count = sum(len(result.parsed.jobs) for result, _ in pending)
        if count:
            await insert_formatted(
                conn,
                job_form,
                (
                    job_form.row(job_form.early(_job_values(position, job)), (ids[key],))
                    for (result, _), key in zip(pending, keys, strict=True)
                    for position, job in enumerate(result.parsed.jobs)
                ),
            )
        inserted = tuple(
            _inserted_run(result, run, late, ids[key])
            for (result, run), late, key in zip(pending, lates, keys, strict=True)
        )
        return count, inserted
