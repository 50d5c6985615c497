"""SQL stores for governance records: dashboard administrators, the audit log and client key first-seen times.

They run on the same executor as the other SQL stores (SQLite inline, PostgreSQL on psycopg) and follow its rules:
statements are built once as SQLAlchemy Core expressions over ``store/schema.py``, with plain bind parameters only
(the PostgreSQL executor compiles each statement once, so no expanding ``IN`` lists).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import Integer, Table, bindparam, insert, select, update
from sqlalchemy.sql.elements import BindParameter

from .. import schema
from ..base import AdminEvent, AdminRecord, AlreadyExists, ClientKeyRecord
from .executor import AnyRow, Executor, Upsert, insert_new, json_text, json_value, update_all

_ADMIN_COLS = ("username", "password_hash", "created_at", "disabled")


def _admin_row(r: AdminRecord) -> dict[str, Any]:
    return {
        "username": r.username,
        "password_hash": r.password_hash,
        "created_at": r.created_at,
        "disabled": r.disabled,
    }


def _admin_record(row: AnyRow) -> AdminRecord:
    return AdminRecord(row[0], row[1], row[2], bool(row[3]))


class SqlAdminStore:
    def __init__(self, db: Executor, upsert: Callable[[Table], Upsert]) -> None:
        self._db = db
        t = schema.admin_users
        cols = [t.c[name] for name in _ADMIN_COLS]
        self._get = select(*cols).where(t.c.username == bindparam("id"))
        self._list = select(*cols).order_by(t.c.created_at, t.c.username)
        self._create = insert_new(upsert, t, "username")
        self._update = update_all(t, "username")

    async def get(self, username: str) -> AdminRecord | None:
        row = await self._db.first(self._get, {"id": username})
        return None if row is None else _admin_record(row)

    async def create(self, record: AdminRecord) -> None:
        if await self._db.write(self._create, _admin_row(record)) != 1:
            raise AlreadyExists(record.username)

    async def update(self, record: AdminRecord) -> None:
        params = _admin_row(record)
        params["_pk"] = params.pop("username")
        await self._db.write(self._update, params)

    async def list(self) -> list[AdminRecord]:
        return [_admin_record(row) for row in await self._db.all(self._list, {})]


_EVENT_COLS = ("seq", "at", "actor", "action", "target", "reason", "details")


def _event(row: AnyRow) -> AdminEvent:
    seq, at, actor, action, target, reason, details = row
    return AdminEvent(at, actor, action, target, reason, json_value(details), seq)


class SqlAuditLog:
    """Append-only: this class has no statement that updates or deletes an event."""

    def __init__(self, db: Executor) -> None:
        self._db = db
        t = schema.admin_events
        cols = [t.c[name] for name in _EVENT_COLS]
        self._append = insert(t).values(
            at=bindparam("at"),
            actor=bindparam("actor"),
            action=bindparam("action"),
            target=bindparam("target"),
            reason=bindparam("reason"),
            details=bindparam("details"),
        )
        limit: BindParameter[int] = bindparam("limit", type_=Integer)
        self._list_all = select(*cols).order_by(t.c.seq.desc()).limit(limit)
        self._list_target = (
            select(*cols).where(t.c.target == bindparam("target")).order_by(t.c.seq.desc()).limit(limit)
        )

    async def append(self, event: AdminEvent) -> None:
        await self._db.write(
            self._append,
            {
                "at": event.at,
                "actor": event.actor,
                "action": event.action,
                "target": event.target,
                "reason": event.reason,
                "details": json_text(event.details),
            },
        )

    async def list(self, *, target: str | None = None, limit: int = 100) -> list[AdminEvent]:
        if target is None:
            rows = await self._db.all(self._list_all, {"limit": limit})
        else:
            rows = await self._db.all(self._list_target, {"target": target, "limit": limit})
        return [_event(row) for row in rows]


class SqlClientKeyHistory:
    def __init__(self, db: Executor, upsert: Callable[[Table], Upsert]) -> None:
        self._db = db
        t = schema.client_keys
        cols = (t.c.client_id, t.c.thumbprint, t.c.kid, t.c.first_seen_at, t.c.removed_at)
        self._list = (
            select(*cols).where(t.c.client_id == bindparam("id")).order_by(t.c.first_seen_at, t.c.thumbprint)
        )
        self._list_all = select(*cols).order_by(t.c.client_id, t.c.first_seen_at, t.c.thumbprint)
        ins = upsert(t).values(
            client_id=bindparam("id"),
            thumbprint=bindparam("tp"),
            kid=bindparam("kid"),
            first_seen_at=bindparam("now"),
            removed_at=None,
        )
        # a key seen again keeps its first-seen time (its age); it is no longer removed
        self._seen = ins.on_conflict_do_update(
            index_elements=[t.c.client_id, t.c.thumbprint],
            set_={"kid": ins.excluded.kid, "removed_at": None},
        )
        self._removed = (
            update(t)
            .where(t.c.client_id == bindparam("id"), t.c.thumbprint == bindparam("tp"), t.c.removed_at.is_(None))
            .values(removed_at=bindparam("now"))
        )

    async def observe(self, client_id: str, keys: Sequence[tuple[str, str]], now: int) -> None:
        current = dict(keys)
        known = await self.list_for_client(client_id)
        async with self._db.transaction() as tx:
            for rec in known:
                if rec.thumbprint not in current and rec.removed_at is None:
                    await tx.write(self._removed, {"id": client_id, "tp": rec.thumbprint, "now": now})
            for thumbprint, kid in current.items():
                await tx.write(self._seen, {"id": client_id, "tp": thumbprint, "kid": kid, "now": now})

    async def list_for_client(self, client_id: str) -> list[ClientKeyRecord]:
        return [ClientKeyRecord(*row) for row in await self._db.all(self._list, {"id": client_id})]

    async def list_all(self) -> list[ClientKeyRecord]:
        return [ClientKeyRecord(*row) for row in await self._db.all(self._list_all, {})]
