"""SQL store over SQLAlchemy Core tables (``store/schema.py``), on SQLite or PostgreSQL.

One implementation for both databases: every store builds its statements once, as SQLAlchemy Core
expressions over the portable tables, and hands them to an *executor* chosen by dialect. The modules, each
importing only those above it (``tests/test_import_graph.py`` fails on a cycle):

* ``executor`` — the leaf: the ``Executor`` / ``Transaction`` protocols, statements compiled once per
  dialect, the statement builders and the JSON column codec the stores share;
* ``sqlite`` — ``SqliteDb``: a synchronous engine, statements run inline (microseconds, less than a thread
  hop); ``postgres`` — ``PostgresDb``: the same statements compiled for PostgreSQL and run on a pool of
  native asyncio psycopg connections, and ``PostgresChanges``, the client change feed (``LISTEN``);
* the stores, one module per record family: ``ephemeral`` (single-use records and counters), ``clients``,
  ``users``, ``keys`` (the server's keys), ``tokens`` (tokens and grants), ``governance`` (administrators,
  audit log, client key first-seen times), ``flows`` (the flow-record hash chain);
* ``store`` — ``SqlStore``: all of them on one executor, opened from a URL.

The tables (``store/schema.py``, ``store/flow_schema.py`` in ``store/metadata.py``'s ``MetaData``) and their
versions (``store/migrate.py``, ``store/migrations/``) sit beside this package, not in it: Alembic, ``jarmor
db`` and the health check use them without any store, and they import nothing of this package.

Single-use operations are single statements, atomic on both databases (see ``ephemeral``);
``TokenStore.rotate`` is one transaction (see ``tokens``). SQLite connections run in driver autocommit mode
(``isolation_level=None``), WAL journal, ``synchronous=NORMAL``, ``busy_timeout`` and ``foreign_keys`` on;
PostgreSQL connections in autocommit mode. Single statements commit on their own, multi-statement
transactions are opened explicitly.

This package imports SQLAlchemy but not psycopg: ``store.py`` imports ``postgres`` only for a PostgreSQL URL.
"""

from __future__ import annotations

from .clients import SqlClientStore
from .ephemeral import DEFAULT_PURGE_EVERY, Clock, SqlEphemeralStore
from .flows import SqlFlowRecordStore
from .governance import SqlAdminStore, SqlAuditLog, SqlClientKeyHistory
from .keys import SqlKeyStore
from .sqlite import DEFAULT_BUSY_TIMEOUT_MS
from .store import DEFAULT_POOL_SIZE, SqlStore
from .tokens import SqlGrantStore, SqlTokenStore
from .users import SqlUserStore

__all__ = [
    "DEFAULT_BUSY_TIMEOUT_MS",
    "DEFAULT_POOL_SIZE",
    "DEFAULT_PURGE_EVERY",
    "Clock",
    "SqlAdminStore",
    "SqlAuditLog",
    "SqlClientKeyHistory",
    "SqlClientStore",
    "SqlEphemeralStore",
    "SqlFlowRecordStore",
    "SqlGrantStore",
    "SqlKeyStore",
    "SqlStore",
    "SqlTokenStore",
    "SqlUserStore",
]
