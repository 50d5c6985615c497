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
    StoreUnavailable,
    TokenRecord,
    TokenStore,
    UserRecord,
    UserStore,
)
from .memory import MemoryStore

if TYPE_CHECKING:
    from .migrate import SchemaNotCurrent
    from .sql import SqlStore


def open_store(url: str, redis_url: str | None = None, *, clock: Callable[[], float] = time.time) -> Store:
    """Open the store named by ``url``, with its short-lived records in Redis when ``redis_url`` is given.

    ``url``: ``memory://``, an SQLite URL (``sqlite:///path.db``) or a PostgreSQL URL
    (``postgresql+psycopg://user:password@host/dbname``; ``postgresql://`` means the same). A PostgreSQL
    database must be at the current schema revision (``jarmor db upgrade``), else ``SchemaNotCurrent``.
    ``redis_url``: ``redis://host:6379/0`` (``rediss://`` for TLS; ``?key_prefix=NAME`` to share a Redis).
    ``clock`` applies to the in-process and SQL stores, not to Redis, which expires records by its own clock.

    SQLAlchemy, psycopg and redis-py are imported only when a store needs them.
    """
    ephemeral = None
    if redis_url:
        from .redis_store import RedisEphemeralStore

        # first: it only parses the URL (connections are made on first use), so nothing needs undoing
        ephemeral = RedisEphemeralStore.from_url(redis_url)
    scheme = url.partition(":")[0].lower()
    store: Store
    if scheme == "memory":
        # cast: ``Store`` declares its members as mutable attributes (invariant), MemoryStore's are narrower
        store = cast(Store, MemoryStore(clock))
    elif scheme.partition("+")[0] in ("sqlite", "postgresql", "postgres"):
        from .sql import SqlStore

        store = SqlStore.open(url, clock=clock)
    else:
        raise StoreError(f"unsupported store URL scheme {scheme!r}")
    if ephemeral is None:
        return store
    from .composite import CompositeStore

    return CompositeStore(store, ephemeral)


def __getattr__(name: str) -> Any:
    if name == "SqlStore":
        from .sql import SqlStore

        return SqlStore
    if name == "SchemaNotCurrent":
        from .migrate import SchemaNotCurrent

        return SchemaNotCurrent
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
    "SchemaNotCurrent",
    "ServerKeyRecord",
    "SqlStore",
    "Store",
    "StoreError",
    "StoreUnavailable",
    "TokenRecord",
    "TokenStore",
    "UserRecord",
    "UserStore",
    "open_store",
]
