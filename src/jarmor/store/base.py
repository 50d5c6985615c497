"""Storage interfaces (typing.Protocol) and the plain records they hold.

Storage is split by lifetime (see ARCHITECTURE.md):

* ``EphemeralStore`` — short-lived, single-use records (PAR entries, interactions, authorization codes,
  ``jti`` replay marks). Its operations are atomic: ``take`` is a get-and-delete (``GETDEL``,
  ``DELETE ... RETURNING``) and ``add_once`` a set-if-absent, so two concurrent redemptions of one code or
  ``request_uri`` can never both succeed.
* Durable stores — clients, users, server keys, tokens and grants — live in a transactional database.

All methods are ``async`` so that network-backed implementations (PostgreSQL, Redis) fit the same shape; the
SQLite implementation runs its (sub-millisecond) statements inline.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol


class StoreError(Exception):
    """A storage operation failed."""


class AlreadyExists(StoreError):
    """A record with this identifier already exists."""


@dataclass(slots=True)
class ClientRecord:
    client_id: str
    metadata: dict[str, Any]
    created_at: int
    updated_at: int
    secret_hash: str | None = None
    registration_token_hash: str | None = None
    disabled_at: int | None = None
    disabled_reason: str | None = None
    disabled_by: str | None = None
    last_used_at: int | None = None


@dataclass(slots=True)
class UserRecord:
    username: str
    password_hash: str
    created_at: int
    disabled: bool = False


@dataclass(slots=True)
class ServerKeyRecord:
    """A server key. ``private_jwk`` is the serialized private JWK (possibly encrypted at rest)."""

    kid: str
    alg: str
    use: str
    private_jwk: str
    created_at: int
    # signing starts at ``active_at`` (publish first, sign later), verification ends at ``retired_at``
    active_at: int
    retired_at: int | None = None
    state: str = "active"  # "pending" | "active" | "retiring" | "retired"


@dataclass(slots=True)
class TokenRecord:
    token_hash: str
    kind: str  # "access_token" | "refresh_token"
    client_id: str
    subject: str | None
    scope: str
    grant_id: str | None
    created_at: int
    expires_at: int
    revoked_at: int | None = None
    rotated_to: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class GrantRecord:
    grant_id: str
    client_id: str
    subject: str | None
    scope: str
    created_at: int
    granted_by: str | None = None
    revoked_at: int | None = None
    revoked_reason: str | None = None


class EphemeralStore(Protocol):
    async def put(self, namespace: str, key: str, value: bytes, ttl: int) -> None:
        """Store ``value`` under ``key``, replacing any previous value, for ``ttl`` seconds."""

    async def get(self, namespace: str, key: str) -> bytes | None:
        """Read without consuming; ``None`` when absent or expired."""

    async def take(self, namespace: str, key: str) -> bytes | None:
        """Atomically read and delete; exactly one of any number of concurrent callers gets the value."""

    async def add_once(self, namespace: str, key: str, ttl: int) -> bool:
        """Record ``key`` if absent and unexpired; ``True`` for the first caller, ``False`` for a replay."""

    async def delete(self, namespace: str, key: str) -> None: ...


class ClientStore(Protocol):
    async def get(self, client_id: str) -> ClientRecord | None: ...

    async def create(self, record: ClientRecord) -> None:
        """Insert; raises ``AlreadyExists`` when the id is taken."""

    async def update(self, record: ClientRecord) -> None:
        """Replace an existing record; updating a missing client does nothing (it may have been deleted)."""

    async def delete(self, client_id: str) -> bool: ...

    async def list(self) -> list[ClientRecord]: ...

    async def count(self) -> int: ...

    async def touch(self, client_id: str, now: int) -> None:
        """Record that the client was used (``last_used_at``)."""


class UserStore(Protocol):
    async def get(self, username: str) -> UserRecord | None: ...

    async def create(self, record: UserRecord) -> None: ...

    async def update(self, record: UserRecord) -> None: ...

    async def list(self) -> list[UserRecord]: ...


class KeyStore(Protocol):
    async def list(self) -> list[ServerKeyRecord]: ...

    async def add(self, record: ServerKeyRecord) -> None: ...

    async def update(self, record: ServerKeyRecord) -> None: ...


class TokenStore(Protocol):
    async def create(self, record: TokenRecord) -> None: ...

    async def get(self, token_hash: str) -> TokenRecord | None: ...

    async def revoke(self, token_hash: str, now: int) -> bool: ...

    async def revoke_grant(self, grant_id: str, now: int) -> int:
        """Revoke every token issued under ``grant_id``; returns how many were revoked."""

    async def revoke_client(self, client_id: str, now: int) -> int: ...

    async def rotate(self, old_hash: str, new: TokenRecord, now: int) -> bool:
        """Atomically retire refresh token ``old_hash`` and store ``new``; ``False`` if already used."""

    async def list_for_client(self, client_id: str, *, active_at: int | None = None) -> list[TokenRecord]: ...


class GrantStore(Protocol):
    async def create(self, record: GrantRecord) -> None: ...

    async def get(self, grant_id: str) -> GrantRecord | None: ...

    async def revoke(self, grant_id: str, now: int, reason: str | None = None) -> bool: ...

    async def list_for_client(self, client_id: str) -> list[GrantRecord]: ...


class Store(Protocol):
    """Everything the server needs, behind one object (members are read-only)."""

    @property
    def ephemeral(self) -> EphemeralStore: ...

    @property
    def clients(self) -> ClientStore: ...

    @property
    def users(self) -> UserStore: ...

    @property
    def keys(self) -> KeyStore: ...

    @property
    def tokens(self) -> TokenStore: ...

    @property
    def grants(self) -> GrantStore: ...

    async def close(self) -> None: ...
