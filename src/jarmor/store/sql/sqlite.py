"""The SQLite executor (``SqliteDb``) and engine (``sqlite_engine``) for ``SqlStore``.

A synchronous engine: statements run inline inside the ``async`` methods. An SQLite statement takes
microseconds, less than a hop to a worker thread would. Every method runs to completion without awaiting, so
within one event loop the methods never interleave; across threads and across processes (``--workers N``
sharing one database file) atomicity comes from the database itself.

Connections run in driver autocommit mode (``isolation_level=None``), WAL journal, ``synchronous=NORMAL``,
``busy_timeout`` and ``foreign_keys`` on. Single statements commit on their own, multi-statement transactions
are opened explicitly (``BEGIN IMMEDIATE``: the write lock is taken up front, so two writers serialize instead
of failing with ``SQLITE_BUSY_SNAPSHOT``).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import weakref
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from typing import Any, cast

from sqlalchemy import Connection, Engine, Executable, create_engine, event
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.engine import URL
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import StaticPool

from ..base import StoreError
from .executor import AnyRow, CompiledCache, Params, Transaction

DEFAULT_BUSY_TIMEOUT_MS = 5000

_SQLITE_NAMED = sqlite_dialect.dialect(paramstyle="named")
_SQLITE_COMPILED = CompiledCache(_SQLITE_NAMED)


def _raw(conn: Connection) -> sqlite3.Connection:
    return cast(sqlite3.Connection, conn.connection.driver_connection)


class _SqliteTransaction:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    async def write(self, stmt: Executable, params: Params) -> int:
        c = _SQLITE_COMPILED(stmt)
        return _raw(self._conn).execute(c.sql, c.params(params)).rowcount

    async def write_many(self, stmt: Executable, rows: Sequence[Params]) -> None:
        """``executemany`` on the driver. The values must be plain driver values."""
        if rows:
            c = _SQLITE_COMPILED(stmt)
            _raw(self._conn).executemany(c.sql, [c.params(row) for row in rows])

    async def first(self, stmt: Executable, params: Params) -> AnyRow | None:
        c = _SQLITE_COMPILED(stmt)
        row: AnyRow | None = _raw(self._conn).execute(c.sql, c.params(params)).fetchone()
        return row


class SqliteDb:
    """The engine, one pinned connection and the few ways the stores use them (SQLite).

    One connection per store, held for the store's life and guarded by a lock: a pool checkout per statement
    would cost more than the statement. Within a process the lock serializes statements (they take
    microseconds; SQLite admits one writer at a time anyway); across processes SQLite's own locking decides.
    The ``async`` methods run the statement inline, as compiled SQL text on the sqlite3 connection itself
    (``Compiled``). Driver errors become ``StoreError``.
    """

    text_allows_nul = True

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._lock = threading.Lock()
        self._conn: Connection | None = None
        if not isinstance(engine.pool, StaticPool):
            # a connection to a database file must not cross fork(): the child opens its own
            ref = weakref.ref(self)

            def forget_after_fork() -> None:
                db = ref()
                if db is not None:
                    db._forget()

            os.register_at_fork(after_in_child=forget_after_fork)

    def _forget(self) -> None:
        self._conn = None
        self._lock = threading.Lock()
        self.engine.dispose(close=False)

    def _connection(self) -> Connection:
        conn = self._conn
        if conn is None or conn.closed or conn.invalidated:
            conn = self._conn = self.engine.connect()
        return conn

    def _failed(self, conn: Connection, exc: BaseException) -> StoreError:
        try:
            conn.rollback()
        except SQLAlchemyError:
            self._conn = None
            with contextlib.suppress(SQLAlchemyError):
                conn.close()
        return StoreError(str(exc))

    def _execute(self, stmt: Executable, params: Params) -> sqlite3.Cursor:
        c = _SQLITE_COMPILED(stmt)
        conn = self._connection()
        try:
            return _raw(conn).execute(c.sql, c.params(params))
        except (sqlite3.Error, SQLAlchemyError) as exc:
            raise self._failed(conn, exc) from exc

    async def write(self, stmt: Executable, params: Params) -> int:
        with self._lock:
            return self._execute(stmt, params).rowcount

    async def first(self, stmt: Executable, params: Params) -> AnyRow | None:
        with self._lock:
            row: AnyRow | None = self._execute(stmt, params).fetchone()
            return row

    async def all(self, stmt: Executable, params: Params) -> Sequence[AnyRow]:
        with self._lock:
            rows: Sequence[AnyRow] = self._execute(stmt, params).fetchall()
            return rows

    @contextlib.contextmanager
    def sync_transaction(self) -> Iterator[Connection]:
        """A write transaction that takes the database write lock up front (``BEGIN IMMEDIATE``)."""
        with self._lock:
            conn = self._connection()
            try:
                conn.exec_driver_sql("BEGIN IMMEDIATE")
                yield conn
                conn.commit()
            except BaseException as exc:
                failure = self._failed(conn, exc)
                if isinstance(exc, SQLAlchemyError | sqlite3.Error):
                    raise failure from exc
                raise

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[Transaction]:
        # the body only awaits this transaction's inline ``write``: nothing suspends while the lock is held
        with self.sync_transaction() as conn:
            yield _SqliteTransaction(conn)

    def close_now(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
            self.engine.dispose()

    async def close(self) -> None:
        self.close_now()


def _is_memory(database: str | None, query: Mapping[str, Any]) -> bool:
    return database in (None, "", ":memory:") or query.get("mode") == "memory"


def _sqlite_pragmas(busy_timeout_ms: int) -> Callable[[Any, Any], None]:
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        # driver autocommit: no implicit BEGIN; single statements commit themselves, transactions are explicit
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            # busy_timeout first, so that switching a fresh file to WAL waits for other processes
            cursor.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA synchronous = NORMAL")
            cursor.execute("PRAGMA foreign_keys = ON")
        finally:
            cursor.close()

    return on_connect


def sqlite_engine(url: URL, busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS) -> Engine:
    """An engine for ``sqlite:///path.db`` (shared by any number of processes) or ``sqlite://`` (memory, one
    connection shared by the threads of this process), with every connection configured as above."""
    if _is_memory(url.database, url.query):
        engine = create_engine(url, poolclass=StaticPool, connect_args={"check_same_thread": False})
    else:
        engine = create_engine(url, connect_args={"check_same_thread": False})
    event.listen(engine, "connect", _sqlite_pragmas(busy_timeout_ms))
    return engine
