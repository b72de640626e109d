"""Tables for the read and live side: hourly rollups (fast health over big histories), the feed
(every message pushed to subscribers, ordered by id, replayable with `since`), alerts, webhook
deliveries and leases (which replica runs the collector of a server). Created by migration 0002;
incidents, their runs and notes, and maintenance windows by migration 0005.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from cidash.store.models import MYSQL_TABLE, NAME_LEN, URL_LEN, Base
from cidash.store.types import KeyString, LongText, UTCDateTime, id_type

LATENCY_BUCKETS = 24  # bucket b holds latencies in [2^(b-1), 2^b) seconds; b = 0 holds < 1 s


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


class LeaseRow(Base):
    """Who runs the collector of a server (SQLite; MySQL uses GET_LOCK instead)."""

    __tablename__ = "leases"
    __table_args__ = (MYSQL_TABLE,)

    name: Mapped[str] = mapped_column(KeyString(128), primary_key=True)
    holder: Mapped[str] = mapped_column(sa.String(NAME_LEN))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)


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
