"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from cidash.store.types import KeyString, LongText, UTCDateTime

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MYSQL = {"mysql_engine": "InnoDB", "mysql_charset": "utf8mb4"}


def _id_type() -> sa.types.TypeEngine[int]:
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _pk(table: str) -> list[sa.SchemaItem]:
    return [
        sa.Column("id", _id_type(), autoincrement=True, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{table}")),
    ]


def _ref(table: str, column: str, target: str, *, nullable: bool = False, cascade: bool = False) -> list[sa.SchemaItem]:
    return [
        sa.Column(column, _id_type(), nullable=nullable),
        sa.ForeignKeyConstraint(
            [column],
            [f"{target}.id"],
            name=op.f(f"fk_{table}_{column}_{target}"),
            ondelete="CASCADE" if cascade else None,
        ),
    ]


def upgrade() -> None:
    op.create_table(
        "gerrit_servers",
        *_pk("gerrit_servers"),
        sa.Column("name", KeyString(255), nullable=False),
        sa.UniqueConstraint("name", name=op.f("uq_gerrit_servers_name")),
        **MYSQL,
    )
    op.create_table(
        "accounts",
        *_pk("accounts"),
        *_ref("accounts", "server_id", "gerrit_servers"),
        sa.Column("account_key", KeyString(255), nullable=False),
        sa.Column("gerrit_account_id", sa.BigInteger(), nullable=True),
        sa.Column("username", sa.String(255), nullable=True),
        sa.Column("name", sa.String(255), nullable=True),
        sa.Column("email", sa.String(255), nullable=True),
        sa.UniqueConstraint("server_id", "account_key", name=op.f("uq_accounts_server_id_account_key")),
        **MYSQL,
    )
    op.create_table(
        "ci_systems",
        *_pk("ci_systems"),
        *_ref("ci_systems", "server_id", "gerrit_servers"),
        *_ref("ci_systems", "account_id", "accounts"),
        sa.Column("display_name", sa.String(255), nullable=False),
        sa.Column("owner", sa.String(255), nullable=True),
        sa.Column("is_reference", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("confirmed", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("first_seen", UTCDateTime(), nullable=True),
        sa.Column("last_seen", UTCDateTime(), nullable=True),
        sa.CheckConstraint("source IN ('config', 'group', 'detected')", name=op.f("ck_ci_systems_source")),
        sa.UniqueConstraint("account_id", name=op.f("uq_ci_systems_account_id")),
        **MYSQL,
    )
    op.create_table(
        "changes",
        *_pk("changes"),
        *_ref("changes", "server_id", "gerrit_servers"),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("change_id", sa.String(255), nullable=True),
        sa.Column("project", sa.String(255), nullable=False),
        sa.Column("branch", sa.String(255), nullable=False),
        sa.Column("status", sa.String(32), nullable=True),
        sa.Column("subject", sa.String(1024), nullable=True),
        sa.Column("url", sa.String(2048), nullable=True),
        sa.Column("updated_at", UTCDateTime(), nullable=True),
        sa.UniqueConstraint("server_id", "number", name=op.f("uq_changes_server_id_number")),
        **MYSQL,
    )
    op.create_table(
        "patchsets",
        *_pk("patchsets"),
        *_ref("patchsets", "change_db_id", "changes", cascade=True),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=True),
        sa.Column("kind", sa.String(32), nullable=True),
        sa.Column("revision", sa.String(64), nullable=True),
        sa.UniqueConstraint("change_db_id", "number", name=op.f("uq_patchsets_change_db_id_number")),
        **MYSQL,
    )
    op.create_table(
        "ci_runs",
        *_pk("ci_runs"),
        *_ref("ci_runs", "server_id", "gerrit_servers"),
        *_ref("ci_runs", "ci_system_id", "ci_systems"),
        *_ref("ci_runs", "patchset_id", "patchsets", cascade=True),
        sa.Column("project", sa.String(255), nullable=False),
        sa.Column("branch", sa.String(255), nullable=False),
        sa.Column("change_number", sa.Integer(), nullable=False),
        sa.Column("patchset_number", sa.Integer(), nullable=False),
        sa.Column("result", sa.String(64), nullable=False),
        sa.Column("vote", sa.Integer(), nullable=True),
        sa.Column("pipeline", sa.String(128), nullable=True),
        sa.Column("posted_at", UTCDateTime(), nullable=False),
        sa.Column("latency_s", sa.Double(), nullable=True),
        sa.Column("content_key", KeyString(32), nullable=False),
        sa.Column("dedup_key", KeyString(80), nullable=False),
        sa.Column("message_id", KeyString(128), nullable=True),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("raw_comment", LongText(), nullable=False),
        sa.Column("parsed_with", sa.String(64), nullable=False),
        sa.CheckConstraint("source IN ('stream', 'rest', 'archive')", name=op.f("ck_ci_runs_source")),
        sa.UniqueConstraint("server_id", "dedup_key", name=op.f("uq_ci_runs_server_id_dedup_key")),
        sa.UniqueConstraint("server_id", "message_id", name=op.f("uq_ci_runs_server_id_message_id")),
        **MYSQL,
    )
    op.create_index(op.f("ix_ci_runs_server_id_content_key"), "ci_runs", ["server_id", "content_key"])
    op.create_index(op.f("ix_ci_runs_ci_system_id_posted_at"), "ci_runs", ["ci_system_id", "posted_at"])
    op.create_index(op.f("ix_ci_runs_project_posted_at"), "ci_runs", ["project", "posted_at"])
    op.create_index(op.f("ix_ci_runs_posted_at"), "ci_runs", ["posted_at"])
    op.create_table(
        "job_results",
        *_pk("job_results"),
        *_ref("job_results", "run_id", "ci_runs", cascade=True),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("url", sa.String(2048), nullable=True),
        sa.Column("result", sa.String(64), nullable=False),
        sa.Column("duration_s", sa.Integer(), nullable=True),
        sa.Column("voting", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column("detail", sa.String(512), nullable=True),
        sa.UniqueConstraint("run_id", "position", name=op.f("uq_job_results_run_id_position")),
        **MYSQL,
    )
    op.create_table(
        "event_journal",
        *_pk("event_journal"),
        *_ref("event_journal", "server_id", "gerrit_servers"),
        sa.Column("received_at", UTCDateTime(), nullable=False),
        sa.Column("event_type", sa.String(64), nullable=False),
        sa.Column("event_created_on", UTCDateTime(), nullable=True),
        sa.Column("raw", LongText(), nullable=False),
        **MYSQL,
    )
    op.create_index(op.f("ix_event_journal_received_at"), "event_journal", ["received_at"])
    op.create_table(
        "dead_letters",
        *_pk("dead_letters"),
        *_ref("dead_letters", "server_id", "gerrit_servers", nullable=True),
        sa.Column("received_at", UTCDateTime(), nullable=False),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("reason", sa.String(1024), nullable=False),
        sa.Column("raw", LongText(), nullable=False),
        sa.Column("raw_length", sa.BigInteger(), nullable=False),
        sa.Column("resolved", sa.Boolean(), server_default=sa.false(), nullable=False),
        **MYSQL,
    )
    op.create_index(op.f("ix_dead_letters_received_at"), "dead_letters", ["received_at"])
    op.create_table(
        "sync_watermarks",
        sa.Column("server_id", _id_type(), nullable=False),
        sa.Column("name", KeyString(64), nullable=False),
        sa.Column("value", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["server_id"], ["gerrit_servers.id"], name=op.f("fk_sync_watermarks_server_id_gerrit_servers")
        ),
        sa.PrimaryKeyConstraint("server_id", "name", name=op.f("pk_sync_watermarks")),
        **MYSQL,
    )


def downgrade() -> None:
    for table in (
        "sync_watermarks",
        "dead_letters",
        "event_journal",
        "job_results",
        "ci_runs",
        "patchsets",
        "changes",
        "ci_systems",
        "accounts",
        "gerrit_servers",
    ):
        op.drop_table(table)
