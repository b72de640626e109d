"""recheck_comments: humans' recheck comments, for each CI's recheck burden

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02

The one kind of human comment cidash keeps: ``recheck`` (plain; the queries attribute it to the
CIs whose latest result on the patch set before it was a failure) or a CI-specific form such as
``recheck-acme`` (``aimed_at`` names the CI). Deduplicated with the same keys as ``ci_runs``, so
the stream's and the backfill's copies of one comment are one row.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from cidash.store.types import KeyString, UTCDateTime

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MYSQL = {"mysql_engine": "InnoDB", "mysql_charset": "utf8mb4"}
TABLE = "recheck_comments"


def _id_type() -> sa.types.TypeEngine[int]:
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _ref(column: str, target: str, *, cascade: bool = False) -> list[sa.SchemaItem]:
    return [
        sa.Column(column, _id_type(), nullable=False),
        sa.ForeignKeyConstraint(
            [column],
            [f"{target}.id"],
            name=op.f(f"fk_{TABLE}_{column}_{target}"),
            ondelete="CASCADE" if cascade else None,
        ),
    ]


def upgrade() -> None:
    op.create_table(
        TABLE,
        sa.Column("id", _id_type(), autoincrement=True, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{TABLE}")),
        *_ref("server_id", "gerrit_servers"),
        *_ref("patchset_id", "patchsets", cascade=True),
        *_ref("author_id", "accounts"),
        sa.Column("project", sa.String(255), nullable=False),
        sa.Column("branch", sa.String(255), nullable=False),
        sa.Column("change_number", sa.Integer(), nullable=False),
        sa.Column("patchset_number", sa.Integer(), nullable=False),
        sa.Column("posted_at", UTCDateTime(), nullable=False),
        sa.Column("aimed_at", sa.String(255), nullable=True),
        sa.Column("text", sa.String(512), nullable=False),
        sa.Column("content_key", KeyString(32), nullable=False),
        sa.Column("dedup_key", KeyString(80), nullable=False),
        sa.Column("message_id", KeyString(128), nullable=True),
        sa.Column("source", sa.String(16), nullable=False),
        sa.CheckConstraint("source IN ('stream', 'rest', 'archive')", name=op.f(f"ck_{TABLE}_source")),
        sa.UniqueConstraint("server_id", "dedup_key", name=op.f(f"uq_{TABLE}_server_id_dedup_key")),
        sa.UniqueConstraint("server_id", "message_id", name=op.f(f"uq_{TABLE}_server_id_message_id")),
        **MYSQL,
    )
    op.create_index(op.f(f"ix_{TABLE}_server_id_content_key"), TABLE, ["server_id", "content_key"])
    op.create_index(op.f(f"ix_{TABLE}_posted_at"), TABLE, ["posted_at"])


def downgrade() -> None:
    op.drop_table(TABLE)
