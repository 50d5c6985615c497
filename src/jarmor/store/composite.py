"""A ``Store`` whose durable records live in one backend and whose short-lived records live in another."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from typing import Protocol

from .base import (
    AccountStore,
    AdminStore,
    AuditLog,
    ClientKeyHistory,
    ClientStore,
    EphemeralStore,
    FlowRecordStore,
    GrantStore,
    KeyStore,
    Store,
    StoreTransaction,
    TokenStore,
    UserStore,
)


class ClosableEphemeralStore(EphemeralStore, Protocol):
    async def ping(self) -> None: ...

    async def probe(self) -> str | None: ...

    async def close(self) -> None: ...


class CompositeStore:
    """Durable stores from ``durable`` (SQLite or PostgreSQL); ``ephemeral`` from elsewhere (Redis).

    ``close`` closes both. The durable backend's own ephemeral table is left unused.
    """

    def __init__(self, durable: Store, ephemeral: ClosableEphemeralStore) -> None:
        self.durable = durable
        self.ephemeral: EphemeralStore = ephemeral
        self._ephemeral = ephemeral
        self.clients: ClientStore = durable.clients
        self.users: UserStore = durable.users
        self.keys: KeyStore = durable.keys
        self.tokens: TokenStore = durable.tokens
        self.grants: GrantStore = durable.grants
        self.admins: AdminStore = durable.admins
        self.audit: AuditLog = durable.audit
        self.client_key_history: ClientKeyHistory = durable.client_key_history
        self.flows: FlowRecordStore = durable.flows
        self.accounts: AccountStore = durable.accounts

    def transaction(self) -> AbstractAsyncContextManager[StoreTransaction]:
        """The durable backend's (short-lived records are never part of a durable transaction)."""
        return self.durable.transaction()

    async def ping(self) -> None:
        """Reach the short-lived record store once (``StoreUnavailable`` if it cannot be reached): ``open_store``
        connects to the durable database already, but the Redis client connects lazily, so without this an
        unreachable Redis would be found by the first flow."""
        await self._ephemeral.ping()

    async def health(self) -> dict[str, str | None]:
        return {**await self.durable.health(), "redis": await self._ephemeral.probe()}

    async def close(self) -> None:
        try:
            await self._ephemeral.close()
        finally:
            await self.durable.close()
