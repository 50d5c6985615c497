"""The PostgreSQL executor for ``SqlStore``: SQLAlchemy Core statements on native asyncio psycopg.

The stores' statements are SQLAlchemy Core expressions over ``schema.py``; here each one is compiled once
for the PostgreSQL (psycopg) dialect and its SQL text is run on a pool of ``psycopg.AsyncConnection`` s in
autocommit mode (a single statement is its own transaction: one round trip, durable when it returns).
PostgreSQL statements cross the network, so the event loop must never wait on one. Measured on the same
machine (loopback PostgreSQL 15, ``add_once`` / ``get`` / ``take`` on the ephemeral table, 50 concurrent
tasks), per operation:

==========================================  ==========  ===============================
executor                                    get p50     client CPU per op (50 tasks)
==========================================  ==========  ===============================
sync engine inline (blocks the loop)        150 us      (loop blocked for the whole run)
sync engine + ``asyncio.to_thread``         290 us      240-255 us
SQLAlchemy async engine (psycopg async)     380-480 us  575-650 us
compiled statement on psycopg async (this)  160-270 us  130-220 us
==========================================  ==========  ===============================

SQLAlchemy's async engine adds a greenlet switch and its result machinery to every statement, on the event
loop thread; a thread hop adds the hop and GIL hand-offs. Compiling once and running the text on psycopg's
own asyncio connection costs neither, keeps the loop free during the round trip, and lets one process keep
``pool_size`` statements in flight. The compiled text carries SQLAlchemy's bind casts (``%(id)s::VARCHAR``),
so server-side prepared statements (psycopg prepares a statement after a few executions) get stable types.

Connection loss: a broken connection is discarded by the pool and the operation fails with ``StoreUnavailable``
(so after a PostgreSQL restart, up to ``pool_size`` operations fail before the pool has reconnected);
nothing is retried, since a single-use operation (``take``) may have run before the connection dropped.
An operation waits at most ``POOL_TIMEOUT`` seconds for a connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool, PoolTimeout
from sqlalchemy import Engine, Executable
from sqlalchemy.engine import URL

from ..base import StoreError, StoreUnavailable
from .executor import Compiled, CompiledCache

Params = Mapping[str, Any]
Row = tuple[Any, ...]

log = logging.getLogger("jarmor.store")

# how long an operation waits for a pooled connection before failing (PostgreSQL down, or pool exhausted)
POOL_TIMEOUT = 10.0

# drivers spelled in a URL that all mean "psycopg 3" here
_PSYCOPG_DRIVERS = {"", "psycopg", "psycopg_async"}


def psycopg_url(url: URL) -> URL:
    """``postgresql://`` / ``postgres://`` / ``postgresql+psycopg[_async]://`` -> ``postgresql+psycopg://``."""
    backend, _, driver = url.drivername.partition("+")
    if backend not in ("postgresql", "postgres") or driver not in _PSYCOPG_DRIVERS:
        raise StoreError(f"unsupported PostgreSQL driver {url.drivername!r}: use postgresql+psycopg://")
    return url.set(drivername="postgresql+psycopg")


def conninfo(engine: Engine) -> str:
    """The libpq connection string for ``engine``'s URL, as SQLAlchemy itself would connect."""
    _args, kwargs = engine.dialect.create_connect_args(engine.url)
    params = {k: v for k, v in kwargs.items() if isinstance(v, str | int)}
    return psycopg.conninfo.make_conninfo("", **params)


class _Transaction:
    def __init__(self, db: PostgresDb, conn: psycopg.AsyncConnection[Row]) -> None:
        self._db = db
        self._conn = conn

    async def write(self, stmt: Executable, params: Params) -> int:
        cur = await self._conn.execute(*self._db.bind(stmt, params))
        return cur.rowcount

    async def write_many(self, stmt: Executable, rows: Sequence[Params]) -> None:
        if rows:
            compiled = self._db.compiled(stmt)
            async with self._conn.cursor() as cur:
                # pipelined: one round trip for the batch
                await cur.executemany(compiled.sql, [compiled.params(row) for row in rows])

    async def first(self, stmt: Executable, params: Params) -> Row | None:
        cur = await self._conn.execute(*self._db.bind(stmt, params))
        return await cur.fetchone()


class PostgresDb:
    """``Executor`` on a psycopg ``AsyncConnectionPool`` (opened lazily, in the event loop that uses it)."""

    text_allows_nul = False

    def __init__(self, engine: Engine, *, pool_size: int) -> None:
        self._dialect = engine.dialect
        self._compiled = CompiledCache(engine.dialect)
        self._pool = AsyncConnectionPool(
            conninfo(engine),
            kwargs={"autocommit": True},
            min_size=1,
            max_size=max(1, pool_size),
            open=False,
            timeout=POOL_TIMEOUT,
            name="jarmor",
        )
        self._opening: asyncio.Future[None] | None = None

    def compiled(self, stmt: Executable) -> Compiled:
        """``stmt`` compiled once (statements are built once per store and kept)."""
        return self._compiled(stmt)

    def bind(self, stmt: Executable, params: Params) -> tuple[str, Params]:
        """The SQL text and the complete parameters for one execution of ``stmt``."""
        compiled = self.compiled(stmt)
        return compiled.sql, compiled.params(params)

    async def _ready(self) -> AsyncConnectionPool[psycopg.AsyncConnection[Row]]:
        if self._opening is None:
            self._opening = asyncio.ensure_future(self._pool.open(wait=False))
        if not self._opening.done():
            await asyncio.shield(self._opening)
        return self._pool

    @contextlib.asynccontextmanager
    async def _connection(self) -> AsyncIterator[psycopg.AsyncConnection[Row]]:
        pool = await self._ready()
        try:
            async with pool.connection() as conn:
                yield conn
        except (psycopg.OperationalError, PoolTimeout) as exc:
            raise StoreUnavailable(f"PostgreSQL is unreachable: {exc}") from exc
        except psycopg.Error as exc:
            raise StoreError(str(exc)) from exc

    async def write(self, stmt: Executable, params: Params) -> int:
        async with self._connection() as conn:
            cur = await conn.execute(*self.bind(stmt, params))
            return cur.rowcount

    async def first(self, stmt: Executable, params: Params) -> Row | None:
        async with self._connection() as conn:
            cur = await conn.execute(*self.bind(stmt, params))
            return await cur.fetchone()

    async def all(self, stmt: Executable, params: Params) -> Sequence[Row]:
        async with self._connection() as conn:
            cur = await conn.execute(*self.bind(stmt, params))
            return await cur.fetchall()

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[_Transaction]:
        async with self._connection() as conn, conn.transaction():
            yield _Transaction(self, conn)

    async def close(self) -> None:
        if self._opening is not None:
            with contextlib.suppress(Exception):
                await self._opening
            await self._pool.close()


class PostgresChanges:
    """``ChangeFeed`` over ``LISTEN <channel>`` (``clients.CLIENT_CHANNEL``) on a dedicated connection (not
    from the pool).

    PostgreSQL delivers a notification to every listening session once the notifying transaction commits,
    and never one of a rolled-back transaction. What it cannot promise is delivery to a session that was
    not listening: so the feed reports itself live only while its connection is up and listening. A lost
    connection (PostgreSQL restart, network) ends ``live`` at once — checked at least every ``PING``
    seconds while no notification arrives — and the feed reconnects with a capped back-off.
    """

    PING = 5.0
    MAX_BACKOFF = 5.0

    def __init__(self, conninfo: str, channel: str) -> None:
        self._conninfo = conninfo
        self._channel = channel
        self._task: asyncio.Task[None] | None = None
        self.backend_pid: int | None = None  # the listening session's server process (diagnostics, tests)

    def start(self, on_change: Callable[[str], None], on_live: Callable[[bool], None]) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(on_change, on_live))

    async def _run(self, on_change: Callable[[str], None], on_live: Callable[[bool], None]) -> None:
        backoff = 0.1
        while True:
            try:
                conn = await psycopg.AsyncConnection.connect(self._conninfo, autocommit=True, connect_timeout=5)
                async with conn:
                    await conn.execute(f'LISTEN "{self._channel}"')
                    self.backend_pid = conn.info.backend_pid
                    on_live(True)
                    backoff = 0.1
                    while True:
                        async for note in conn.notifies(timeout=self.PING):
                            on_change(note.payload)
                        # idle: is the connection still there? (a silent network loss must end ``live`` too)
                        await asyncio.wait_for(conn.execute("SELECT 1"), self.PING)
            except (psycopg.Error, OSError, TimeoutError) as exc:
                log.warning("client change feed lost (%s); checking every lookup until it is back", exc)
            finally:
                on_live(False)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, self.MAX_BACKOFF)

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
