"""Fixtures for the storage contract: every implementation behind one parametrized ``store``.

Kinds: the in-memory store, ``SqlStore`` on in-memory SQLite, on an SQLite file and on PostgreSQL (a fresh
schema per test session, migrated once and emptied before each test), and the composite store (SQLite durable records, Redis ephemeral records under a fresh key
prefix per test). The PostgreSQL and Redis kinds skip unless ``JARMOR_TEST_POSTGRES_URL`` /
``JARMOR_TEST_REDIS_URL`` are set.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack
from pathlib import Path

import pytest

from jarmor.store import MemoryStore, Store, schema
from jarmor.store.composite import CompositeStore
from jarmor.store.redis_store import RedisEphemeralStore
from jarmor.store.sql import SqlStore

from . import services

T0 = 1_700_000_000


class FakeClock:
    """An injectable ``time.time`` that only moves when told to."""

    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


# kinds whose ephemeral records expire by the service's own clock, not the injected one
REAL_CLOCK_EPHEMERAL = frozenset({"redis"})

KINDS = [
    "memory",
    "sqlite-memory",
    "sqlite-file",
    pytest.param("postgres", marks=pytest.mark.postgres),
    pytest.param("redis", marks=pytest.mark.redis),
]
SQL_KINDS = ["sqlite-memory", "sqlite-file", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(scope="session")
def postgres_session() -> Iterator[str]:
    """A schema for this test session, at the current revision (through the Alembic migrations)."""
    with services.postgres_schema() as url:
        yield url


def empty_postgres(url: str) -> None:
    import psycopg

    with psycopg.connect(services.libpq(url), autocommit=True) as conn:
        # a transaction an earlier test left open fails this test instead of hanging the run
        conn.execute("SET lock_timeout = '10s'")
        for table in schema.metadata.sorted_tables:
            conn.execute(f'DELETE FROM "{table.name}"')


async def open_kind(
    kind: str, clock: FakeClock, tmp_path: Path, stack: AsyncExitStack, request: pytest.FixtureRequest
) -> Store:
    """Open a store of ``kind``; ``stack`` closes it and removes whatever it was given."""
    store: Store
    if kind == "memory":
        return MemoryStore(clock)  # type: ignore[return-value]
    if kind == "sqlite-memory":
        store = SqlStore.open("sqlite://", clock=clock)
    elif kind == "sqlite-file":
        store = SqlStore.open(f"sqlite:///{tmp_path / 'jarmor.db'}", clock=clock)
    elif kind == "postgres":
        url = request.getfixturevalue("postgres_session")
        empty_postgres(url)
        store = SqlStore.open(url, clock=clock)
    elif kind == "redis":
        url, _prefix = stack.enter_context(services.redis_prefix())
        store = CompositeStore(SqlStore.open("sqlite://", clock=clock), RedisEphemeralStore.from_url(url))
    else:
        raise AssertionError(kind)
    stack.push_async_callback(store.close)
    return store


@pytest.fixture(params=KINDS)
def store_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def store(
    store_kind: str, clock: FakeClock, tmp_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[Store]:
    async with AsyncExitStack() as stack:
        yield await open_kind(store_kind, clock, tmp_path, stack, request)


@pytest.fixture
def fake_clock_ephemeral(store_kind: str, clock: FakeClock) -> FakeClock:
    """The clock the ephemeral store expires records by; skips kinds that use a service's own clock."""
    if store_kind in REAL_CLOCK_EPHEMERAL:
        pytest.skip("Redis expires keys by its own clock (real-time expiry: test_redis.py)")
    return clock


@pytest.fixture(params=SQL_KINDS)
async def sql_store(request: pytest.FixtureRequest, clock: FakeClock, tmp_path: Path) -> AsyncIterator[SqlStore]:
    async with AsyncExitStack() as stack:
        opened = await open_kind(request.param, clock, tmp_path, stack, request)
        assert isinstance(opened, SqlStore)
        yield opened


@pytest.fixture(params=["sqlite-memory", "sqlite-file"])
async def sqlite_store(request: pytest.FixtureRequest, clock: FakeClock, tmp_path: Path) -> AsyncIterator[SqlStore]:
    async with AsyncExitStack() as stack:
        opened = await open_kind(request.param, clock, tmp_path, stack, request)
        assert isinstance(opened, SqlStore)
        yield opened
