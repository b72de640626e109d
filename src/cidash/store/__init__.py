"""Persistence: one schema on SQLite (embedded default) and MySQL/MariaDB, migrated by alembic."""

from cidash.store.comment_writer import AfterInsert, WriteStats
from cidash.store.dedup import DEDUP_WINDOW
from cidash.store.facade import Store
from cidash.store.inserted_run import InsertedRun
from cidash.store.journal import StoredDeadLetter
from cidash.store.migrate import downgrade, migrations_dir, upgrade
from cidash.store.schema import CISource

__all__ = [
    "DEDUP_WINDOW",
    "AfterInsert",
    "CISource",
    "InsertedRun",
    "Store",
    "StoredDeadLetter",
    "WriteStats",
    "downgrade",
    "migrations_dir",
    "upgrade",
]
