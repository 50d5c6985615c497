"""Storage interfaces and implementations (in-memory, SQLite, PostgreSQL, Redis)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

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
from .memory import MemoryStore

if TYPE_CHECKING:
    from .sql import SqlStore


def open_store(url: str, *, clock: Callable[[], float] = time.time) -> Store:
    """Open the store named by ``url``: ``memory://`` or an SQLAlchemy SQLite URL (``sqlite:///path.db``).

    SQLAlchemy is imported only when an SQL store is opened.
    """
    scheme = url.partition(":")[0].lower()
    if scheme == "memory":
        # cast: ``Store`` declares its members as mutable attributes (invariant), MemoryStore's are narrower
        return cast(Store, MemoryStore(clock))
    if scheme == "sqlite" or scheme.startswith("sqlite+"):
        from .sql import SqlStore

        return SqlStore.open(url, clock=clock)
    raise StoreError(f"unsupported store URL scheme {scheme!r}")


def __getattr__(name: str) -> Any:
    if name == "SqlStore":
        from .sql import SqlStore

        return SqlStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "AlreadyExists",
    "ClientRecord",
    "ClientStore",
    "EphemeralStore",
    "GrantRecord",
    "GrantStore",
    "KeyStore",
    "MemoryStore",
    "ServerKeyRecord",
    "SqlStore",
    "Store",
    "StoreError",
    "TokenRecord",
    "TokenStore",
    "UserRecord",
    "UserStore",
    "open_store",
]
