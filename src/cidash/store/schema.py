"""The schema (SQLAlchemy 2 typed declarative), by concept: Gerrit's entities and the CI systems,
what the CIs said (runs, jobs, other comments), intake (journal, dead letters, watermarks), what
is derived for reading (rollups, latency, feed), incidents and their notifications, and leases.
Tables are created only by the alembic migrations in ``migrations/``; ``tests/store/test_store.py``
checks that both agree.

All datetimes are naive UTC in the database and aware UTC in Python (:class:`UTCDateTime`).
"""

from __future__ import annotations

import enum
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from cidash.store.types import KeyString, LongText, UTCDateTime, id_type

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
MYSQL_TABLE = {"mysql_engine": "InnoDB", "mysql_charset": "utf8mb4"}

# column lengths the writer clips to (MySQL strict mode refuses longer values)
NAME_LEN = 255
URL_LEN = 2048
SUBJECT_LEN = 1024
RESULT_LEN = 64
PIPELINE_LEN = 128
MESSAGE_ID_LEN = 128
DEDUP_KEY_LEN = 80
CONTENT_KEY_LEN = 32
REASON_LEN = 1024
DETAIL_LEN = 512
RECHECK_TEXT_LEN = 512


class CISource(enum.StrEnum):
    CONFIG = "config"  # listed in the configuration (confirmed)
    GROUP = "group"  # member of the server's CI group (confirmed)
    DETECTED = "detected"  # recognised by the parser only (unconfirmed until an operator says so)


class Base(DeclarativeBase):
    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)


# -- Gerrit's entities and the CI systems ----------------------------------------------------------


class GerritServerRow(Base):
    __tablename__ = "gerrit_servers"
    __table_args__ = (sa.UniqueConstraint("name"), MYSQL_TABLE)

    id: Mapped[int] = mapped_column(id_type(), primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(KeyString(NAME_LEN))


class AccountRow(Base):
    __tablename__ = "accounts"
    __table_args__ = (sa.UniqueConstraint("server_id", "account_key"), MYSQL_TABLE)

    id: Mapped[int] = mapped_column(id_type(), primary_key=True, autoincrement=True)
    server_id: Mapped[int] = mapped_column(id_type(), sa.ForeignKey("gerrit_servers.id"))
    account_key: Mapped[str] = mapped_column(KeyString(NAME_LEN))
    gerrit_account_id: Mapped[int | None] = mapped_column(sa.BigInteger)
    username: Mapped[str | None] = mapped_column(sa.String(NAME_LEN))
    name: Mapped[str | None] = mapped_column(sa.String(NAME_LEN))
    email: Mapped[str | None] = mapped_column(sa.String(NAME_LEN))


class CISystemRow(Base):
    __tablename__ = "ci_systems"
    __table_args__ = (
        sa.UniqueConstraint("account_id"),
        sa.CheckConstraint("source IN ('config', 'group', 'detected')", name="source"),
        MYSQL_TABLE,
    )

    id: Mapped[int] = mapped_column(id_type(), primary_key=True, autoincrement=True)
    server_id: Mapped[int] = mapped_column(id_type(), sa.ForeignKey("gerrit_servers.id"))
    account_id: Mapped[int] = mapped_column(id_type(), sa.ForeignKey("accounts.id"))
    display_name: Mapped[str] = mapped_column(sa.String(NAME_LEN))
    owner: Mapped[str | None] = mapped_column(sa.String(NAME_LEN))
    is_reference: Mapped[bool] = mapped_column(sa.Boolean, server_default=sa.false())
    source: Mapped[str] = mapped_column(sa.String(16))
    confirmed: Mapped[bool] = mapped_column(sa.Boolean, server_default=sa.false())
    first_seen: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_seen: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ChangeRow(Base):
    __tablename__ = "changes"
    __table_args__ = (sa.UniqueConstraint("server_id", "number"), MYSQL_TABLE)

    id: Mapped[int] = mapped_column(id_type(), primary_key=True, autoincrement=True)
    server_id: Mapped[int] = mapped_column(id_type(), sa.ForeignKey("gerrit_servers.id"))
    number: Mapped[int] = mapped_column(sa.Integer)
    change_id: Mapped[str | None] = mapped_column(sa.String(NAME_LEN))
    project: Mapped[str] = mapped_column(sa.String(NAME_LEN))
    branch: Mapped[str] = mapped_column(sa.String(NAME_LEN))
    status: Mapped[str | None] = mapped_column(sa.String(32))
    subject: Mapped[str | None] = mapped_column(sa.String(SUBJECT_LEN))
    url: Mapped[str | None] = mapped_column(sa.String(URL_LEN))
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # when cidash last wrote the row


class PatchSetRow(Base):
    __tablename__ = "patchsets"
    __table_args__ = (sa.UniqueConstraint("change_db_id", "number"), MYSQL_TABLE)

    id: Mapped[int] = mapped_column(id_type(), primary_key=True, autoincrement=True)
    change_db_id: Mapped[int] = mapped_column(id_type(), sa.ForeignKey("changes.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(sa.Integer)
    created_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    kind: Mapped[str | None] = mapped_column(sa.String(32))
    revision: Mapped[str | None] = mapped_column(sa.String(64))


# -- what was said: CI runs, their jobs, CI comments that are not results, humans' rechecks -------


class _CommentColumns:
    """What a run and a CI's other comment (``ci_comments``) both keep of the comment."""

    id: Mapped[int] = mapped_column(id_type(), primary_key=True, autoincrement=True)
    server_id: Mapped[int] = mapped_column(id_type(), sa.ForeignKey("gerrit_servers.id"))
    ci_system_id: Mapped[int] = mapped_column(id_type(), sa.ForeignKey("ci_systems.id"))
    patchset_id: Mapped[int] = mapped_column(id_type(), sa.ForeignKey("patchsets.id", ondelete="CASCADE"))
    project: Mapped[str] = mapped_column(sa.String(NAME_LEN))
    branch: Mapped[str] = mapped_column(sa.String(NAME_LEN))
    change_number: Mapped[int] = mapped_column(sa.Integer)
    patchset_number: Mapped[int] = mapped_column(sa.Integer)
    vote: Mapped[int | None] = mapped_column(sa.Integer)
    posted_at: Mapped[datetime] = mapped_column(UTCDateTime)
    content_key: Mapped[str] = mapped_column(KeyString(CONTENT_KEY_LEN))
    dedup_key: Mapped[str] = mapped_column(KeyString(DEDUP_KEY_LEN))
    message_id: Mapped[str | None] = mapped_column(KeyString(MESSAGE_ID_LEN))
    source: Mapped[str] = mapped_column(sa.String(16))
    raw_comment: Mapped[str] = mapped_column(LongText)
    parsed_with: Mapped[str] = mapped_column(sa.String(64))


class CIRunRow(_CommentColumns, Base):
    __tablename__ = "ci_runs"
    __table_args__ = (
        sa.UniqueConstraint("server_id", "dedup_key"),
        sa.UniqueConstraint("server_id", "message_id"),
        sa.Index(None, "server_id", "content_key"),
        sa.Index(None, "ci_system_id", "posted_at"),
        # covering indexes of the health metrics and the grid (migration 0003); `id` after
        # `posted_at` keeps them in the keyset order of run pages
        sa.Index(None, "posted_at", "id", "ci_system_id", "patchset_id", "result"),
        sa.Index(None, "project", "posted_at", "id", "ci_system_id", "patchset_id", "result"),
        sa.Index(None, "patchset_id", "ci_system_id", "posted_at"),
        sa.CheckConstraint("source IN ('stream', 'rest', 'archive')", name="source"),
        MYSQL_TABLE,
    )

    result: Mapped[str] = mapped_column(sa.String(RESULT_LEN))
    pipeline: Mapped[str | None] = mapped_column(sa.String(PIPELINE_LEN))
    latency_s: Mapped[float | None] = mapped_column(sa.Double)


class JobResultRow(Base):
    __tablename__ = "job_results"
    __table_args__ = (sa.UniqueConstraint("run_id", "position"), MYSQL_TABLE)

    id: Mapped[int] = mapped_column(id_type(), primary_key=True, autoincrement=True)
    run_id: Mapped[int] = mapped_column(id_type(), sa.ForeignKey("ci_runs.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(sa.Integer)
    name: Mapped[str] = mapped_column(sa.String(NAME_LEN))
    url: Mapped[str | None] = mapped_column(sa.String(URL_LEN))
    result: Mapped[str] = mapped_column(sa.String(RESULT_LEN))
    duration_s: Mapped[int | None] = mapped_column(sa.Integer)
    voting: Mapped[bool] = mapped_column(sa.Boolean, server_default=sa.true())
    detail: Mapped[str | None] = mapped_column(sa.String(DETAIL_LEN))  # e.g. Zuul's error text


class CommentKindStored(enum.StrEnum):
    START = "start"  # the CI said it started (or took its vote back to start again)
    UNREAD = "unread"  # a CI's comment the parser could not read as a result or a start


class CICommentRow(_CommentColumns, Base):
    """A CI's comment that did not become a run: starts and unread comments (migration 0004).

    Kept with its text so that the operator can see what was not read, and so that re-parsing
    with new rules can turn it into a run. Deduplicated like ``ci_runs`` (same keys)."""

    __tablename__ = "ci_comments"
    __table_args__ = (
        sa.UniqueConstraint("server_id", "dedup_key"),
        sa.UniqueConstraint("server_id", "message_id"),
        sa.Index(None, "server_id", "content_key"),
        sa.Index(None, "ci_system_id", "posted_at", "kind"),
        sa.CheckConstraint("kind IN ('start', 'unread')", name="kind"),
        sa.CheckConstraint("source IN ('stream', 'rest', 'archive')", name="source"),
        MYSQL_TABLE,
    )

    kind: Mapped[str] = mapped_column(sa.String(16))
    why: Mapped[str] = mapped_column(sa.String(REASON_LEN))


class RecheckCommentRow(Base):
    """A human's recheck comment (migration 0007): the one kind of human comment kept, for the
    recheck burden of each CI. `aimed_at` is the CI it names (``recheck-acme``) or NULL for a
    plain ``recheck``, which the queries attribute to the CIs whose latest result on the patch
    set before it was a failure. Deduplicated like ``ci_runs`` (same keys)."""

    __tablename__ = "recheck_comments"
    __table_args__ = (
        sa.UniqueConstraint("server_id", "dedup_key"),
        sa.UniqueConstraint("server_id", "message_id"),
        sa.Index(None, "server_id", "content_key"),
        sa.Index(None, "posted_at"),
        sa.CheckConstraint("source IN ('stream', 'rest', 'archive')", name="source"),
        MYSQL_TABLE,
    )

    id: Mapped[int] = mapped_column(id_type(), primary_key=True, autoincrement=True)
    server_id: Mapped[int] = mapped_column(id_type(), sa.ForeignKey("gerrit_servers.id"))
    patchset_id: Mapped[int] = mapped_column(id_type(), sa.ForeignKey("patchsets.id", ondelete="CASCADE"))
    author_id: Mapped[int] = mapped_column(id_type(), sa.ForeignKey("accounts.id"))
    project: Mapped[str] = mapped_column(sa.String(NAME_LEN))
    branch: Mapped[str] = mapped_column(sa.String(NAME_LEN))
    change_number: Mapped[int] = mapped_column(sa.Integer)
    patchset_number: Mapped[int] = mapped_column(sa.Integer)
    posted_at: Mapped[datetime] = mapped_column(UTCDateTime)
    aimed_at: Mapped[str | None] = mapped_column(sa.String(NAME_LEN))
    text: Mapped[str] = mapped_column(sa.String(RECHECK_TEXT_LEN))
    content_key: Mapped[str] = mapped_column(KeyString(CONTENT_KEY_LEN))
    dedup_key: Mapped[str] = mapped_column(KeyString(DEDUP_KEY_LEN))
    message_id: Mapped[str | None] = mapped_column(KeyString(MESSAGE_ID_LEN))
    source: Mapped[str] = mapped_column(sa.String(16))


# -- intake: the raw journal, dead letters, sync watermarks ----------------------------------------


class EventJournalRow(Base):
    __tablename__ = "event_journal"
    __table_args__ = (sa.Index(None, "received_at"), MYSQL_TABLE)

    id: Mapped[int] = mapped_column(id_type(), primary_key=True, autoincrement=True)
    server_id: Mapped[int] = mapped_column(id_type(), sa.ForeignKey("gerrit_servers.id"))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    event_type: Mapped[str] = mapped_column(sa.String(64))
    event_created_on: Mapped[datetime | None] = mapped_column(UTCDateTime)
    raw: Mapped[str] = mapped_column(LongText)


class DeadLetterRow(Base):
    __tablename__ = "dead_letters"
    __table_args__ = (sa.Index(None, "received_at"), MYSQL_TABLE)

    id: Mapped[int] = mapped_column(id_type(), primary_key=True, autoincrement=True)
    server_id: Mapped[int | None] = mapped_column(id_type(), sa.ForeignKey("gerrit_servers.id"))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    source: Mapped[str] = mapped_column(sa.String(32))
    reason: Mapped[str] = mapped_column(sa.String(REASON_LEN))
    raw: Mapped[str] = mapped_column(LongText)
    raw_length: Mapped[int] = mapped_column(sa.BigInteger)  # bytes received (before decoding/clipping)
    resolved: Mapped[bool] = mapped_column(sa.Boolean, server_default=sa.false())


class SyncWatermarkRow(Base):
    __tablename__ = "sync_watermarks"
    __table_args__ = (MYSQL_TABLE,)

    server_id: Mapped[int] = mapped_column(id_type(), sa.ForeignKey("gerrit_servers.id"), primary_key=True)
    name: Mapped[str] = mapped_column(KeyString(64), primary_key=True)
    value: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


# -- derived for reading: hourly rollups, latency histograms, the feed -----------------------------


class _RollupSums:
    """The summed columns shared by the per-project rollups and the per-CI hour totals."""

    runs: Mapped[int] = mapped_column(sa.Integer, server_default="0")
    successes: Mapped[int] = mapped_column(sa.Integer, server_default="0")
    test_failures: Mapped[int] = mapped_column(sa.Integer, server_default="0")
    infra_errors: Mapped[int] = mapped_column(sa.Integer, server_default="0")
    latency_n: Mapped[int] = mapped_column(sa.Integer, server_default="0")
    latency_sum: Mapped[float] = mapped_column(sa.Double, server_default="0")


class CIRollupRow(_RollupSums, Base):
    """Per CI system, project and hour: counts that every health window sums."""

    __tablename__ = "ci_rollups"
    __table_args__ = (
        # a window's sums straight from the index (the primary key adds the project), migration 0003
        sa.Index(
            "ix_ci_rollups_hour_sums",
            "hour",
            "ci_system_id",
            "runs",
            "successes",
            "test_failures",
            "infra_errors",
            "latency_n",
            "latency_sum",
        ),
        MYSQL_TABLE,
    )

    ci_system_id: Mapped[int] = mapped_column(id_type(), sa.ForeignKey("ci_systems.id"), primary_key=True)
    project: Mapped[str] = mapped_column(KeyString(NAME_LEN), primary_key=True)
    hour: Mapped[datetime] = mapped_column(UTCDateTime, primary_key=True)


class CIHourTotalRow(_RollupSums, Base):
    """Per CI system and hour: the :class:`CIRollupRow` sums over every project (migration 0003).
    The health windows without a project filter read these: 40 CIs x 24 h is a thousand rows,
    where the per-project rows of a busy day number tens of thousands."""

    __tablename__ = "ci_hour_totals"
    __table_args__ = (MYSQL_TABLE,)

    hour: Mapped[datetime] = mapped_column(UTCDateTime, primary_key=True)
    ci_system_id: Mapped[int] = mapped_column(id_type(), sa.ForeignKey("ci_systems.id"), primary_key=True)


class CILatencyRow(Base):
    """Per CI system and hour: a log2 histogram of response latency, for p50/p95 without raw rows."""

    __tablename__ = "ci_latency"
    __table_args__ = (MYSQL_TABLE,)

    ci_system_id: Mapped[int] = mapped_column(id_type(), sa.ForeignKey("ci_systems.id"), primary_key=True)
    hour: Mapped[datetime] = mapped_column(UTCDateTime, primary_key=True)
    bucket: Mapped[int] = mapped_column(sa.SmallInteger, primary_key=True, autoincrement=False)
    n: Mapped[int] = mapped_column(sa.Integer, server_default="0")


class FeedRow(Base):
    """One pushed message (run, alert, state); `id` is the resume point for subscribers."""

    __tablename__ = "feed"
    __table_args__ = (sa.Index(None, "created_at"), MYSQL_TABLE)

    id: Mapped[int] = mapped_column(id_type(), primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(sa.String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ci_system_id: Mapped[int | None] = mapped_column(id_type(), sa.ForeignKey("ci_systems.id"))
    project: Mapped[str | None] = mapped_column(sa.String(NAME_LEN))
    payload: Mapped[str] = mapped_column(LongText)  # JSON of the message's `data`


# -- incidents, their edges (alerts), notes, maintenance, webhook deliveries -----------------------


class AlertRow(Base):
    __tablename__ = "alerts"
    __table_args__ = (
        sa.Index(None, "ci_system_id", "created_at"),
        sa.Index(None, "created_at"),
        sa.Index(None, "incident_id", "edge", unique=True),
        MYSQL_TABLE,
    )

    id: Mapped[int] = mapped_column(id_type(), primary_key=True, autoincrement=True)
    rule: Mapped[str] = mapped_column(sa.String(128))
    kind: Mapped[str] = mapped_column(sa.String(32))
    ci_system_id: Mapped[int] = mapped_column(id_type(), sa.ForeignKey("ci_systems.id"))
    project: Mapped[str | None] = mapped_column(sa.String(NAME_LEN))
    severity: Mapped[str] = mapped_column(sa.String(16))
    message: Mapped[str] = mapped_column(LongText)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    run_id: Mapped[int | None] = mapped_column(sa.BigInteger)
    muted: Mapped[bool] = mapped_column(sa.Boolean, server_default=sa.false())
    feed_id: Mapped[int | None] = mapped_column(sa.BigInteger)
    # since migration 0005 an alert is the notification of one incident edge, at most once each
    incident_id: Mapped[int | None] = mapped_column(sa.BigInteger)
    edge: Mapped[str | None] = mapped_column(sa.String(16))  # open | resolve
    quiet: Mapped[str | None] = mapped_column(sa.String(32))  # why it notified no one: history, silenced, ...


class IncidentRow(Base):
    """One condition of one rule for one CI (and project, for per-project rules), with its lifecycle."""

    __tablename__ = "incidents"
    __table_args__ = (
        sa.Index(None, "ci_system_id", "rule", "scope", "started_at"),
        sa.Index(None, "state", "started_at"),
        MYSQL_TABLE,
    )

    id: Mapped[int] = mapped_column(id_type(), primary_key=True, autoincrement=True)
    ci_system_id: Mapped[int] = mapped_column(id_type(), sa.ForeignKey("ci_systems.id"))
    rule: Mapped[str] = mapped_column(sa.String(128))
    kind: Mapped[str] = mapped_column(sa.String(32))
    scope: Mapped[str] = mapped_column(sa.String(NAME_LEN), server_default="")
    state: Mapped[str] = mapped_column(sa.String(16))  # firing | resolved
    severity: Mapped[str] = mapped_column(sa.String(16))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    fired_at: Mapped[datetime] = mapped_column(UTCDateTime)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_run_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    summary: Mapped[str] = mapped_column(sa.String(1024))
    failed: Mapped[int] = mapped_column(sa.Integer, server_default="0")
    passed: Mapped[int] = mapped_column(sa.Integer, server_default="0")
    inhibited: Mapped[int] = mapped_column(sa.Integer, server_default="0")
    quiet: Mapped[str | None] = mapped_column(sa.String(32))  # why its edges notify no one (history, maintenance)
    acked_by: Mapped[str | None] = mapped_column(sa.String(NAME_LEN))
    acked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ack_note: Mapped[str | None] = mapped_column(sa.String(1024))
    silenced_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    silenced_until_resolved: Mapped[bool] = mapped_column(sa.Boolean, server_default=sa.false())
    silenced_by: Mapped[str | None] = mapped_column(sa.String(NAME_LEN))
    silence_reason: Mapped[str | None] = mapped_column(sa.String(1024))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class IncidentRunRow(Base):
    """A run that belongs to an incident."""

    __tablename__ = "incident_runs"
    __table_args__ = (MYSQL_TABLE,)

    incident_id: Mapped[int] = mapped_column(
        id_type(), sa.ForeignKey("incidents.id", ondelete="CASCADE"), primary_key=True
    )
    run_id: Mapped[int] = mapped_column(sa.BigInteger, primary_key=True, autoincrement=False)


class IncidentNoteRow(Base):
    """What an operator did to an incident: ack, unack, silence, unsilence (who, when, why)."""

    __tablename__ = "incident_notes"
    __table_args__ = (sa.Index(None, "incident_id"), MYSQL_TABLE)

    id: Mapped[int] = mapped_column(id_type(), primary_key=True, autoincrement=True)
    incident_id: Mapped[int] = mapped_column(id_type(), sa.ForeignKey("incidents.id", ondelete="CASCADE"))
    action: Mapped[str] = mapped_column(sa.String(16))
    author: Mapped[str] = mapped_column(sa.String(NAME_LEN))
    note: Mapped[str | None] = mapped_column(sa.String(1024))
    until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class MaintenanceRow(Base):
    """A window declared ahead in which a CI's incidents notify no one."""

    __tablename__ = "maintenance_windows"
    __table_args__ = (sa.Index(None, "ci_system_id", "ends_at"), MYSQL_TABLE)

    id: Mapped[int] = mapped_column(id_type(), primary_key=True, autoincrement=True)
    ci_system_id: Mapped[int] = mapped_column(id_type(), sa.ForeignKey("ci_systems.id"))
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime)
    author: Mapped[str] = mapped_column(sa.String(NAME_LEN))
    reason: Mapped[str | None] = mapped_column(sa.String(1024))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class WebhookDeliveryRow(Base):
    __tablename__ = "webhook_deliveries"
    __table_args__ = (sa.Index(None, "alert_id"), MYSQL_TABLE)

    id: Mapped[int] = mapped_column(id_type(), primary_key=True, autoincrement=True)
    alert_id: Mapped[int] = mapped_column(id_type(), sa.ForeignKey("alerts.id", ondelete="CASCADE"))
    url: Mapped[str] = mapped_column(sa.String(URL_LEN))
    attempt: Mapped[int] = mapped_column(sa.Integer)
    status_code: Mapped[int | None] = mapped_column(sa.Integer)
    error: Mapped[str | None] = mapped_column(sa.String(1024))
    ok: Mapped[bool] = mapped_column(sa.Boolean, server_default=sa.false())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


# -- coordination between replicas -----------------------------------------------------------------


class LeaseRow(Base):
    """Who runs the collector of a server (SQLite; MySQL uses GET_LOCK instead)."""

    __tablename__ = "leases"
    __table_args__ = (MYSQL_TABLE,)

    name: Mapped[str] = mapped_column(KeyString(128), primary_key=True)
    holder: Mapped[str] = mapped_column(sa.String(NAME_LEN))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)


class StreamSessionRow(Base):
    """A stream-events session of one Gerrit server (migration 0006; read by store/collection.py)."""

    __tablename__ = "stream_sessions"
    __table_args__ = (sa.Index(None, "server_id", "connected_at"), MYSQL_TABLE)

    id: Mapped[int] = mapped_column(id_type(), primary_key=True, autoincrement=True)
    server_id: Mapped[int] = mapped_column(id_type(), sa.ForeignKey("gerrit_servers.id"))
    connected_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime)
    disconnected_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reason: Mapped[str | None] = mapped_column(sa.String(REASON_LEN))


class BackfillPassRow(Base):
    """One backfill pass of one Gerrit server and the range it read (migration 0006)."""

    __tablename__ = "backfill_passes"
    __table_args__ = (sa.Index(None, "server_id", "finished_at"), MYSQL_TABLE)

    id: Mapped[int] = mapped_column(id_type(), primary_key=True, autoincrement=True)
    server_id: Mapped[int] = mapped_column(id_type(), sa.ForeignKey("gerrit_servers.id"))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime] = mapped_column(UTCDateTime)
    since_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    until_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    changes: Mapped[int] = mapped_column(sa.Integer, server_default="0")
    comments: Mapped[int] = mapped_column(sa.Integer, server_default="0")
    runs_new: Mapped[int] = mapped_column(sa.Integer, server_default="0")
    outcome: Mapped[str] = mapped_column(sa.String(16))  # ok | failed | stalled
    error: Mapped[str | None] = mapped_column(sa.String(REASON_LEN))


# Core tables for the bulk write path and the reads
servers_t = Base.metadata.tables["gerrit_servers"]
accounts_t = Base.metadata.tables["accounts"]
ci_systems_t = Base.metadata.tables["ci_systems"]
changes_t = Base.metadata.tables["changes"]
patchsets_t = Base.metadata.tables["patchsets"]
runs_t = Base.metadata.tables["ci_runs"]
jobs_t = Base.metadata.tables["job_results"]
ci_comments_t = Base.metadata.tables["ci_comments"]
rechecks_t = Base.metadata.tables["recheck_comments"]
journal_t = Base.metadata.tables["event_journal"]
dead_letters_t = Base.metadata.tables["dead_letters"]
watermarks_t = Base.metadata.tables["sync_watermarks"]
rollups_t = Base.metadata.tables["ci_rollups"]
hour_totals_t = Base.metadata.tables["ci_hour_totals"]
latency_t = Base.metadata.tables["ci_latency"]
feed_t = Base.metadata.tables["feed"]
alerts_t = Base.metadata.tables["alerts"]
deliveries_t = Base.metadata.tables["webhook_deliveries"]
leases_t = Base.metadata.tables["leases"]
incidents_t = Base.metadata.tables["incidents"]
incident_runs_t = Base.metadata.tables["incident_runs"]
incident_notes_t = Base.metadata.tables["incident_notes"]
maintenance_t = Base.metadata.tables["maintenance_windows"]
sessions_t = Base.metadata.tables["stream_sessions"]
passes_t = Base.metadata.tables["backfill_passes"]
