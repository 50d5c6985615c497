"""Clients in the ``clients`` table (``SqlClientStore``), and how a change to one is announced.

On PostgreSQL every write that changes what a cache holds (update, registration replacement, disable,
delete) also runs ``pg_notify(CLIENT_CHANNEL, change_payload(client_id))`` in its transaction, which
``postgres.PostgresChanges`` listens to: every node hears of the change once it commits.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import Executable, Table, bindparam, delete, func, or_, select, update
from sqlalchemy.sql.elements import BindParameter

from .. import schema
from ..base import AlreadyExists, ChangeFeed, ClientRecord
from .executor import (
    AnyRow,
    Executor,
    Params,
    Transaction,
    Upsert,
    insert_new,
    json_text,
    json_value,
    unstorable,
    update_all,
)

# the channel client changes are announced on (``pg_notify`` in the changing transaction: delivered on commit)
CLIENT_CHANNEL = "jarmor_clients"
# a payload longer than this names no client: listeners drop every cached client (PostgreSQL allows 8000 bytes)
MAX_PAYLOAD = 1000


def change_payload(client_id: str) -> str:
    """The notification payload announcing a change to ``client_id`` ("" for every client)."""
    return client_id if len(client_id.encode()) <= MAX_PAYLOAD else ""


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
        "metadata": json_text(r.metadata),
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
    return ClientRecord(row[0], json_value(row[1]), *row[2:])


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
            "metadata": json_text(record.metadata),
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
        if self._touched_since(client_id, now):
            return
        if await self._db.write(self._touch, {"id": client_id, "now": now}) == 1:
            self._remember_touch(client_id, now)

    async def touch_in(self, tx: Transaction, client_id: str, now: int) -> None:
        """``touch`` inside ``tx`` (``Store.transaction``): no commit of its own."""
        if not self._touched_since(client_id, now):
            await tx.write(self._touch, {"id": client_id, "now": now})
            self._remember_touch(client_id, now)  # the row holds ``now`` or later once ``tx`` commits

    def _touched_since(self, client_id: str, now: int) -> bool:
        last = self._touched.get(client_id)
        return last is not None and last >= now

    def _remember_touch(self, client_id: str, now: int) -> None:
        if len(self._touched) >= self._TOUCH_CACHE_MAX:
            self._touched.clear()
        self._touched[client_id] = now
