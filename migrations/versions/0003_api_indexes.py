"""indexes the API reads through, per-CI hourly totals; ci_rollups.latency_sum as a double

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25

* ``ci_runs (posted_at, id, ci_system_id, patchset_id, result)`` and the same after ``project``:
  the run-level health metrics (a window of runs grouped per CI and patch set) and the grid's
  "most recent patch sets" read them without touching a run row. ``id`` right after
  ``posted_at`` keeps them in keyset order ``(posted_at, id)`` for run pages, so they replace
  ``ix_ci_runs_posted_at`` and ``ix_ci_runs_project_posted_at``.
* ``ci_runs (patchset_id, ci_system_id, posted_at)``: the newest run of each CI on each patch set
  (grid cells, change view). On MySQL it also serves the ``patchset_id`` foreign key, so the index
  MySQL made for that key on its own is dropped.
* ``ci_rollups (hour, ci_system_id, runs, ..., latency_sum)`` instead of ``(hour)``: every health
  window sums the rollup rows of its hours; holding the sums (and, through the primary key, the
  project), the index answers that without a lookup per row.
* ``ci_hour_totals``: the ``ci_rollups`` sums per (hour, CI system) over every project, filled
  from ``ci_rollups``; the health windows without a project filter read a row per CI and hour.
* ``ci_rollups.latency_sum``: ``FLOAT`` is single precision on MySQL (24-bit mantissa: sums of
  seconds lose whole seconds past 16.7 M); ``DOUBLE`` like ``ci_runs.latency_s``.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from cidash.store.types import UTCDateTime

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NEW_INDEXES: dict[str, list[str]] = {
    "ix_ci_runs_posted_at_id_ci_system_id_patchset_id_result": [
        "posted_at",
        "id",
        "ci_system_id",
        "patchset_id",
        "result",
    ],
    "ix_ci_runs_project_posted_at_id_ci_system_id_patchset_id_result": [
        "project",
        "posted_at",
        "id",
        "ci_system_id",
        "patchset_id",
        "result",
    ],
    "ix_ci_runs_patchset_id_ci_system_id_posted_at": ["patchset_id", "ci_system_id", "posted_at"],
}
OLD_INDEXES: dict[str, list[str]] = {
    "ix_ci_runs_posted_at": ["posted_at"],
    "ix_ci_runs_project_posted_at": ["project", "posted_at"],
}
ROLLUP_SUMS = ["runs", "successes", "test_failures", "infra_errors", "latency_n", "latency_sum"]
ROLLUP_INDEX = "ix_ci_rollups_hour_sums"  # named by hand: the column list would pass 64 characters
# the index MySQL creates by itself for a foreign key without one (named after the constraint)
MYSQL_FK_INDEX = ("fk_ci_runs_patchset_id_patchsets", ["patchset_id"])


def _is_mysql() -> bool:
    return op.get_bind().dialect.name in ("mysql", "mariadb")


def _index_names(table: str) -> set[str]:
    return {str(index["name"]) for index in sa.inspect(op.get_bind()).get_indexes(table)}


def _set_latency_sum(new: sa.types.TypeEngine[float], old: sa.types.TypeEngine[float]) -> None:
    # SQLite cannot ALTER a column type: batch mode copies the table (both are REAL there anyway)
    with op.batch_alter_table("ci_rollups") as batch:
        batch.alter_column(
            "latency_sum", type_=new, existing_type=old, existing_nullable=False, existing_server_default="0"
        )


def _create_hour_totals() -> None:
    op.create_table(
        "ci_hour_totals",
        sa.Column("hour", UTCDateTime(), nullable=False),
        sa.Column("ci_system_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        *(sa.Column(name, sa.Integer(), server_default="0", nullable=False) for name in ROLLUP_SUMS[:-1]),
        sa.Column("latency_sum", sa.Double(), server_default="0", nullable=False),
        sa.ForeignKeyConstraint(
            ["ci_system_id"], ["ci_systems.id"], name=op.f("fk_ci_hour_totals_ci_system_id_ci_systems")
        ),
        sa.PrimaryKeyConstraint("hour", "ci_system_id", name=op.f("pk_ci_hour_totals")),
        mysql_engine="InnoDB",
        mysql_charset="utf8mb4",
    )
    sums = ", ".join(ROLLUP_SUMS)
    op.execute(
        f"INSERT INTO ci_hour_totals (hour, ci_system_id, {sums}) "
        f"SELECT hour, ci_system_id, {', '.join(f'SUM({name})' for name in ROLLUP_SUMS)} "
        "FROM ci_rollups GROUP BY hour, ci_system_id"
    )


def upgrade() -> None:
    for name, columns in NEW_INDEXES.items():
        op.create_index(name, "ci_runs", columns)
    for name in OLD_INDEXES:
        op.drop_index(name, table_name="ci_runs")
    fk_index, _ = MYSQL_FK_INDEX
    if _is_mysql() and fk_index in _index_names("ci_runs"):
        op.drop_index(fk_index, table_name="ci_runs")  # the (patchset_id, ...) index serves the key now
    _set_latency_sum(sa.Double(), sa.Float())
    op.create_index(ROLLUP_INDEX, "ci_rollups", ["hour", "ci_system_id", *ROLLUP_SUMS])
    op.drop_index("ix_ci_rollups_hour", table_name="ci_rollups")
    _create_hour_totals()


def downgrade() -> None:
    op.drop_table("ci_hour_totals")
    op.create_index("ix_ci_rollups_hour", "ci_rollups", ["hour"])
    op.drop_index(ROLLUP_INDEX, table_name="ci_rollups")
    _set_latency_sum(sa.Float(), sa.Double())
    if _is_mysql():
        # the foreign key needs an index of its own before the one serving it can go
        op.create_index(MYSQL_FK_INDEX[0], "ci_runs", MYSQL_FK_INDEX[1])
    for name, columns in OLD_INDEXES.items():
        op.create_index(name, "ci_runs", columns)
    for name in NEW_INDEXES:
        op.drop_index(name, table_name="ci_runs")
