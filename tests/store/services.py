"""PostgreSQL and Redis for tests: named by ``JARMOR_TEST_POSTGRES_URL`` / ``JARMOR_TEST_REDIS_URL``.

Every user gets a fresh, uniquely named PostgreSQL schema (dropped afterwards) or Redis key prefix (its keys
deleted afterwards), so runs never see each other's data. Unset variables skip the tests that need them; a
set variable whose service is down fails them.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy.engine import make_url

POSTGRES_ENV = "JARMOR_TEST_POSTGRES_URL"
REDIS_ENV = "JARMOR_TEST_REDIS_URL"


def postgres_base_url() -> str:
    url = os.environ.get(POSTGRES_ENV)
    if not url:
        pytest.skip(f"{POSTGRES_ENV} is not set (e.g. postgresql://postgres@127.0.0.1:5432/test)")
    return url


def redis_base_url() -> str:
    url = os.environ.get(REDIS_ENV)
    if not url:
        pytest.skip(f"{REDIS_ENV} is not set (e.g. redis://127.0.0.1:6379/0)")
    return url


def libpq(url: str) -> str:
    """The same URL for libpq / psycopg (no SQLAlchemy driver suffix)."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@contextmanager
def postgres_schema(migrate: bool = True) -> Iterator[str]:
    """A fresh schema; yields a ``postgresql+psycopg://`` URL whose connections use it (``search_path``)."""
    import psycopg

    base = postgres_base_url()
    name = f"jarmor_test_{secrets.token_hex(6)}"
    with psycopg.connect(libpq(base), autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{name}"')
    url = (
        make_url(base)
        .set(drivername="postgresql+psycopg")
        .update_query_dict({"options": f"-csearch_path={name}"})
        .render_as_string(hide_password=False)
    )
    try:
        if migrate:
            from jarmor.store import migrate as migrations
            from jarmor.store.sql import SqlStore

            store = SqlStore.open(url, create_tables=False)
            try:
                migrations.upgrade(store.engine)
            finally:
                store.engine.dispose()
        yield url
    finally:
        drop_schema(base, name)


# sessions of this test run that hold locks in ``name`` (e.g. a transaction a failed test left open)
_HOLDERS = """
SELECT DISTINCT l.pid FROM pg_locks l
JOIN pg_class c ON c.oid = l.relation JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = %s AND l.pid <> pg_backend_pid()
"""


def drop_schema(base: str, name: str) -> None:
    """Drop the schema; a session still holding locks in it is ended rather than waited for forever."""
    import psycopg

    with psycopg.connect(libpq(base), autocommit=True) as conn:
        conn.execute("SET lock_timeout = '5s'")
        for _attempt in range(3):
            try:
                conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
                return
            except psycopg.errors.LockNotAvailable:
                for (pid,) in conn.execute(_HOLDERS, (name,)).fetchall():
                    conn.execute("SELECT pg_terminate_backend(%s)", (pid,))
        conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


@contextmanager
def redis_prefix() -> Iterator[tuple[str, str]]:
    """A fresh key prefix; yields (Redis URL carrying it as ``key_prefix``, the prefix)."""
    import redis

    base = redis_base_url()
    prefix = f"jarmor-test-{secrets.token_hex(6)}"
    sep = "&" if "?" in base else "?"
    try:
        yield f"{base}{sep}key_prefix={prefix}", prefix
    finally:
        client = redis.Redis.from_url(base)
        try:
            keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
            for i in range(0, len(keys), 500):
                client.delete(*keys[i : i + 500])
        finally:
            client.close()
