"""In-process store: for tests, embedding and single-process demos. Atomic because the event loop is."""

from __future__ import annotations

import contextlib
import copy
import functools
import time
from collections.abc import AsyncIterator, Callable, Sequence

from .account_memory import MemoryAccountStore
from .base import (
    AdminEvent,
    AdminRecord,
    AlreadyExists,
    ChangeFeed,
    ClientKeyRecord,
    ClientRecord,
    GrantRecord,
    ServerKeyRecord,
    StoreError,
    TokenRecord,
    UserRecord,
)
from .flow_memory import MemoryFlowRecordStore


class MemoryEphemeralStore:
    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._data: dict[tuple[str, str], tuple[bytes, float]] = {}
        self._clock = clock

    def _live(self, k: tuple[str, str]) -> bytes | None:
        item = self._data.get(k)
        if item is None:
            return None
        if item[1] <= self._clock():
            del self._data[k]
            return None
        return item[0]

    async def put(self, namespace: str, key: str, value: bytes, ttl: int) -> None:
        self._data[(namespace, key)] = (value, self._clock() + ttl)

    async def get(self, namespace: str, key: str) -> bytes | None:
        return self._live((namespace, key))

    async def take(self, namespace: str, key: str) -> bytes | None:
        value = self._live((namespace, key))
        if value is not None:
            del self._data[(namespace, key)]
        return value

    async def add_once(self, namespace: str, key: str, ttl: int) -> bool:
        if self._live((namespace, key)) is not None:
            return False
        self._data[(namespace, key)] = (b"1", self._clock() + ttl)
        return True

    async def incr(self, namespace: str, key: str, ttl: int, *, by: int = 1) -> int:
        current = self._live((namespace, key))
        if current is None:
            count, expires = by, self._clock() + ttl
        else:
            try:
                count = int(current) + by
            except ValueError as exc:
                raise StoreError(f"{namespace}: the key does not hold a counter") from exc
            expires = self._data[(namespace, key)][1]
        self._data[(namespace, key)] = (str(count).encode(), expires)
        return count

    async def delete(self, namespace: str, key: str) -> None:
        self._data.pop((namespace, key), None)

    async def take_and_mark(self, namespace: str, key: str, mark: str, value: bytes, ttl: int) -> bytes | None:
        taken = await self.take(namespace, key)
        if taken is not None:
            await self.put(mark, key, value, ttl)
        return taken


class MemoryClientStore:
    changes: ChangeFeed | None = None  # one process: the directory reads ``state`` (a dict lookup)

    def __init__(self, users: MemoryUserStore | None = None) -> None:
        self._data: dict[str, ClientRecord] = {}
        self._users = users if users is not None else MemoryUserStore()

    async def get(self, client_id: str) -> ClientRecord | None:
        rec = self._data.get(client_id)
        return copy.deepcopy(rec) if rec else None

    async def state(self, client_id: str) -> tuple[int, int | None] | None:
        rec = self._data.get(client_id)
        return None if rec is None else (rec.updated_at, rec.disabled_at)

    async def standing(self, client_id: str, subject: str | None) -> tuple[int, int | None, bool] | None:
        rec = self._data.get(client_id)
        user = self._users._data.get(subject) if subject is not None else None
        return None if rec is None else (rec.updated_at, rec.disabled_at, user is not None and user.disabled)

    async def create(self, record: ClientRecord) -> None:
        if record.client_id in self._data:
            raise AlreadyExists(record.client_id)
        self._data[record.client_id] = copy.deepcopy(record)

    async def update(self, record: ClientRecord) -> None:
        if record.client_id in self._data:
            self._data[record.client_id] = copy.deepcopy(record)

    async def delete(self, client_id: str) -> bool:
        return self._data.pop(client_id, None) is not None

    async def list(self) -> list[ClientRecord]:
        return [copy.deepcopy(r) for r in self._data.values()]

    async def count(self) -> int:
        return len(self._data)

    async def touch(self, client_id: str, now: int) -> None:
        rec = self._data.get(client_id)
        if rec is not None and (rec.last_used_at is None or rec.last_used_at < now):  # never backwards
            rec.last_used_at = now

    async def replace_registration(self, record: ClientRecord, expected_token_hash: str) -> bool:
        rec = self._data.get(record.client_id)
        if rec is None or rec.disabled_at is not None or rec.registration_token_hash != expected_token_hash:
            return False
        rec.metadata = copy.deepcopy(record.metadata)
        rec.updated_at = record.updated_at
        rec.secret_hash = record.secret_hash
        rec.registration_token_hash = record.registration_token_hash
        return True

    async def disable(self, client_id: str, *, at: int, reason: str, by: str) -> bool:
        rec = self._data.get(client_id)
        if rec is None or rec.disabled_at is not None:
            return False
        rec.disabled_at, rec.disabled_reason, rec.disabled_by = at, reason, by
        return True


class MemoryUserStore:
    def __init__(self) -> None:
        self._data: dict[str, UserRecord] = {}

    async def get(self, username: str) -> UserRecord | None:
        return copy.deepcopy(self._data.get(username))

    async def create(self, record: UserRecord) -> None:
        if record.username in self._data:
            raise AlreadyExists(record.username)
        self._data[record.username] = copy.deepcopy(record)

    async def update(self, record: UserRecord) -> None:
        self._data[record.username] = copy.deepcopy(record)

    async def list(self) -> list[UserRecord]:
        return [copy.deepcopy(r) for r in self._data.values()]


class MemoryKeyStore:
    def __init__(self) -> None:
        self._data: dict[str, ServerKeyRecord] = {}

    async def list(self) -> list[ServerKeyRecord]:
        return [copy.deepcopy(r) for r in self._data.values()]

    async def add(self, record: ServerKeyRecord) -> None:
        if record.kid in self._data:
            raise AlreadyExists(record.kid)
        self._data[record.kid] = copy.deepcopy(record)

    async def update(self, record: ServerKeyRecord) -> None:
        self._data[record.kid] = copy.deepcopy(record)


class MemoryTokenStore:
    def __init__(self) -> None:
        self._data: dict[str, TokenRecord] = {}

    async def create(self, record: TokenRecord) -> None:
        if record.token_hash in self._data:
            raise AlreadyExists("token")
        self._data[record.token_hash] = copy.deepcopy(record)

    async def get(self, token_hash: str) -> TokenRecord | None:
        return copy.deepcopy(self._data.get(token_hash))

    async def revoke(self, token_hash: str, now: int) -> bool:
        rec = self._data.get(token_hash)
        if rec is None or rec.revoked_at is not None:
            return False
        rec.revoked_at = now
        return True

    async def revoke_grant(self, grant_id: str, now: int) -> int:
        n = 0
        for rec in self._data.values():
            if rec.grant_id == grant_id and rec.revoked_at is None:
                rec.revoked_at = now
                n += 1
        return n

    async def revoke_client(self, client_id: str, now: int) -> int:
        n = 0
        for rec in self._data.values():
            if rec.client_id == client_id and rec.revoked_at is None:
                rec.revoked_at = now
                n += 1
        return n

    async def rotate(self, old_hash: str, new: TokenRecord, now: int) -> bool:
        old = self._data.get(old_hash)
        if old is None or old.revoked_at is not None or old.rotated_to is not None:
            return False
        old.rotated_to = new.token_hash
        old.revoked_at = now
        self._data[new.token_hash] = copy.deepcopy(new)
        return True

    async def active_counts(self, active_at: int) -> dict[str, int]:
        out: dict[str, int] = {}
        for rec in self._data.values():
            if rec.revoked_at is None and rec.expires_at > active_at:
                out[rec.client_id] = out.get(rec.client_id, 0) + 1
        return out

    async def list_for_client(self, client_id: str, *, active_at: int | None = None) -> list[TokenRecord]:
        out = []
        for rec in self._data.values():
            if rec.client_id != client_id:
                continue
            if active_at is not None and (rec.revoked_at is not None or rec.expires_at <= active_at):
                continue
            out.append(copy.deepcopy(rec))
        return out


class MemoryGrantStore:
    def __init__(self) -> None:
        self._data: dict[str, GrantRecord] = {}

    async def create(self, record: GrantRecord) -> None:
        if record.grant_id in self._data:
            raise AlreadyExists(record.grant_id)
        self._data[record.grant_id] = copy.deepcopy(record)

    async def get(self, grant_id: str) -> GrantRecord | None:
        return copy.deepcopy(self._data.get(grant_id))

    async def revoke(self, grant_id: str, now: int, reason: str | None = None) -> bool:
        rec = self._data.get(grant_id)
        if rec is None or rec.revoked_at is not None:
            return False
        rec.revoked_at = now
        rec.revoked_reason = reason
        return True

    async def list_for_client(self, client_id: str) -> list[GrantRecord]:
        return [copy.deepcopy(r) for r in self._data.values() if r.client_id == client_id]

    async def active_counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for rec in self._data.values():
            if rec.revoked_at is None:
                out[rec.client_id] = out.get(rec.client_id, 0) + 1
        return out


class MemoryAdminStore:
    def __init__(self) -> None:
        self._data: dict[str, AdminRecord] = {}

    async def get(self, username: str) -> AdminRecord | None:
        return copy.deepcopy(self._data.get(username))

    async def create(self, record: AdminRecord) -> None:
        if record.username in self._data:
            raise AlreadyExists(record.username)
        self._data[record.username] = copy.deepcopy(record)

    async def update(self, record: AdminRecord) -> None:
        if record.username in self._data:
            self._data[record.username] = copy.deepcopy(record)

    async def list(self) -> list[AdminRecord]:
        return [copy.deepcopy(r) for r in self._data.values()]


class MemoryAuditLog:
    def __init__(self) -> None:
        self._events: list[AdminEvent] = []

    async def append(self, event: AdminEvent) -> None:
        stored = copy.deepcopy(event)
        stored.seq = len(self._events) + 1
        self._events.append(stored)

    async def list(self, *, target: str | None = None, limit: int = 100) -> list[AdminEvent]:
        out: list[AdminEvent] = []
        for event in reversed(self._events):
            if len(out) >= limit:
                break
            if target is None or event.target == target:
                out.append(copy.deepcopy(event))
        return out


class MemoryClientKeyHistory:
    def __init__(self) -> None:
        self._data: dict[tuple[str, str], ClientKeyRecord] = {}

    async def observe(self, client_id: str, keys: Sequence[tuple[str, str]], now: int) -> None:
        current = dict(keys)
        for (cid, thumbprint), rec in self._data.items():
            if cid == client_id and thumbprint not in current and rec.removed_at is None:
                rec.removed_at = now
        for thumbprint, kid in current.items():
            seen = self._data.get((client_id, thumbprint))
            if seen is None:
                self._data[(client_id, thumbprint)] = ClientKeyRecord(client_id, thumbprint, kid, now)
            else:
                seen.kid, seen.removed_at = kid, None

    async def list_for_client(self, client_id: str) -> list[ClientKeyRecord]:
        found = [copy.deepcopy(r) for (cid, _), r in self._data.items() if cid == client_id]
        return sorted(found, key=lambda r: (r.first_seen_at, r.thumbprint))

    async def list_all(self) -> list[ClientKeyRecord]:
        return sorted((copy.deepcopy(r) for r in self._data.values()),
                      key=lambda r: (r.client_id, r.first_seen_at, r.thumbprint))


class MemoryTransaction:
    """``StoreTransaction`` in memory: each write applies at once (nothing else runs until the block awaits
    something else, which it must not) and is undone if the block raises."""

    def __init__(self, tokens: MemoryTokenStore, grants: MemoryGrantStore, clients: MemoryClientStore) -> None:
        self._tokens = tokens
        self._grants = grants
        self._clients = clients
        self._undo: list[Callable[[], object]] = []

    async def create_grant(self, record: GrantRecord) -> None:
        await self._grants.create(record)
        self._undo.append(functools.partial(self._grants._data.pop, record.grant_id, None))

    async def create_token(self, record: TokenRecord) -> None:
        await self._tokens.create(record)
        self._undo.append(functools.partial(self._tokens._data.pop, record.token_hash, None))

    async def rotate_token(self, old_hash: str, new: TokenRecord, now: int) -> bool:
        before = copy.deepcopy(self._tokens._data.get(old_hash))
        if new.token_hash in self._tokens._data:
            raise AlreadyExists("token")
        if not await self._tokens.rotate(old_hash, new, now):
            return False

        def undo() -> None:
            self._tokens._data.pop(new.token_hash, None)
            if before is not None:
                self._tokens._data[old_hash] = before

        self._undo.append(undo)
        return True

    async def touch_client(self, client_id: str, now: int) -> None:
        rec = self._clients._data.get(client_id)
        if rec is not None:
            self._undo.append(functools.partial(setattr, rec, "last_used_at", rec.last_used_at))
            await self._clients.touch(client_id, now)

    def roll_back(self) -> None:
        for undo in reversed(self._undo):
            undo()
        self._undo.clear()


class MemoryStore:
    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.ephemeral = MemoryEphemeralStore(clock)
        self.users = MemoryUserStore()
        self.clients = MemoryClientStore(self.users)
        self.keys = MemoryKeyStore()
        self.tokens = MemoryTokenStore()
        self.grants = MemoryGrantStore()
        self.admins = MemoryAdminStore()
        self.audit = MemoryAuditLog()
        self.client_key_history = MemoryClientKeyHistory()
        self.flows = MemoryFlowRecordStore()
        self.accounts = MemoryAccountStore(self.grants._data, self.tokens._data)

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[MemoryTransaction]:
        tx = MemoryTransaction(self.tokens, self.grants, self.clients)
        try:
            yield tx
        except BaseException:
            tx.roll_back()
            raise

    async def health(self) -> dict[str, str | None]:
        return {"database": None}

    async def close(self) -> None:
        return None
