"""Tokens (``SqlTokenStore``) and grants (``SqlGrantStore``) in the ``tokens`` and ``grants`` tables, and
``SqlStoreTransaction``: what one endpoint issues, in one transaction.

``rotate`` is a conditional ``UPDATE`` plus an ``INSERT`` in one transaction (on SQLite ``BEGIN IMMEDIATE``,
so two rotations serialize; on PostgreSQL the losing ``UPDATE`` waits for the winner and matches no row).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import Table, bindparam, func, select, update
from sqlalchemy.sql.elements import BindParameter

from .. import schema
from ..base import AlreadyExists, GrantRecord, TokenRecord
from .clients import SqlClientStore
from .executor import AnyRow, Executor, Transaction, Upsert, insert_new, json_text, json_value, unstorable

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
        "extra": json_text(r.extra),
    }


def _token_record(row: AnyRow) -> TokenRecord:
    h, kind, client_id, subject, scope, grant_id, created, expires, revoked, rotated, extra = row
    return TokenRecord(
        h, kind, client_id, subject, scope, grant_id, created, expires, revoked, rotated, json_value(extra)
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
            return await self.rotate_in(tx, old_hash, new, now)

    async def create_in(self, tx: Transaction, record: TokenRecord) -> None:
        if await tx.write(self._create, _token_row(record)) != 1:
            raise AlreadyExists("token")

    async def rotate_in(self, tx: Transaction, old_hash: str, new: TokenRecord, now: int) -> bool:
        """``rotate`` inside ``tx``: ``AlreadyExists`` must roll ``tx`` back (the retirement with it)."""
        if await tx.write(self._retire, {"id": old_hash, "new": new.token_hash, "now": now}) != 1:
            return False
        await self.create_in(tx, new)
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

    async def create_in(self, tx: Transaction, record: GrantRecord) -> None:
        if await tx.write(self._create, _grant_row(record)) != 1:
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


class SqlStoreTransaction:
    """``StoreTransaction``: the statements of ``SqlTokenStore``, ``SqlGrantStore`` and ``SqlClientStore`` on
    one open transaction (``Executor.transaction``: ``BEGIN IMMEDIATE`` on SQLite, one pooled connection on
    PostgreSQL)."""

    __slots__ = ("_clients", "_grants", "_tokens", "_tx")

    def __init__(self, tx: Transaction, tokens: SqlTokenStore, grants: SqlGrantStore, clients: SqlClientStore) -> None:
        self._tx = tx
        self._tokens = tokens
        self._grants = grants
        self._clients = clients

    async def create_grant(self, record: GrantRecord) -> None:
        await self._grants.create_in(self._tx, record)

    async def create_token(self, record: TokenRecord) -> None:
        await self._tokens.create_in(self._tx, record)

    async def rotate_token(self, old_hash: str, new: TokenRecord, now: int) -> bool:
        return await self._tokens.rotate_in(self._tx, old_hash, new, now)

    async def touch_client(self, client_id: str, now: int) -> None:
        await self._clients.touch_in(self._tx, client_id, now)
