"""The server's own signing and encryption keys in the ``server_keys`` table (``SqlKeyStore``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import Table, select

from .. import schema
from ..base import AlreadyExists, ServerKeyRecord
from .executor import Executor, Upsert, insert_new, update_all

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
