"""SQL ``AccountStore``: authenticators (``account_schema.py``) and the grants one user gave.

Runs on the executor of ``store.sql`` (``executor.py``) (SQLite inline, PostgreSQL on psycopg) with statements built once. The two
uses that must be single-use across workers and nodes are single conditional ``UPDATE`` statements, atomic on
both databases (SQLite holds the write lock, PostgreSQL a row lock, and the losing statement re-reads the row
and no longer matches):

* ``use_totp_step``: ``SET last_step = :step WHERE id = :id AND (last_step IS NULL OR last_step < :step)``;
* ``use_passkey``: ``SET sign_count = :count ... WHERE id = :id AND (sign_count < :count OR both are 0)``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
from sqlalchemy import Table, and_, bindparam, delete, func, or_, select, update

from .. import schema
from ..account_schema import authenticators
from ..base import AlreadyExists, AuthenticatorRecord, GrantRecord, GrantUse
from .executor import AnyRow, Executor, Upsert, unstorable

_COLS = (
    "authenticator_id", "population", "username", "kind", "created_at", "label", "credential_id", "public_key",
    "sign_count", "transports", "backup_eligible", "backup_state", "user_verified", "secret", "last_step",
    "last_used_at",
)
_GRANT_COLS = (
    "grant_id", "client_id", "subject", "scope", "created_at", "granted_by", "revoked_at", "revoked_reason",
)


def _row(r: AuthenticatorRecord) -> dict[str, Any]:
    row = {name: getattr(r, name) for name in _COLS}
    row["transports"] = orjson.dumps(list(r.transports)).decode()
    return row


def _record(row: AnyRow) -> AuthenticatorRecord:
    values = dict(zip(_COLS, row, strict=True))
    values["transports"] = tuple(orjson.loads(values["transports"]))
    for flag in ("backup_eligible", "backup_state", "user_verified"):
        values[flag] = bool(values[flag])
    return AuthenticatorRecord(**values)


class SqlAccountStore:
    def __init__(self, db: Executor, insert: Callable[[Table], Upsert]) -> None:
        self._db = db
        t = authenticators
        cols = [t.c[name] for name in _COLS]
        self._create = insert(t).on_conflict_do_nothing()
        self._get = select(*cols).where(t.c.authenticator_id == bindparam("id"))
        self._by_credential = select(*cols).where(t.c.credential_id == bindparam("id"))
        self._list = (
            select(*cols)
            .where(t.c.population == bindparam("pop"), t.c.username == bindparam("name"))
            .order_by(t.c.created_at, t.c.authenticator_id)
        )
        self._remove = delete(t).where(
            t.c.authenticator_id == bindparam("id"), t.c.population == bindparam("pop"),
            t.c.username == bindparam("name"),
        )
        self._use_step = (
            update(t)
            .where(
                t.c.authenticator_id == bindparam("id"), t.c.kind == "totp",
                or_(t.c.last_step.is_(None), t.c.last_step < bindparam("step")),
            )
            .values(last_step=bindparam("step"), last_used_at=bindparam("now"))
        )
        grown = t.c.sign_count < bindparam("count")
        no_counter = and_(t.c.sign_count == 0, bindparam("count") == 0)
        self._use_passkey = (
            update(t)
            .where(t.c.authenticator_id == bindparam("id"), t.c.kind == "passkey", or_(grown, no_counter))
            .values(sign_count=bindparam("count"), backup_state=bindparam("backup"), last_used_at=bindparam("now"))
        )
        g, tok = schema.grants, schema.tokens
        last_used = (
            select(func.max(tok.c.created_at)).where(tok.c.grant_id == g.c.grant_id).scalar_subquery()
        )
        self._grants = (
            select(*[g.c[name] for name in _GRANT_COLS], last_used)
            .where(g.c.subject == bindparam("sub"), g.c.revoked_at.is_(None))
            .order_by(g.c.created_at.desc(), g.c.grant_id)
        )

    async def add(self, record: AuthenticatorRecord) -> None:
        if await self._db.write(self._create, _row(record)) != 1:
            raise AlreadyExists(record.authenticator_id)

    async def get(self, authenticator_id: str) -> AuthenticatorRecord | None:
        if unstorable(self._db, authenticator_id):
            return None
        row = await self._db.first(self._get, {"id": authenticator_id})
        return None if row is None else _record(row)

    async def by_credential(self, credential_id: str) -> AuthenticatorRecord | None:
        if unstorable(self._db, credential_id):
            return None
        row = await self._db.first(self._by_credential, {"id": credential_id})
        return None if row is None else _record(row)

    async def list_for(self, population: str, username: str) -> list[AuthenticatorRecord]:
        if unstorable(self._db, username):
            return []
        return [_record(row) for row in await self._db.all(self._list, {"pop": population, "name": username})]

    async def remove(self, population: str, username: str, authenticator_id: str) -> bool:
        if unstorable(self._db, authenticator_id) or unstorable(self._db, username):
            return False
        params = {"id": authenticator_id, "pop": population, "name": username}
        return await self._db.write(self._remove, params) == 1

    async def use_passkey(self, authenticator_id: str, sign_count: int, backup_state: bool, now: int) -> bool:
        params = {"id": authenticator_id, "count": sign_count, "backup": backup_state, "now": now}
        return await self._db.write(self._use_passkey, params) == 1

    async def use_totp_step(self, authenticator_id: str, step: int, now: int) -> bool:
        return await self._db.write(self._use_step, {"id": authenticator_id, "step": step, "now": now}) == 1

    async def grants_of(self, subject: str) -> list[GrantUse]:
        if unstorable(self._db, subject):
            return []
        rows = await self._db.all(self._grants, {"sub": subject})
        return [GrantUse(GrantRecord(*row[:-1]), None if row[-1] is None else int(row[-1])) for row in rows]
