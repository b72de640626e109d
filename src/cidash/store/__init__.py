"""Persistence, the step after parsing: one schema on SQLite (embedded default) and MySQL/MariaDB,
migrated by alembic. Imports config, errors, metrics, domain, gerrit and parsing; never health,
alerts, live, api or service.

This package is the store's public face: import from ``cidash.store``, not from its modules.
Every write goes through :class:`Store` (:meth:`Store.write`, one lock and one retry policy).
The reads are grouped by resource in the namespaces named here: ``reads`` (``reads.systems``,
``reads.runs``, ``reads.grid``, ``reads.series``, ``reads.jobs``, ``reads.comments``,
``reads.health``, ``reads.params``, ``reads.cursor``, ``reads.run_rows``), ``alerts_store``,
``collection``, ``feed`` and ``rechecks``; ``schema`` holds the tables.
"""

from cidash.store import alerts_store, collection, feed, reads, rechecks, schema
from cidash.store.alerts_store import CIRef, HistoryRun, NewAlert, StoredIncident
from cidash.store.collection import HEARTBEAT_S, PassOutcome, PassRecord
from cidash.store.comment_writer import AfterInsert, WriteStats
from cidash.store.dedup import DEDUP_WINDOW
from cidash.store.derived_writes import open_store
from cidash.store.engine import create_engine, is_sqlite
from cidash.store.facade import Store
from cidash.store.feed import FeedFilter, StoredFeedRow
from cidash.store.inserted_run import InsertedRun
from cidash.store.journal import DeadLetter, JournalEvent, StoredDeadLetter
from cidash.store.migrate import downgrade, migrations_dir, upgrade, wait_for_schema
from cidash.store.rechecks import recheck_cases
from cidash.store.rule_trial import try_rule
from cidash.store.schema import CISource, incidents_t, leases_t
from cidash.store.types import MAX_ID, OutOfRangeError, bounded_id, bounded_utc, to_aware_utc

__all__ = [
    "DEDUP_WINDOW",
    "HEARTBEAT_S",
    "MAX_ID",
    "AfterInsert",
    "CIRef",
    "CISource",
    "DeadLetter",
    "FeedFilter",
    "HistoryRun",
    "InsertedRun",
    "JournalEvent",
    "NewAlert",
    "OutOfRangeError",
    "PassOutcome",
    "PassRecord",
    "Store",
    "StoredDeadLetter",
    "StoredFeedRow",
    "StoredIncident",
    "WriteStats",
    "alerts_store",
    "bounded_id",
    "bounded_utc",
    "collection",
    "create_engine",
    "downgrade",
    "feed",
    "incidents_t",
    "is_sqlite",
    "leases_t",
    "migrations_dir",
    "open_store",
    "reads",
    "recheck_cases",
    "rechecks",
    "schema",
    "to_aware_utc",
    "try_rule",
    "upgrade",
    "wait_for_schema",
]
