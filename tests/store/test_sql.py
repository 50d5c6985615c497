"""Behaviour specific to ``SqlStore``: connection settings, lazy purge, time rounding, errors, reopening."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import func, inspect, select

from jarmor.store import (
    AlreadyExists,
    ClientRecord,
    MemoryStore,
    StoreError,
    TokenRecord,
    open_store,
    schema,
)
from jarmor.store.sql import SqlStore

from .conftest import T0, FakeClock


def _rows(store: SqlStore) -> int:
    with store.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(schema.ephemeral)).scalar_one())


def _token(token_hash: str) -> TokenRecord:
    return TokenRecord(token_hash, "refresh_token", "c1", "alice", "openid", "g1", T0, T0 + 3600)


async def test_sqlite_connection_settings(tmp_path: Path) -> None:
    store = SqlStore.open(f"sqlite:///{tmp_path / 'j.db'}")
    try:
        with store.engine.connect() as conn:
            pragma = {
                name: conn.exec_driver_sql(f"PRAGMA {name}").scalar()
                for name in ("journal_mode", "synchronous", "busy_timeout", "foreign_keys")
            }
        assert pragma == {"journal_mode": "wal", "synchronous": 1, "busy_timeout": 5000, "foreign_keys": 1}
    finally:
        await store.close()


async def test_schema_indexes(sql_store: SqlStore) -> None:
    insp = inspect(sql_store.engine)
    assert set(insp.get_table_names()) == {*schema.metadata.tables, "alembic_version"}
    assert {"clients", "users", "server_keys", "tokens", "grants", "ephemeral"} <= set(insp.get_table_names())
    token_indexes = {tuple(ix["column_names"]) for ix in insp.get_indexes("tokens")}
    assert {("grant_id",), ("client_id",)} <= token_indexes
    assert insp.get_pk_constraint("ephemeral")["constrained_columns"] == ["namespace", "key"]


async def test_expired_rows_are_purged_lazily(clock: FakeClock) -> None:
    store = SqlStore.open("sqlite://", clock=clock, purge_every=10)
    try:
        for i in range(9):
            await store.ephemeral.put("par", f"old{i}", b"v", 5)
        clock.advance(5)
        assert _rows(store) == 9, "expired rows stay until the next purge"
        assert await store.ephemeral.get("par", "old0") is None, "but are unreadable at once"
        await store.ephemeral.add_once("jti", "new", 60)  # the 10th write purges
        assert _rows(store) == 1
        for i in range(3):
            await store.ephemeral.put("par", f"x{i}", b"v", 1)
        clock.advance(1)
        assert await store.purge_expired() == 3
        assert _rows(store) == 1
    finally:
        await store.close()


async def test_fractional_clock_rounds_expiry_up(clock: FakeClock, sql_store: SqlStore) -> None:
    fresh = sql_store
    clock.now = T0 + 0.5
    await fresh.ephemeral.put("par", "k", b"v", 10)
    assert await fresh.ephemeral.add_once("jti", "j", 10) is True
    clock.now = T0 + 10.5
    assert await fresh.ephemeral.get("par", "k") == b"v", "never shorter than the ttl"
    assert await fresh.ephemeral.add_once("jti", "j", 10) is False
    clock.now = T0 + 11
    assert await fresh.ephemeral.get("par", "k") is None, "at most one second longer"
    assert await fresh.ephemeral.add_once("jti", "j", 10) is True


async def test_rotate_onto_existing_hash_changes_nothing(sql_store: SqlStore) -> None:
    await sql_store.tokens.create(_token("old"))
    await sql_store.tokens.create(_token("taken"))
    with pytest.raises(AlreadyExists):
        await sql_store.tokens.rotate("old", _token("taken"), T0 + 1)
    old = await sql_store.tokens.get("old")
    assert old is not None and old.revoked_at is None and old.rotated_to is None
    assert await sql_store.tokens.rotate("old", _token("new"), T0 + 2) is True


async def test_driver_errors_become_store_errors_and_the_store_recovers(sql_store: SqlStore) -> None:
    bad = _token("bad")
    bad.kind = None  # type: ignore[assignment]
    with pytest.raises(StoreError):
        await sql_store.tokens.create(bad)
    await sql_store.tokens.create(_token("old"))
    with pytest.raises(StoreError):
        await sql_store.tokens.rotate("old", bad, T0)
    old = await sql_store.tokens.get("old")
    assert old is not None and old.rotated_to is None and old.revoked_at is None, "rolled back"
    await sql_store.tokens.create(_token("good"))
    assert await sql_store.tokens.get("good") == _token("good")


async def test_a_transaction_that_cannot_begin_fails_and_the_store_recovers(tmp_path: Path) -> None:
    """Another process holds the write lock past ``busy_timeout``: ``BEGIN IMMEDIATE`` fails with a
    ``StoreError``, nothing is written, and the store (its lock, its connection) works once the lock is free."""
    path = tmp_path / "j.db"
    store = SqlStore.open(f"sqlite:///{path}", busy_timeout_ms=50)
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    try:
        other.execute("BEGIN IMMEDIATE")
        with pytest.raises(StoreError):
            async with store.transaction() as tx:
                await tx.create_token(_token("blocked"))
        with pytest.raises(StoreError):
            await store.ephemeral.take_and_mark("code", "k", "code-used", b"x", 60)
        other.execute("COMMIT")
        async with store.transaction() as tx:
            await tx.create_token(_token("later"))
        assert await store.tokens.get("blocked") is None
        assert await store.tokens.get("later") == _token("later")
    finally:
        other.close()
        await store.close()


async def test_waits_for_another_writer(tmp_path: Path) -> None:
    """``busy_timeout``: a write blocked by another process's transaction waits instead of failing."""
    path = tmp_path / "j.db"
    store = SqlStore.open(f"sqlite:///{path}")
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    try:
        other.execute("BEGIN IMMEDIATE")
        other.execute("INSERT INTO ephemeral VALUES ('jti', 'held', x'31', ?)", (2**40,))
        release = threading.Timer(0.3, lambda: other.execute("COMMIT"))
        release.start()
        started = time.monotonic()
        assert await store.ephemeral.add_once("jti", "mine", 60) is True
        assert time.monotonic() - started >= 0.2
        assert await store.ephemeral.add_once("jti", "held", 60) is False
        release.join()
    finally:
        other.close()
        await store.close()


async def test_file_store_persists_across_reopen(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'j.db'}"
    store = SqlStore.open(url)
    rec = ClientRecord("c1", {"redirect_uris": ["https://rp.example/cb"]}, T0, T0)
    await store.clients.create(rec)
    await store.ephemeral.put("par", "k", b"v", 600)
    await store.close()
    again = SqlStore.open(url)
    try:
        assert await again.clients.get("c1") == rec
        assert await again.ephemeral.take("par", "k") == b"v"
    finally:
        await again.close()


async def test_open_store(tmp_path: Path) -> None:
    assert isinstance(open_store("memory://"), MemoryStore)
    for url in ("sqlite://", f"sqlite:///{tmp_path / 'a.db'}", f"sqlite+pysqlite:///{tmp_path / 'b.db'}"):
        store = open_store(url)
        assert isinstance(store, SqlStore)
        assert await store.ephemeral.add_once("jti", "j", 60) is True
        await store.close()
    with pytest.raises(StoreError):
        open_store("mysql://nope")


async def test_in_memory_stores_are_separate() -> None:
    a, b = SqlStore.open("sqlite://"), SqlStore.open("sqlite://")
    await a.ephemeral.put("ns", "k", b"a", 60)
    assert await b.ephemeral.get("ns", "k") is None
    await asyncio.gather(a.close(), b.close())
