"""Behaviour specific to PostgreSQL: URLs, the schema check, errors, concurrency on one pool."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from jarmor.store import SchemaNotCurrent, SqlStore, StoreError, TokenRecord, open_store, schema
from jarmor.store.sql.postgres import PostgresDb, psycopg_url

from . import services
from .conftest import T0

pytestmark = pytest.mark.postgres


def test_psycopg_url() -> None:
    for url in (
        "postgresql://u:p@h/db",
        "postgres://u:p@h/db",
        "postgresql+psycopg://u:p@h/db",
        "postgresql+psycopg_async://u:p@h/db",
    ):
        assert psycopg_url(make_url(url)).render_as_string(hide_password=False) == "postgresql+psycopg://u:p@h/db"
    for url in ("postgresql+psycopg2://h/db", "postgresql+asyncpg://h/db"):
        with pytest.raises(StoreError, match="postgresql\\+psycopg"):
            psycopg_url(make_url(url))


async def test_refuses_a_database_without_the_schema() -> None:
    with services.postgres_schema(migrate=False) as url:
        with pytest.raises(SchemaNotCurrent, match="jarmor db upgrade --database postgresql"):
            open_store(url)
        # explicitly asked to: migrate on open (embedding, tests)
        store = SqlStore.open(url, create_tables=True)
        await store.close()
        store = SqlStore.open(url.replace("postgresql+psycopg", "postgresql"))
        assert isinstance(store._db, PostgresDb)
        await store.close()


async def test_refuses_an_older_schema() -> None:
    with services.postgres_schema() as url:
        store = SqlStore.open(url)
        with store.engine.begin() as conn:
            conn.exec_driver_sql("UPDATE alembic_version SET version_num = '0000'")
        await store.close()
        with pytest.raises(SchemaNotCurrent, match="schema revision 0000"):
            open_store(url)


def test_unreachable_database_raises_store_error() -> None:
    with pytest.raises(StoreError, match="cannot open the database"):
        open_store("postgresql://postgres@127.0.0.1:1/test?connect_timeout=2")


async def test_one_store_many_tasks(postgres_session: str) -> None:
    """More concurrent operations than pooled connections: they queue for a connection, none fails."""
    store = SqlStore.open(postgres_session, pool_size=4)
    try:
        await asyncio.gather(*(store.ephemeral.put("code", f"k{i}", b"v", 60) for i in range(200)))
        taken = await asyncio.gather(*(store.ephemeral.take("code", f"k{i % 200}") for i in range(400)))
        assert taken.count(b"v") == 200
        await asyncio.gather(
            *(store.tokens.create(TokenRecord(f"t{i}", "access_token", "c", None, "", None, T0, T0 + 1)) for i in range(100))
        )
        with store.engine.connect() as conn:
            assert conn.execute(select(func.count()).select_from(schema.tokens)).scalar_one() >= 100
    finally:
        await store.close()


async def test_close_without_use_and_twice(postgres_session: str) -> None:
    store = SqlStore.open(postgres_session)
    await store.close()
    store = SqlStore.open(postgres_session)
    assert await store.clients.count() >= 0
    await store.close()


async def test_statements_carrying_their_own_values(postgres_session: str) -> None:
    """Literals in a statement (``.values(x=None)``, ``.limit(2)``) are bound parameters with a value: the
    executor supplies them alongside the caller's."""
    from sqlalchemy import bindparam, insert, update

    store = SqlStore.open(postgres_session)
    db = store._db
    t = schema.users
    try:
        ins = insert(t).values(username=bindparam("u"), password_hash="fixed", created_at=1, disabled=False)
        for name in ("x1", "x2", "x3"):
            assert await db.write(ins, {"u": name}) == 1
        assert await db.write(update(t).where(t.c.username == bindparam("u")).values(disabled=True), {"u": "x1"}) == 1
        rows = await db.all(select(t.c.username, t.c.disabled).where(t.c.username.like("x%")).order_by(t.c.username).limit(2), {})
        assert [tuple(r) for r in rows] == [("x1", True), ("x2", False)]
        with pytest.raises(StoreError, match="expanding"):
            await db.all(select(t.c.username).where(t.c.username.in_(bindparam("names", expanding=True))), {"names": ["x1"]})
    finally:
        await store.close()
