"""Storage interfaces and implementations (in-memory, SQLite, PostgreSQL, Redis)."""

from .base import (
    AlreadyExists,
    ClientRecord,
    ClientStore,
    EphemeralStore,
    GrantRecord,
    GrantStore,
    KeyStore,
    ServerKeyRecord,
    Store,
    StoreError,
    TokenRecord,
    TokenStore,
    UserRecord,
    UserStore,
)

__all__ = [
    "AlreadyExists",
    "ClientRecord",
    "ClientStore",
    "EphemeralStore",
    "GrantRecord",
    "GrantStore",
    "KeyStore",
    "ServerKeyRecord",
    "Store",
    "StoreError",
    "TokenRecord",
    "TokenStore",
    "UserRecord",
    "UserStore",
]
