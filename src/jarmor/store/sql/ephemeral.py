"""Short-lived single-use records in the ``ephemeral`` table (``SqlEphemeralStore``).

Single-use operations are single statements, atomic on both databases:

* ``take`` is one ``DELETE ... RETURNING`` (``take_and_mark``: that and the mark's upsert in one
  transaction), ``add_once`` one
  ``INSERT ... ON CONFLICT DO UPDATE ... WHERE <expired>``: SQLite runs each statement under the database
  write lock, PostgreSQL under a row lock (a concurrent second statement waits, re-reads the row and finds
  it gone, or unexpired), so of any number of concurrent callers exactly one deletes (or inserts) the row.
* ``incr`` is one ``INSERT ... ON CONFLICT DO UPDATE SET value = <value + by> ... RETURNING value`` on the
  same table (the count is kept as decimal digits in ``value``; an expired row starts again from ``by`` with
  a new expiry): under the same locks, each concurrent increment sees the one before it.

Expiry times are whole epoch seconds rounded *up*, so a record lives at least its ``ttl`` (at most one
second longer) and a replay mark is never dropped early. Expired rows are unreadable at once and deleted
lazily: every ``purge_every``-th write of a process deletes all expired rows (indexed).
"""

from __future__ import annotations

import contextlib
import hashlib
import math
from collections.abc import Callable
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    LargeBinary,
    Table,
    Text,
    and_,
    bindparam,
    case,
    delete,
    func,
    literal_column,
    select,
)
from sqlalchemy import cast as sql_cast
from sqlalchemy.sql.elements import BindParameter

from .. import schema
from ..base import StoreError
from .executor import Executor, Upsert

Clock = Callable[[], float]
DEFAULT_PURGE_EVERY = 256


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

    async def take_and_mark(self, namespace: str, key: str, mark: str, value: bytes, ttl: int) -> bytes | None:
        stored_key = self._key(key)
        async with self._db.transaction() as tx:
            row = await tx.first(self._take, {"ns": namespace, "key": stored_key, "now": self._now()})
            if row is None:
                return None
            await tx.write(self._put, {"ns": mark, "key": stored_key, "value": value, "exp": self._expiry(ttl)})
        await self._wrote()
        return bytes(row[0])
