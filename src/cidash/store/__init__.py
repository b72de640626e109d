"""Persistence: one schema on SQLite (embedded default) and MySQL/MariaDB, migrated by alembic."""

from cidash.store.comments import AfterInsert, WriteStats
from cidash.store.dedup import DEDUP_WINDOW
from cidash.store.derived import InsertedRun
from cidash.store.journal import StoredDeadLetter
from cidash.store.migrate import downgrade, migrations_dir, upgrade
from cidash.store.models import CISource
from cidash.store.reader import StoredCISystem, StoredPatchSet, StoredRun
from cidash.store.writer import Store

__all__ = [
    "DEDUP_WINDOW",
    "AfterInsert",
    "CISource",
    "InsertedRun",
    "Store",
    "StoredCISystem",
    "StoredDeadLetter",
    "StoredPatchSet",
    "StoredRun",
    "WriteStats",
    "downgrade",
    "migrations_dir",
    "upgrade",
]
