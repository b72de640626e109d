"""Tables for the read and live side: hourly rollups (fast health over big histories), the feed
(every message pushed to subscribers, ordered by id, replayable with `since`), alerts, webhook
deliveries and leases (which replica runs the collector of a server). Created by migration 0002.
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
    __table_args__ = (sa.Index(None, "ci_system_id", "created_at"), sa.Index(None, "created_at"), MYSQL_TABLE)

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
