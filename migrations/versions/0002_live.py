"""rollups, feed, alerts, webhook deliveries, leases

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from cidash.store.types import KeyString, LongText, UTCDateTime

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MYSQL = {"mysql_engine": "InnoDB", "mysql_charset": "utf8mb4"}


def _id_type() -> sa.types.TypeEngine[int]:
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _ci_ref(table: str, *, nullable: bool = False) -> list[sa.SchemaItem]:
    return [
        sa.Column("ci_system_id", _id_type(), nullable=nullable),
        sa.ForeignKeyConstraint(["ci_system_id"], ["ci_systems.id"], name=op.f(f"fk_{table}_ci_system_id_ci_systems")),
    ]


def upgrade() -> None:
    op.create_table(
        "ci_rollups",
        *_ci_ref("ci_rollups"),
        sa.Column("project", KeyString(255), nullable=False),
        sa.Column("hour", UTCDateTime(), nullable=False),
        sa.Column("runs", sa.Integer(), server_default="0", nullable=False),
        sa.Column("successes", sa.Integer(), server_default="0", nullable=False),
        sa.Column("test_failures", sa.Integer(), server_default="0", nullable=False),
        sa.Column("infra_errors", sa.Integer(), server_default="0", nullable=False),
        sa.Column("latency_n", sa.Integer(), server_default="0", nullable=False),
        sa.Column("latency_sum", sa.Float(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("ci_system_id", "project", "hour", name=op.f("pk_ci_rollups")),
        **MYSQL,
    )
    op.create_index(op.f("ix_ci_rollups_hour"), "ci_rollups", ["hour"])
    op.create_table(
        "ci_latency",
        *_ci_ref("ci_latency"),
        sa.Column("hour", UTCDateTime(), nullable=False),
        sa.Column("bucket", sa.SmallInteger(), autoincrement=False, nullable=False),
        sa.Column("n", sa.Integer(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("ci_system_id", "hour", "bucket", name=op.f("pk_ci_latency")),
        **MYSQL,
    )
    op.create_table(
        "feed",
        sa.Column("id", _id_type(), autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        *_ci_ref("feed", nullable=True),
        sa.Column("project", sa.String(255), nullable=True),
        sa.Column("payload", LongText(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_feed")),
        **MYSQL,
    )
    op.create_index(op.f("ix_feed_created_at"), "feed", ["created_at"])
    op.create_table(
        "alerts",
        sa.Column("id", _id_type(), autoincrement=True, nullable=False),
        sa.Column("rule", sa.String(128), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        *_ci_ref("alerts"),
        sa.Column("project", sa.String(255), nullable=True),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("message", LongText(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("run_id", sa.BigInteger(), nullable=True),
        sa.Column("muted", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("feed_id", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alerts")),
        **MYSQL,
    )
    op.create_index(op.f("ix_alerts_ci_system_id_created_at"), "alerts", ["ci_system_id", "created_at"])
    op.create_index(op.f("ix_alerts_created_at"), "alerts", ["created_at"])
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", _id_type(), autoincrement=True, nullable=False),
        sa.Column("alert_id", _id_type(), nullable=False),
        sa.Column("url", sa.String(2048), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("error", sa.String(1024), nullable=True),
        sa.Column("ok", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["alert_id"], ["alerts.id"], name=op.f("fk_webhook_deliveries_alert_id_alerts"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_deliveries")),
        **MYSQL,
    )
    op.create_index(op.f("ix_webhook_deliveries_alert_id"), "webhook_deliveries", ["alert_id"])
    op.create_table(
        "leases",
        sa.Column("name", KeyString(128), nullable=False),
        sa.Column("holder", sa.String(255), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_leases")),
        **MYSQL,
    )


def downgrade() -> None:
    # dropping a table drops its indexes; dropping them first fails on MySQL (they back foreign keys)
    for table in ("leases", "webhook_deliveries", "alerts", "feed", "ci_latency", "ci_rollups"):
        op.drop_table(table)
