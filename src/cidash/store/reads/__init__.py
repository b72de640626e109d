"""Reads of the store, by resource: each module holds the statements one resource needs.

Step: the store's read side (after parsing, before health). Importable from above the store
(``cidash.health``, ``cidash.api``) through ``cidash.store.reads``; imports only the store's own
modules, ``cidash.config``, ``cidash.domain`` and ``cidash.parsing``.

* ``params``: :class:`~cidash.store.reads.params.QueryError` (422) and the date-time parameters;
* ``cursor``: the run lists' page cursor;
* ``systems``: CI systems (:class:`~cidash.store.reads.systems.SystemRow`), their configuration
  entry, the overview's search, and the id -> name map the other reads use;
* ``runs``: run lists (filters, keyset pages, the CSV export's chunks), one run, the projects;
* ``run_rows``: the one RunOut builder and a runs' stored jobs;
* ``grid``: patch sets x CI systems (the grid, a change's patch sets);
* ``series``: a CI's points per hour or day, from the rollups;
* ``jobs``: a CI's jobs by name (failures, infra errors, the latest failure);
* ``comments``: a CI's stored comments by what they became, and as the parser reads them again;
* ``health``: the health model's statements.
"""

from cidash.store.reads import comments, cursor, grid, health, jobs, params, run_rows, runs, series, systems

__all__ = ["comments", "cursor", "grid", "health", "jobs", "params", "run_rows", "runs", "series", "systems"]
