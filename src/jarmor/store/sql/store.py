"""``SqlStore``: every SQL store of this package on one executor, opened from a database URL.

The schema is versioned with Alembic (``store/migrations/``, see ``store/migrate.py``): an SQLite database is
created and kept at the current revision on open (zero setup); a PostgreSQL database must have been brought
there with ``jarmor db upgrade`` and is refused otherwise.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from sqlalchemy import Engine, create_engine, make_url
from sqlalchemy.engine import URL
from sqlalchemy.pool import NullPool

from .. import migrate
from ..base import (
    AccountStore,
    AdminStore,
    AuditLog,
    ClientKeyHistory,
    ClientStore,
    EphemeralStore,
    FlowRecordStore,
    GrantStore,
    KeyStore,
    StoreError,
    StoreTransaction,
    TokenStore,
    UserStore,
)
from .accounts import SqlAccountStore
from .clients import CLIENT_CHANNEL, SqlClientStore
from .ephemeral import DEFAULT_PURGE_EVERY, Clock, SqlEphemeralStore
from .executor import Executor, upsert_for
from .flows import SqlFlowRecordStore
from .governance import SqlAdminStore, SqlAuditLog, SqlClientKeyHistory
from .keys import SqlKeyStore
from .sqlite import DEFAULT_BUSY_TIMEOUT_MS, SqliteDb, sqlite_engine
from .tokens import SqlGrantStore, SqlStoreTransaction, SqlTokenStore
from .users import SqlUserStore

if TYPE_CHECKING:
    from .postgres import PostgresChanges

DEFAULT_POOL_SIZE = 10


class SqlStore:
    """``Store`` over SQL tables (``schema.py``) on SQLite or PostgreSQL.

    Open it with :meth:`SqlStore.open`, which also configures SQLite connections (autocommit driver mode,
    WAL, ``busy_timeout``) and checks the schema version; an SQLite engine passed to the constructor
    directly must be configured the same way. ``engine`` is a synchronous engine: on SQLite the stores run
    on it, on PostgreSQL it serves only administration (migrations, the schema check, inspection) while the
    stores run on their own pool of asyncio connections, opened on first use in the running event loop
    (so a PostgreSQL ``SqlStore`` belongs to one event loop).
    """

    def __init__(
        self,
        engine: Engine,
        *,
        clock: Clock = time.time,
        purge_every: int = DEFAULT_PURGE_EVERY,
        pool_size: int = DEFAULT_POOL_SIZE,
    ) -> None:
        self.engine = engine
        insert = upsert_for(engine.dialect.name)
        self._sqlite: SqliteDb | None = None
        db: Executor
        if engine.dialect.name == "sqlite":
            db = self._sqlite = SqliteDb(engine)
        else:
            from .postgres import PostgresDb

            db = PostgresDb(engine, pool_size=pool_size)
        self._db = db
        self._ephemeral = SqlEphemeralStore(
            db, insert, clock, purge_every, hash_keys=engine.dialect.name == "postgresql",
            dialect=engine.dialect.name,
        )
        # typed as the protocols: ``Store``'s members are mutable attributes, hence invariant
        self.ephemeral: EphemeralStore = self._ephemeral
        self._changes: PostgresChanges | None = None
        if self._sqlite is None:
            from .postgres import PostgresChanges, conninfo

            self._changes = PostgresChanges(conninfo(engine), CLIENT_CHANNEL)
            self._clients = SqlClientStore(db, insert, changes=self._changes, notify_channel=CLIENT_CHANNEL)
        else:
            self._clients = SqlClientStore(db, insert)
        self.clients: ClientStore = self._clients
        self.users: UserStore = SqlUserStore(db, insert)
        self.keys: KeyStore = SqlKeyStore(db, insert)
        self._tokens = SqlTokenStore(db, insert)
        self._grants = SqlGrantStore(db, insert)
        self.tokens: TokenStore = self._tokens
        self.grants: GrantStore = self._grants
        self.admins: AdminStore = SqlAdminStore(db, insert)
        self.audit: AuditLog = SqlAuditLog(db)
        self.client_key_history: ClientKeyHistory = SqlClientKeyHistory(db, insert)
        self.flows: FlowRecordStore = SqlFlowRecordStore(db, insert, engine.dialect.name)
        self.accounts: AccountStore = SqlAccountStore(db, insert)

    @classmethod
    def open(
        cls,
        url: str | URL,
        *,
        clock: Clock = time.time,
        create_tables: bool | None = None,
        busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS,
        purge_every: int = DEFAULT_PURGE_EVERY,
        pool_size: int = DEFAULT_POOL_SIZE,
    ) -> SqlStore:
        """Open ``sqlite:///path/jarmor.db`` (shared by any number of processes), ``sqlite://`` (memory) or
        ``postgresql+psycopg://user:password@host/dbname`` (shared by any number of nodes).

        ``create_tables``: ``True`` brings the schema to the current revision (SQLite: create it and stamp
        it, or migrate it; PostgreSQL: run the migrations), ``False`` trusts it as it is, and ``None`` (the
        default) means ``True`` on SQLite and, on PostgreSQL, *require* the current revision: a database
        that ``jarmor db upgrade`` has not migrated raises ``SchemaNotCurrent`` (schema changes on a shared
        database are an explicit deployment step, never a side effect of starting a node).
        """
        parsed = make_url(url)
        backend = parsed.get_backend_name()
        if backend == "sqlite":
            engine = sqlite_engine(parsed, busy_timeout_ms)
        elif backend in ("postgresql", "postgres"):
            from .postgres import psycopg_url

            engine = create_engine(psycopg_url(parsed), poolclass=NullPool)
        else:
            raise StoreError(f"unsupported SQL database {backend!r}")
        store = cls(engine, clock=clock, purge_every=purge_every, pool_size=pool_size)
        try:
            if create_tables or (create_tables is None and backend == "sqlite"):
                store.ensure_schema()
            elif create_tables is None:
                migrate.require_current(engine)
        except BaseException:
            if store._sqlite is not None:
                store._sqlite.close_now()
            engine.dispose()
            raise
        return store

    def ensure_schema(self) -> None:
        """Bring the schema to the current revision; safe when several processes open a database at once."""
        if self._sqlite is not None:
            with self._sqlite.sync_transaction() as conn:
                migrate.ensure_sqlite(conn)
        else:
            migrate.upgrade(self.engine)

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[StoreTransaction]:
        """``Store.transaction``: one ``BEGIN`` .. ``COMMIT`` (SQLite: ``BEGIN IMMEDIATE``, the write lock held
        until the block ends; PostgreSQL: one pooled connection, one commit)."""
        async with self._db.transaction() as tx:
            yield SqlStoreTransaction(tx, self._tokens, self._grants, self._clients)

    async def purge_expired(self) -> int:
        """Delete expired ephemeral rows now (they are also purged lazily); how many were deleted."""
        return await self._ephemeral.purge_expired()

    async def health(self) -> dict[str, str | None]:
        """One query: the recorded schema revision, which proves the database answers and is at ``HEAD``."""
        try:
            revision = await migrate.recorded_revision(self._db)
        except Exception as exc:  # any driver error means: not reachable
            return {"database": f"the database does not answer: {type(exc).__name__}", "schema": None}
        if revision != migrate.HEAD:
            found = "no jarmor schema" if revision is None else f"revision {revision}"
            return {"database": None, "schema": f"the database has {found}, this node needs {migrate.HEAD}"}
        return {"database": None, "schema": None}

    async def close(self) -> None:
        if self._changes is not None:
            await self._changes.close()
        await self._db.close()
        self.engine.dispose()
