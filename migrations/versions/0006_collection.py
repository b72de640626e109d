"""collector completeness: the stream sessions and backfill passes of each Gerrit server

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02

* ``stream_sessions``: one row per stream-events connection: ``connected_at``, ``last_seen_at``
  (the collector's heartbeat while connected), ``disconnected_at`` and ``reason`` (NULL while
  connected, or when the process died; the next start closes it at ``last_seen_at``).
* ``backfill_passes``: one row per REST backfill pass: when it ran, the range it read
  (``since_at`` to ``until_at``), what it saw and stored, and how it ended (ok | failed | stalled).

A gap between two sessions is covered once completed passes have read all of it (see
:mod:`cidash.store.collection`).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from cidash.store.types import UTCDateTime

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MYSQL = {"mysql_engine": "InnoDB", "mysql_charset": "utf8mb4"}


def _id_type() -> sa.types.TypeEngine[int]:
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _server_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["server_id"], ["gerrit_servers.id"], name=op.f(f"fk_{table}_server_id_gerrit_servers")
    )


def upgrade() -> None:
    op.create_table(
        "stream_sessions",
        sa.Column("id", _id_type(), autoincrement=True, nullable=False),
        sa.Column("server_id", _id_type(), nullable=False),
        sa.Column("connected_at", UTCDateTime(), nullable=False),
        sa.Column("last_seen_at", UTCDateTime(), nullable=False),
        sa.Column("disconnected_at", UTCDateTime(), nullable=True),
        sa.Column("reason", sa.String(1024), nullable=True),
        _server_fk("stream_sessions"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stream_sessions")),
        **MYSQL,
    )
    op.create_index(op.f("ix_stream_sessions_server_id_connected_at"), "stream_sessions", ["server_id", "connected_at"])
    op.create_table(
        "backfill_passes",
        sa.Column("id", _id_type(), autoincrement=True, nullable=False),
        sa.Column("server_id", _id_type(), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.Column("finished_at", UTCDateTime(), nullable=False),
        sa.Column("since_at", UTCDateTime(), nullable=True),
        sa.Column("until_at", UTCDateTime(), nullable=True),
        sa.Column("changes", sa.Integer(), server_default="0", nullable=False),
        sa.Column("comments", sa.Integer(), server_default="0", nullable=False),
        sa.Column("runs_new", sa.Integer(), server_default="0", nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("error", sa.String(1024), nullable=True),
        _server_fk("backfill_passes"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_backfill_passes")),
        **MYSQL,
    )
    op.create_index(op.f("ix_backfill_passes_server_id_finished_at"), "backfill_passes", ["server_id", "finished_at"])


def downgrade() -> None:
    op.drop_table("backfill_passes")
    op.drop_table("stream_sessions")
