"""incidents: one per condition of a rule for a CI, their runs and notes, maintenance windows;
alerts become the notifications of incident edges

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02

* ``incidents``: (CI, rule, scope) with ``started_at`` (the first run that made the condition
  true), ``resolved_at``, state firing | resolved, severity, summary line, ack and silence.
* ``incident_runs``: the runs that belong to an incident; ``incident_notes``: acks and silences
  (who, when, why), the incident's history; ``maintenance_windows``: declared ahead per CI.
* ``alerts.incident_id``/``edge``/``quiet``: an alert row is the notification of one edge (open,
  resolve) of one incident, unique per (incident, edge) so that no edge is notified twice, even
  by two replicas around a takeover.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from cidash.store.types import UTCDateTime

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MYSQL = {"mysql_engine": "InnoDB", "mysql_charset": "utf8mb4"}


def _id_type() -> sa.types.TypeEngine[int]:
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _fk(table: str, column: str, target: str, **options: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint([column], [f"{target}.id"], name=op.f(f"fk_{table}_{column}_{target}"), **options)


def upgrade() -> None:
    with op.batch_alter_table("alerts") as batch:
        batch.add_column(sa.Column("incident_id", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("edge", sa.String(16), nullable=True))
        batch.add_column(sa.Column("quiet", sa.String(32), nullable=True))
    op.create_index(op.f("ix_alerts_incident_id_edge"), "alerts", ["incident_id", "edge"], unique=True)
    op.create_table(
        "incidents",
        sa.Column("id", _id_type(), autoincrement=True, nullable=False),
        sa.Column("ci_system_id", _id_type(), nullable=False),
        sa.Column("rule", sa.String(128), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("scope", sa.String(255), server_default="", nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.Column("fired_at", UTCDateTime(), nullable=False),
        sa.Column("resolved_at", UTCDateTime(), nullable=True),
        sa.Column("last_run_at", UTCDateTime(), nullable=True),
        sa.Column("summary", sa.String(1024), nullable=False),
        sa.Column("failed", sa.Integer(), server_default="0", nullable=False),
        sa.Column("passed", sa.Integer(), server_default="0", nullable=False),
        sa.Column("inhibited", sa.Integer(), server_default="0", nullable=False),
        sa.Column("quiet", sa.String(32), nullable=True),
        sa.Column("acked_by", sa.String(255), nullable=True),
        sa.Column("acked_at", UTCDateTime(), nullable=True),
        sa.Column("ack_note", sa.String(1024), nullable=True),
        sa.Column("silenced_until", UTCDateTime(), nullable=True),
        sa.Column("silenced_until_resolved", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("silenced_by", sa.String(255), nullable=True),
        sa.Column("silence_reason", sa.String(1024), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        _fk("incidents", "ci_system_id", "ci_systems"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_incidents")),
        **MYSQL,
    )
    op.create_index(
        op.f("ix_incidents_ci_system_id_rule_scope_started_at"),
        "incidents",
        ["ci_system_id", "rule", "scope", "started_at"],
    )
    op.create_index(op.f("ix_incidents_state_started_at"), "incidents", ["state", "started_at"])
    op.create_table(
        "incident_runs",
        sa.Column("incident_id", _id_type(), nullable=False),
        sa.Column("run_id", sa.BigInteger(), autoincrement=False, nullable=False),
        _fk("incident_runs", "incident_id", "incidents", ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("incident_id", "run_id", name=op.f("pk_incident_runs")),
        **MYSQL,
    )
    op.create_table(
        "incident_notes",
        sa.Column("id", _id_type(), autoincrement=True, nullable=False),
        sa.Column("incident_id", _id_type(), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("author", sa.String(255), nullable=False),
        sa.Column("note", sa.String(1024), nullable=True),
        sa.Column("until", UTCDateTime(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        _fk("incident_notes", "incident_id", "incidents", ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_incident_notes")),
        **MYSQL,
    )
    op.create_index(op.f("ix_incident_notes_incident_id"), "incident_notes", ["incident_id"])
    op.create_table(
        "maintenance_windows",
        sa.Column("id", _id_type(), autoincrement=True, nullable=False),
        sa.Column("ci_system_id", _id_type(), nullable=False),
        sa.Column("starts_at", UTCDateTime(), nullable=False),
        sa.Column("ends_at", UTCDateTime(), nullable=False),
        sa.Column("author", sa.String(255), nullable=False),
        sa.Column("reason", sa.String(1024), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        _fk("maintenance_windows", "ci_system_id", "ci_systems"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_maintenance_windows")),
        **MYSQL,
    )
    op.create_index(
        op.f("ix_maintenance_windows_ci_system_id_ends_at"), "maintenance_windows", ["ci_system_id", "ends_at"]
    )


def downgrade() -> None:
    for table in ("maintenance_windows", "incident_notes", "incident_runs", "incidents"):
        op.drop_table(table)
    op.drop_index(op.f("ix_alerts_incident_id_edge"), table_name="alerts")
    with op.batch_alter_table("alerts") as batch:
        for column in ("quiet", "edge", "incident_id"):
            batch.drop_column(column)
