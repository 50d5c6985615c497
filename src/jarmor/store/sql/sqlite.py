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
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
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
    """``Transaction`` on the raw ``sqlite3`` connection, and the async context manager that opens it
    (``SqliteDb.transaction``): ``BEGIN IMMEDIATE`` .. ``COMMIT`` (or ``ROLLBACK``) as driver statements, the
    store's lock held throughout. The body only awaits this transaction's inline statements, so nothing
    suspends while the lock is held. Written out rather than as a generator-based context manager: on the
    hot path (``Store.transaction``, ``take_and_mark``) the layers cost as much as a commit saves."""

    __slots__ = ("_db", "_raw")

    def __init__(self, db: SqliteDb) -> None:
        self._db = db
        self._raw: sqlite3.Connection | None = None

    async def __aenter__(self) -> _SqliteTransaction:
        db = self._db
        db._lock.acquire()
        try:
            raw = _raw(db._connection())
            raw.execute("BEGIN IMMEDIATE")
        except BaseException as exc:
            db._lock.release()
            if isinstance(exc, sqlite3.Error | SQLAlchemyError):
                raise StoreError(str(exc)) from exc
            raise
        self._raw = raw
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: Any) -> None:
        raw, self._raw = self._raw, None
        try:
            if raw is None:
                return
            if exc_type is None:
                try:
                    raw.execute("COMMIT")
                    return
                except sqlite3.Error as failed:
                    self._roll_back(raw)
                    raise StoreError(str(failed)) from failed
            self._roll_back(raw)
            if isinstance(exc, sqlite3.Error):
                raise StoreError(str(exc)) from exc
        finally:
            self._db._lock.release()

    def _roll_back(self, raw: sqlite3.Connection) -> None:
        try:
            if raw.in_transaction:
                raw.execute("ROLLBACK")
        except sqlite3.Error:
            self._db._conn = None  # a connection that cannot roll back is not used again
            with contextlib.suppress(sqlite3.Error, SQLAlchemyError):
                raw.close()

    def _driver(self) -> sqlite3.Connection:
        if self._raw is None:
            raise StoreError("the transaction is not open")
        return self._raw

    async def write(self, stmt: Executable, params: Params) -> int:
        c = _SQLITE_COMPILED(stmt)
        return self._driver().execute(c.sql, c.params(params)).rowcount

    async def write_many(self, stmt: Executable, rows: Sequence[Params]) -> None:
        """``executemany`` on the driver. The values must be plain driver values."""
        if rows:
            c = _SQLITE_COMPILED(stmt)
            self._driver().executemany(c.sql, [c.params(row) for row in rows])

    async def first(self, stmt: Executable, params: Params) -> AnyRow | None:
        c = _SQLITE_COMPILED(stmt)
        row: AnyRow | None = self._driver().execute(c.sql, c.params(params)).fetchone()
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

    def transaction(self) -> AbstractAsyncContextManager[Transaction]:
        return _SqliteTransaction(self)

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
