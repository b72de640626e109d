"""Prometheus metrics of the whole process, exposed by ``GET /metrics``.

The metric objects live here, in one registry, so that every part of cidash updates the same
ones: the collector (events received, runs stored, dead letters, reconnects, backfill
duration, ingest queue depth), the live side (websocket clients, subscriber queue depth) and
the API itself (requests by route template and status, with their duration)::

    from cidash import metrics
    metrics.EVENTS_RECEIVED.labels(server="opendev").inc()
    metrics.QUEUE_DEPTH.labels(queue="ingest:opendev").set(ingestor.pending)
    with metrics.BACKFILL_DURATION.labels(server="opendev").time():
        ...
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

REGISTRY = CollectorRegistry(auto_describe=True)
"""cidash's own registry (not the global default one: re-importing or creating several apps in
one process never registers a metric twice)."""

CONTENT_TYPE = CONTENT_TYPE_LATEST

EVENTS_RECEIVED = Counter(
    "cidash_events_received",
    "Gerrit events and REST messages received, by server and source (stream or rest).",
    ["server", "source"],
    registry=REGISTRY,
)
RUNS_STORED = Counter(
    "cidash_runs_stored",
    "CI runs inserted into the store, by server.",
    ["server"],
    registry=REGISTRY,
)
DEAD_LETTERED = Counter(
    "cidash_dead_lettered",
    "Inputs that could not be used and went to the dead-letter table, by server.",
    ["server"],
    registry=REGISTRY,
)
RECONNECTS = Counter(
    "cidash_stream_reconnects",
    "SSH stream-events reconnections, by server.",
    ["server"],
    registry=REGISTRY,
)
BACKFILL_DURATION = Histogram(
    "cidash_backfill_duration_seconds",
    "Duration of REST backfills, by server.",
    ["server"],
    buckets=(0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600),
    registry=REGISTRY,
)
BACKFILL_STALLED = Gauge(
    "cidash_backfill_stalled",
    "1 while the last REST backfill pass of a server was cut at its deadline (backfill_deadline_s), by server.",
    ["server"],
    registry=REGISTRY,
)
WEBSOCKET_CLIENTS = Gauge(
    "cidash_websocket_clients",
    "Live-feed subscribers currently connected (websocket and SSE).",
    ["transport"],
    registry=REGISTRY,
)
QUEUE_DEPTH = Gauge(
    "cidash_queue_depth",
    "Items waiting in an in-process queue (ingest:<server>, bus, webhooks, ...).",
    ["queue"],
    registry=REGISTRY,
)
WEBHOOK_DELIVERIES = Counter(
    "cidash_webhook_deliveries",
    "Webhook deliveries that ended, by outcome: delivered (2xx), refused (another status), failed "
    "(every attempt failed) or dropped (backlog full, or still queued at shutdown; the log names each).",
    ["outcome"],
    registry=REGISTRY,
)
WEBHOOK_FAILED_ATTEMPTS = Counter(
    "cidash_webhook_failed_attempts",
    "Webhook attempts that failed (deadline, connection error, 5xx, 408, 429); all but a delivery's "
    "last are retried after a backoff.",
    registry=REGISTRY,
)
HTTP_REQUESTS = Counter(
    "cidash_http_requests",
    "API requests answered, by method, route template and status code.",
    ["method", "route", "status"],
    registry=REGISTRY,
)
HTTP_DURATION = Histogram(
    "cidash_http_request_duration_seconds",
    "Time to answer API requests, by route template.",
    ["route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10),
    registry=REGISTRY,
)


def exposition() -> bytes:
    """The registry in the Prometheus text format (version 0.0.4)."""
    return generate_latest(REGISTRY)
