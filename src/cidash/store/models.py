"""The schema (SQLAlchemy 2 typed declarative). Tables are created only by the alembic migrations
in ``migrations/``; ``tests/store/test_store.py`` checks that both agree.

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


# Core tables for the bulk write path
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
