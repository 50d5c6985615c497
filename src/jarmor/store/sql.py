"""SQL store over SQLAlchemy Core tables (``schema.py``), on SQLite or PostgreSQL.

One implementation for both databases: every store below builds its statements once, as SQLAlchemy Core
expressions over the portable tables, and hands them to an *executor* chosen by dialect:

* SQLite (``_SqliteDb``): a synchronous engine, statements run inline inside the ``async`` methods. An
  SQLite statement takes microseconds, less than a hop to a worker thread would. Every method runs to
  completion without awaiting, so within one event loop the methods never interleave; across threads and
  across processes (``--workers N`` sharing one database file) atomicity comes from the database itself.
* PostgreSQL (``postgres.PostgresDb``): the same statements, compiled once for the PostgreSQL dialect and
  run on a pool of native asyncio psycopg connections, so a network round trip never blocks the event loop
  (see that module for why this beats both SQLAlchemy's async engine and a thread hop).

Single-use operations are single statements, atomic on both databases:

* ``take`` is one ``DELETE ... RETURNING``, ``add_once`` one
  ``INSERT ... ON CONFLICT DO UPDATE ... WHERE <expired>``: SQLite runs each statement under the database
  write lock, PostgreSQL under a row lock (a concurrent second statement waits, re-reads the row and finds
  it gone, or unexpired), so of any number of concurrent callers exactly one deletes (or inserts) the row.
* ``incr`` is one ``INSERT ... ON CONFLICT DO UPDATE SET value = <value + by> ... RETURNING value`` on the
  same ``ephemeral`` table (the count is kept as decimal digits in ``value``; an expired row starts again
  from ``by`` with a new expiry): under the same locks, each concurrent increment sees the one before it.
* ``TokenStore.rotate`` is a conditional ``UPDATE`` plus an ``INSERT`` in one transaction (on SQLite
  ``BEGIN IMMEDIATE``: the write lock is taken up front, so two rotations serialize instead of failing with
  ``SQLITE_BUSY_SNAPSHOT``; on PostgreSQL the losing ``UPDATE`` waits for the winner and matches no row).

SQLite connections run in driver autocommit mode (``isolation_level=None``), WAL journal,
``synchronous=NORMAL``, ``busy_timeout`` and ``foreign_keys`` on; PostgreSQL connections in autocommit
mode. Single statements commit on their own, multi-statement transactions are opened explicitly.

Ephemeral expiry times are whole epoch seconds rounded *up*, so a record lives at least its ``ttl`` (at most
one second longer) and a replay mark is never dropped early. Expired rows are unreadable at once and deleted
lazily: every ``purge_every``-th ephemeral write of a process deletes all expired rows (indexed).

The schema is versioned with Alembic (``migrations/``, see ``migrate.py``): an SQLite database is created
and kept at the current revision on open (zero setup); a PostgreSQL database must have been brought there
with ``jarmor db upgrade`` and is refused otherwise.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import os
import sqlite3
import threading
import time
import weakref
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast

import orjson
from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Connection,
    Engine,
    Executable,
    LargeBinary,
    Table,
    Text,
    and_,
    bindparam,
    case,
    create_engine,
    delete,
    event,
    func,
    literal_column,
    make_url,
    or_,
    select,
    update,
)
from sqlalchemy import cast as sql_cast
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.engine import URL
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool, StaticPool
from sqlalchemy.sql.elements import BindParameter

from . import migrate, schema
from .base import (
    AccountStore,
    AdminStore,
    AlreadyExists,
    AuditLog,
    ChangeFeed,
    ClientKeyStore,
    ClientRecord,
    ClientStore,
    EphemeralStore,
    FlowRecordStore,
    GrantRecord,
    GrantStore,
    KeyStore,
    ServerKeyRecord,
    StoreError,
    TokenRecord,
    TokenStore,
    UserRecord,
    UserStore,
)
from .sqlexec import (
    AnyRow,
    CompiledCache,
    Executor,
    Params,
    Transaction,
    Upsert,
    insert_new,
    unstorable,
    update_all,
    upsert_for,
)

if TYPE_CHECKING:

    from .postgres import PostgresChanges

Clock = Callable[[], float]
DEFAULT_BUSY_TIMEOUT_MS = 5000
DEFAULT_PURGE_EVERY = 256
DEFAULT_POOL_SIZE = 10


def _dumps(value: dict[str, Any]) -> str:
    return orjson.dumps(value).decode()


def _loads(text: str) -> dict[str, Any]:
    value: dict[str, Any] = orjson.loads(text)
    return value


# SQLite with named parameters (``:name``), which sqlite3 binds straight from a mapping
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


class _SqliteDb:
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


def _plus(dialect: str, value: ColumnElement[bytes], by: BindParameter[int]) -> ColumnElement[Any]:
    """``value`` (a count as decimal digits in a binary column) plus ``by``, as decimal digits again."""
    if dialect == "postgresql":
        number = sql_cast(func.convert_from(value, literal_column("'UTF8'")), BigInteger) + by
        return func.convert_to(sql_cast(number, Text), literal_column("'UTF8'"))
    # SQLite reads a BLOB as text when casting it to a number, and writes a number's text when casting to BLOB
    return sql_cast(sql_cast(value, BigInteger) + by, LargeBinary)


def _digest_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def _same_key(key: str) -> str:
    return key


class SqlEphemeralStore:
    """Ephemeral records in the ``ephemeral`` table.

    ``hash_keys`` (on for PostgreSQL) stores each key as its SHA-256: PostgreSQL text cannot hold NUL, which
    the callers use as a separator (``client_id\x00jti``), and a btree index entry is limited to about 2.7 kB,
    which a long key would exceed. A key is only ever looked up, never read back, so the digest loses
    nothing. SQLite keeps keys as they are (records written by earlier versions stay findable).
    """

    def __init__(
        self,
        db: Executor,
        insert: Callable[[Table], Upsert],
        clock: Clock,
        purge_every: int = DEFAULT_PURGE_EVERY,
        *,
        hash_keys: bool = False,
        dialect: str = "sqlite",
    ) -> None:
        self._db = db
        self._key = _digest_key if hash_keys else _same_key
        self._clock = clock
        self._purge_every = max(1, purge_every)
        self._writes = 0
        t = schema.ephemeral
        ns: BindParameter[str] = bindparam("ns")
        key: BindParameter[str] = bindparam("key")
        now: BindParameter[int] = bindparam("now")
        match = and_(t.c.namespace == ns, t.c.key == key)
        live = and_(match, t.c.expires_at > now)
        ins = insert(t).values(
            namespace=ns, key=key, value=bindparam("value"), expires_at=bindparam("exp")
        )
        self._put = ins.on_conflict_do_update(
            index_elements=[t.c.namespace, t.c.key],
            set_={"value": ins.excluded.value, "expires_at": ins.excluded.expires_at},
        )
        # an expired row counts as absent: overwrite it, otherwise change nothing (rowcount 0)
        self._add_once = ins.on_conflict_do_update(
            index_elements=[t.c.namespace, t.c.key],
            set_={"value": ins.excluded.value, "expires_at": ins.excluded.expires_at},
            where=t.c.expires_at <= now,
        )
        # counters: decimal digits in ``value``; an expired row starts again, a live one keeps its expiry
        by: BindParameter[int] = bindparam("by", type_=BigInteger)
        expired = t.c.expires_at <= now
        self._incr = ins.on_conflict_do_update(
            index_elements=[t.c.namespace, t.c.key],
            set_={
                "value": case((expired, ins.excluded.value), else_=_plus(dialect, t.c.value, by)),
                "expires_at": case((expired, ins.excluded.expires_at), else_=t.c.expires_at),
            },
        ).returning(t.c.value)
        self._get = select(t.c.value).where(live)
        self._take = delete(t).where(live).returning(t.c.value)
        self._delete = delete(t).where(match)
        self._purge = delete(t).where(t.c.expires_at <= now)

    def _now(self) -> int:
        return math.floor(self._clock())

    def _expiry(self, ttl: int) -> int:
        return math.ceil(self._clock() + ttl)

    async def _wrote(self) -> None:
        self._writes += 1
        if self._writes >= self._purge_every:
            self._writes = 0
            # best effort: the write itself succeeded, and the next round retries the purge
            with contextlib.suppress(StoreError):
                await self._db.write(self._purge, {"now": self._now()})

    async def purge_expired(self) -> int:
        """Delete every expired row now; how many were deleted."""
        return await self._db.write(self._purge, {"now": self._now()})

    async def put(self, namespace: str, key: str, value: bytes, ttl: int) -> None:
        params = {"ns": namespace, "key": self._key(key), "value": value, "exp": self._expiry(ttl)}
        await self._db.write(self._put, params)
        await self._wrote()

    async def get(self, namespace: str, key: str) -> bytes | None:
        row = await self._db.first(self._get, {"ns": namespace, "key": self._key(key), "now": self._now()})
        return None if row is None else bytes(row[0])

    async def take(self, namespace: str, key: str) -> bytes | None:
        row = await self._db.first(self._take, {"ns": namespace, "key": self._key(key), "now": self._now()})
        return None if row is None else bytes(row[0])

    async def add_once(self, namespace: str, key: str, ttl: int) -> bool:
        params = {"ns": namespace, "key": self._key(key), "value": b"1", "exp": self._expiry(ttl), "now": self._now()}
        added = await self._db.write(self._add_once, params) == 1
        await self._wrote()
        return added

    async def incr(self, namespace: str, key: str, ttl: int, *, by: int = 1) -> int:
        params = {
            "ns": namespace,
            "key": self._key(key),
            "value": str(by).encode(),
            "exp": self._expiry(ttl),
            "now": self._now(),
            "by": by,
        }
        row = await self._db.first(self._incr, params)
        await self._wrote()
        if row is None:  # pragma: no cover - an upsert with RETURNING always returns its row
            raise StoreError("the counter was not written")
        return int(bytes(row[0]))

    async def delete(self, namespace: str, key: str) -> None:
        await self._db.write(self._delete, {"ns": namespace, "key": self._key(key)})


_CLIENT_COLS = (
    "client_id",
    "metadata",
    "created_at",
    "updated_at",
    "secret_hash",
    "registration_token_hash",
    "disabled_at",
    "disabled_reason",
    "disabled_by",
    "last_used_at",
)


def _client_row(r: ClientRecord) -> dict[str, Any]:
    return {
        "client_id": r.client_id,
        "metadata": _dumps(r.metadata),
        "created_at": r.created_at,
        "updated_at": r.updated_at,
        "secret_hash": r.secret_hash,
        "registration_token_hash": r.registration_token_hash,
        "disabled_at": r.disabled_at,
        "disabled_reason": r.disabled_reason,
        "disabled_by": r.disabled_by,
        "last_used_at": r.last_used_at,
    }


def _client_record(row: AnyRow) -> ClientRecord:
    return ClientRecord(row[0], _loads(row[1]), *row[2:])


class SqlClientStore:
    """Clients. On PostgreSQL every write that changes what a cache holds (update, registration replacement,
    disable, delete) also runs ``pg_notify`` in its transaction, so ``changes`` (``postgres.PostgresChanges``)
    tells every node once it commits; on SQLite ``changes`` is ``None`` and caches read ``state``."""

    _TOUCH_CACHE_MAX = 10_000

    def __init__(
        self, db: Executor, insert: Callable[[Table], Upsert], *, changes: ChangeFeed | None = None,
        notify_channel: str | None = None,
    ) -> None:
        self._db = db
        self.changes = changes
        self._notify_channel = notify_channel
        self._notify = select(func.pg_notify(bindparam("channel"), bindparam("payload")))
        t = schema.clients
        cols = [t.c[name] for name in _CLIENT_COLS]
        self._get = select(*cols).where(t.c.client_id == bindparam("id"))
        self._state = select(t.c.updated_at, t.c.disabled_at).where(t.c.client_id == bindparam("id"))
        u = schema.users
        user_disabled = select(u.c.disabled).where(u.c.username == bindparam("subject")).scalar_subquery()
        self._standing = select(t.c.updated_at, t.c.disabled_at, user_disabled).where(t.c.client_id == bindparam("id"))
        self._list = select(*cols).order_by(t.c.created_at, t.c.client_id)
        self._count = select(func.count()).select_from(t)
        self._create = insert_new(insert, t, "client_id")
        self._update = update_all(t, "client_id")
        self._delete = delete(t).where(t.c.client_id == bindparam("id"))
        now: BindParameter[int] = bindparam("now")
        self._touch = (
            update(t)
            .where(t.c.client_id == bindparam("id"), or_(t.c.last_used_at.is_(None), t.c.last_used_at < now))
            .values(last_used_at=now)
        )
        self._touched: dict[str, int] = {}
        self._replace_registration = (
            update(t)
            .where(
                t.c.client_id == bindparam("id"),
                t.c.registration_token_hash == bindparam("expected"),
                t.c.disabled_at.is_(None),
            )
            .values(
                metadata=bindparam("metadata"),
                updated_at=bindparam("updated_at"),
                secret_hash=bindparam("secret_hash"),
                registration_token_hash=bindparam("token_hash"),
            )
        )
        self._disable = (
            update(t)
            .where(t.c.client_id == bindparam("id"), t.c.disabled_at.is_(None))
            .values(disabled_at=now, disabled_reason=bindparam("reason"), disabled_by=bindparam("by"))
        )

    async def get(self, client_id: str) -> ClientRecord | None:
        if unstorable(self._db, client_id):
            return None
        row = await self._db.first(self._get, {"id": client_id})
        return None if row is None else _client_record(row)

    async def state(self, client_id: str) -> tuple[int, int | None] | None:
        """Two integers by primary key: on SQLite a few microseconds, on PostgreSQL one small round trip."""
        if unstorable(self._db, client_id):
            return None
        row = await self._db.first(self._state, {"id": client_id})
        return None if row is None else (row[0], row[1])

    async def standing(self, client_id: str, subject: str | None) -> tuple[int, int | None, bool] | None:
        if unstorable(self._db, client_id):
            return None
        if subject is not None and unstorable(self._db, subject):
            subject = None
        row = await self._db.first(self._standing, {"id": client_id, "subject": subject})
        return None if row is None else (row[0], row[1], bool(row[2]))

    async def create(self, record: ClientRecord) -> None:
        if await self._db.write(self._create, _client_row(record)) != 1:
            raise AlreadyExists(record.client_id)

    async def _change(self, stmt: Executable, params: Params, client_id: str) -> int:
        """Run a write that changes the client; on PostgreSQL announce it in the same transaction."""
        if self._notify_channel is None:
            return await self._db.write(stmt, params)
        from .postgres import change_payload

        async with self._db.transaction() as tx:
            changed = await tx.write(stmt, params)
            if changed:
                await tx.first(self._notify, {"channel": self._notify_channel, "payload": change_payload(client_id)})
        return changed

    async def update(self, record: ClientRecord) -> None:
        """Overwrite an existing client; a client deleted meanwhile stays deleted."""
        params = _client_row(record)
        params["_pk"] = params.pop("client_id")
        await self._change(self._update, params, record.client_id)
        self._touched.pop(record.client_id, None)

    async def delete(self, client_id: str) -> bool:
        self._touched.pop(client_id, None)
        return await self._change(self._delete, {"id": client_id}, client_id) == 1

    async def list(self) -> list[ClientRecord]:
        return [_client_record(row) for row in await self._db.all(self._list, {})]

    async def count(self) -> int:
        row = await self._db.first(self._count, {})
        return 0 if row is None else int(row[0])

    async def replace_registration(self, record: ClientRecord, expected_token_hash: str) -> bool:
        params = {
            "id": record.client_id,
            "expected": expected_token_hash,
            "metadata": _dumps(record.metadata),
            "updated_at": record.updated_at,
            "secret_hash": record.secret_hash,
            "token_hash": record.registration_token_hash,
        }
        return await self._change(self._replace_registration, params, record.client_id) == 1

    async def disable(self, client_id: str, *, at: int, reason: str, by: str) -> bool:
        params = {"id": client_id, "now": at, "reason": reason, "by": by}
        return await self._change(self._disable, params, client_id) == 1

    async def touch(self, client_id: str, now: int) -> None:
        """Raise ``last_used_at`` to ``now`` (it never moves backwards).

        Cheap on the hot path: at most one write per client per second per process, and the write is a
        no-op when another process already recorded a later use.
        """
        last = self._touched.get(client_id)
        if last is not None and last >= now:
            return
        if await self._db.write(self._touch, {"id": client_id, "now": now}) == 1:
            if len(self._touched) >= self._TOUCH_CACHE_MAX:
                self._touched.clear()
            self._touched[client_id] = now


_USER_COLS = ("username", "password_hash", "created_at", "disabled")


def _user_row(r: UserRecord) -> dict[str, Any]:
    return {
        "username": r.username,
        "password_hash": r.password_hash,
        "created_at": r.created_at,
        "disabled": r.disabled,
    }


def _user_record(row: AnyRow) -> UserRecord:
    return UserRecord(row[0], row[1], row[2], bool(row[3]))


class SqlUserStore:
    def __init__(self, db: Executor, insert: Callable[[Table], Upsert]) -> None:
        self._db = db
        t = schema.users
        cols = [t.c[name] for name in _USER_COLS]
        self._get = select(*cols).where(t.c.username == bindparam("id"))
        self._list = select(*cols).order_by(t.c.created_at, t.c.username)
        self._create = insert_new(insert, t, "username")
        self._update = update_all(t, "username")

    async def get(self, username: str) -> UserRecord | None:
        if unstorable(self._db, username):
            return None
        row = await self._db.first(self._get, {"id": username})
        return None if row is None else _user_record(row)

    async def create(self, record: UserRecord) -> None:
        if await self._db.write(self._create, _user_row(record)) != 1:
            raise AlreadyExists(record.username)

    async def update(self, record: UserRecord) -> None:
        params = _user_row(record)
        params["_pk"] = params.pop("username")
        await self._db.write(self._update, params)

    async def list(self) -> list[UserRecord]:
        return [_user_record(row) for row in await self._db.all(self._list, {})]


_KEY_COLS = ("kid", "alg", "use", "private_jwk", "created_at", "active_at", "retired_at", "state")


def _key_row(r: ServerKeyRecord) -> dict[str, Any]:
    return {
        "kid": r.kid,
        "alg": r.alg,
        "use": r.use,
        "private_jwk": r.private_jwk,
        "created_at": r.created_at,
        "active_at": r.active_at,
        "retired_at": r.retired_at,
        "state": r.state,
    }


class SqlKeyStore:
    def __init__(self, db: Executor, insert: Callable[[Table], Upsert]) -> None:
        self._db = db
        t = schema.server_keys
        self._list = select(*[t.c[name] for name in _KEY_COLS]).order_by(t.c.created_at, t.c.kid)
        self._add = insert_new(insert, t, "kid")
        self._update = update_all(t, "kid")

    async def list(self) -> list[ServerKeyRecord]:
        return [ServerKeyRecord(*row) for row in await self._db.all(self._list, {})]

    async def add(self, record: ServerKeyRecord) -> None:
        if await self._db.write(self._add, _key_row(record)) != 1:
            raise AlreadyExists(record.kid)

    async def update(self, record: ServerKeyRecord) -> None:
        params = _key_row(record)
        params["_pk"] = params.pop("kid")
        await self._db.write(self._update, params)


_TOKEN_COLS = (
    "token_hash",
    "kind",
    "client_id",
    "subject",
    "scope",
    "grant_id",
    "created_at",
    "expires_at",
    "revoked_at",
    "rotated_to",
    "extra",
)


def _token_row(r: TokenRecord) -> dict[str, Any]:
    return {
        "token_hash": r.token_hash,
        "kind": r.kind,
        "client_id": r.client_id,
        "subject": r.subject,
        "scope": r.scope,
        "grant_id": r.grant_id,
        "created_at": r.created_at,
        "expires_at": r.expires_at,
        "revoked_at": r.revoked_at,
        "rotated_to": r.rotated_to,
        "extra": _dumps(r.extra),
    }


def _token_record(row: AnyRow) -> TokenRecord:
    h, kind, client_id, subject, scope, grant_id, created, expires, revoked, rotated, extra = row
    return TokenRecord(
        h, kind, client_id, subject, scope, grant_id, created, expires, revoked, rotated, _loads(extra)
    )


class SqlTokenStore:
    def __init__(self, db: Executor, insert: Callable[[Table], Upsert]) -> None:
        self._db = db
        t = schema.tokens
        cols = [t.c[name] for name in _TOKEN_COLS]
        now: BindParameter[int] = bindparam("now")
        unrevoked = t.c.revoked_at.is_(None)
        self._get = select(*cols).where(t.c.token_hash == bindparam("id"))
        self._create = insert_new(insert, t, "token_hash")
        self._revoke = update(t).where(t.c.token_hash == bindparam("id"), unrevoked).values(revoked_at=now)
        self._revoke_grant = (
            update(t).where(t.c.grant_id == bindparam("id"), unrevoked).values(revoked_at=now)
        )
        self._revoke_client = (
            update(t).where(t.c.client_id == bindparam("id"), unrevoked).values(revoked_at=now)
        )
        self._retire = (
            update(t)
            .where(t.c.token_hash == bindparam("id"), unrevoked, t.c.rotated_to.is_(None))
            .values(revoked_at=now, rotated_to=bindparam("new"))
        )
        by_client = select(*cols).where(t.c.client_id == bindparam("id"))
        order = (t.c.created_at, t.c.token_hash)
        self._list_all = by_client.order_by(*order)
        self._list_active = by_client.where(unrevoked, t.c.expires_at > now).order_by(*order)
        self._active_counts = (
            select(t.c.client_id, func.count()).where(unrevoked, t.c.expires_at > now).group_by(t.c.client_id)
        )

    async def create(self, record: TokenRecord) -> None:
        if await self._db.write(self._create, _token_row(record)) != 1:
            raise AlreadyExists("token")

    async def get(self, token_hash: str) -> TokenRecord | None:
        if unstorable(self._db, token_hash):
            return None
        row = await self._db.first(self._get, {"id": token_hash})
        return None if row is None else _token_record(row)

    async def revoke(self, token_hash: str, now: int) -> bool:
        return await self._db.write(self._revoke, {"id": token_hash, "now": now}) == 1

    async def revoke_grant(self, grant_id: str, now: int) -> int:
        return await self._db.write(self._revoke_grant, {"id": grant_id, "now": now})

    async def revoke_client(self, client_id: str, now: int) -> int:
        return await self._db.write(self._revoke_client, {"id": client_id, "now": now})

    async def rotate(self, old_hash: str, new: TokenRecord, now: int) -> bool:
        """Retire ``old_hash`` and insert ``new`` in one transaction; only one concurrent caller wins.

        Raises ``AlreadyExists`` (and leaves ``old_hash`` usable) if ``new.token_hash`` is taken.
        """
        async with self._db.transaction() as tx:
            retired = await tx.write(self._retire, {"id": old_hash, "new": new.token_hash, "now": now})
            if retired != 1:
                return False
            if await tx.write(self._create, _token_row(new)) != 1:
                raise AlreadyExists("token")
        return True

    async def list_for_client(self, client_id: str, *, active_at: int | None = None) -> list[TokenRecord]:
        if active_at is None:
            rows = await self._db.all(self._list_all, {"id": client_id})
        else:
            rows = await self._db.all(self._list_active, {"id": client_id, "now": active_at})
        return [_token_record(row) for row in rows]

    async def active_counts(self, active_at: int) -> dict[str, int]:
        return {str(cid): int(n) for cid, n in await self._db.all(self._active_counts, {"now": active_at})}


_GRANT_COLS = (
    "grant_id",
    "client_id",
    "subject",
    "scope",
    "created_at",
    "granted_by",
    "revoked_at",
    "revoked_reason",
)


def _grant_row(r: GrantRecord) -> dict[str, Any]:
    return {
        "grant_id": r.grant_id,
        "client_id": r.client_id,
        "subject": r.subject,
        "scope": r.scope,
        "created_at": r.created_at,
        "granted_by": r.granted_by,
        "revoked_at": r.revoked_at,
        "revoked_reason": r.revoked_reason,
    }


class SqlGrantStore:
    def __init__(self, db: Executor, insert: Callable[[Table], Upsert]) -> None:
        self._db = db
        t = schema.grants
        cols = [t.c[name] for name in _GRANT_COLS]
        self._get = select(*cols).where(t.c.grant_id == bindparam("id"))
        self._create = insert_new(insert, t, "grant_id")
        self._revoke = (
            update(t)
            .where(t.c.grant_id == bindparam("id"), t.c.revoked_at.is_(None))
            .values(revoked_at=bindparam("now"), revoked_reason=bindparam("reason"))
        )
        by_client = select(*cols).where(t.c.client_id == bindparam("id"))
        self._list = by_client.order_by(t.c.created_at, t.c.grant_id)
        self._active_counts = select(t.c.client_id, func.count()).where(t.c.revoked_at.is_(None)).group_by(
            t.c.client_id
        )

    async def create(self, record: GrantRecord) -> None:
        if await self._db.write(self._create, _grant_row(record)) != 1:
            raise AlreadyExists(record.grant_id)

    async def get(self, grant_id: str) -> GrantRecord | None:
        if unstorable(self._db, grant_id):
            return None
        row = await self._db.first(self._get, {"id": grant_id})
        return None if row is None else GrantRecord(*row)

    async def revoke(self, grant_id: str, now: int, reason: str | None = None) -> bool:
        return await self._db.write(self._revoke, {"id": grant_id, "now": now, "reason": reason}) == 1

    async def list_for_client(self, client_id: str) -> list[GrantRecord]:
        return [GrantRecord(*row) for row in await self._db.all(self._list, {"id": client_id})]

    async def active_counts(self) -> dict[str, int]:
        return {str(cid): int(n) for cid, n in await self._db.all(self._active_counts, {})}


def _is_memory_sqlite(database: str | None, query: Mapping[str, Any]) -> bool:
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
        self._sqlite: _SqliteDb | None = None
        db: Executor
        if engine.dialect.name == "sqlite":
            db = self._sqlite = _SqliteDb(engine)
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
            from .postgres import CLIENT_CHANNEL, PostgresChanges, conninfo

            self._changes = PostgresChanges(conninfo(engine))
            self.clients: ClientStore = SqlClientStore(
                db, insert, changes=self._changes, notify_channel=CLIENT_CHANNEL
            )
        else:
            self.clients = SqlClientStore(db, insert)
        self.users: UserStore = SqlUserStore(db, insert)
        self.keys: KeyStore = SqlKeyStore(db, insert)
        self.tokens: TokenStore = SqlTokenStore(db, insert)
        self.grants: GrantStore = SqlGrantStore(db, insert)
        from .sql_governance import SqlAdminStore, SqlAuditLog, SqlClientKeyStore

        self.admins: AdminStore = SqlAdminStore(db, insert)
        self.audit: AuditLog = SqlAuditLog(db)
        self.client_keys: ClientKeyStore = SqlClientKeyStore(db, insert)
        from .flow_sql import SqlFlowRecordStore

        self.flows: FlowRecordStore = SqlFlowRecordStore(db, insert, engine.dialect.name)
        from .account_sql import SqlAccountStore

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
            if _is_memory_sqlite(parsed.database, parsed.query):
                engine = create_engine(
                    parsed, poolclass=StaticPool, connect_args={"check_same_thread": False}
                )
            else:
                engine = create_engine(parsed, connect_args={"check_same_thread": False})
            event.listen(engine, "connect", _sqlite_pragmas(busy_timeout_ms))
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
