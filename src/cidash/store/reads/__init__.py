"""Reads of the store, by resource: each module holds the statements one resource needs.

Importable from above the store (``cidash.health``, ``cidash.api``); imports only the store's own
modules and ``cidash.domain``.
"""

from cidash.store.reads import health

__all__ = ["health"]
