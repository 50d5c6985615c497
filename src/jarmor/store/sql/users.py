"""End users in the ``users`` table (``SqlUserStore``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import Table, bindparam, select

from .. import schema
from ..base import AlreadyExists, UserRecord
from .executor import AnyRow, Executor, Upsert, insert_new, unstorable, update_all

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
