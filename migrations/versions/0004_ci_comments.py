"""ci_comments: the CI comments that did not become runs (starts, unread)

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02

Per CI and window the API counts how many comments became results, starts or nothing
("unread"), and shows the unread ones with their text; re-parsing with new rules turns an
unread comment into a run. So a CI's comment that is not a result is kept too, deduplicated
with the same keys as ``ci_runs``; ``(ci_system_id, posted_at, kind)`` answers the counts of a
window from the index.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from cidash.store.types import KeyString, LongText, UTCDateTime

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MYSQL = {"mysql_engine": "InnoDB", "mysql_charset": "utf8mb4"}
TABLE = "ci_comments"


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
        *_ref("ci_system_id", "ci_systems"),
        *_ref("patchset_id", "patchsets", cascade=True),
        sa.Column("project", sa.String(255), nullable=False),
        sa.Column("branch", sa.String(255), nullable=False),
        sa.Column("change_number", sa.Integer(), nullable=False),
        sa.Column("patchset_number", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("vote", sa.Integer(), nullable=True),
        sa.Column("posted_at", UTCDateTime(), nullable=False),
        sa.Column("content_key", KeyString(32), nullable=False),
        sa.Column("dedup_key", KeyString(80), nullable=False),
        sa.Column("message_id", KeyString(128), nullable=True),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("raw_comment", LongText(), nullable=False),
        sa.Column("why", sa.String(1024), nullable=False),
        sa.Column("parsed_with", sa.String(64), nullable=False),
        sa.CheckConstraint("kind IN ('start', 'unread')", name=op.f(f"ck_{TABLE}_kind")),
        sa.CheckConstraint("source IN ('stream', 'rest', 'archive')", name=op.f(f"ck_{TABLE}_source")),
        sa.UniqueConstraint("server_id", "dedup_key", name=op.f(f"uq_{TABLE}_server_id_dedup_key")),
        sa.UniqueConstraint("server_id", "message_id", name=op.f(f"uq_{TABLE}_server_id_message_id")),
        **MYSQL,
    )
    op.create_index(op.f(f"ix_{TABLE}_server_id_content_key"), TABLE, ["server_id", "content_key"])
    op.create_index(op.f(f"ix_{TABLE}_ci_system_id_posted_at_kind"), TABLE, ["ci_system_id", "posted_at", "kind"])


def downgrade() -> None:
    op.drop_table(TABLE)
