"""Behaviour specific to the Redis ephemeral store: real-time expiry, key layout, errors, the composite."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from jarmor.store import SqlStore, StoreError, open_store
from jarmor.store.composite import CompositeStore
from jarmor.store.redis_store import RedisEphemeralStore, split_prefix

from . import services

pytestmark = pytest.mark.redis


@pytest.fixture
async def eph() -> AsyncIterator[RedisEphemeralStore]:
    with services.redis_prefix() as (url, _prefix):
        store = RedisEphemeralStore.from_url(url)
        try:
            yield store
        finally:
            await store.close()


async def test_keys_are_namespaced_under_the_prefix(eph: RedisEphemeralStore) -> None:
    await eph.put("par", "k:1\x00x", b"v", 60)
    assert await eph.client.get(f"{eph.prefix}:par:k:1\x00x".encode()) == b"v"
    assert eph.prefix.startswith("jarmor-test-")
    with pytest.raises(ValueError):
        await eph.put("a:b", "k", b"v", 60)


async def test_ttls_are_set_on_the_keys(eph: RedisEphemeralStore) -> None:
    await eph.put("par", "k", b"v", 90)
    assert await eph.add_once("jti", "j", 30) is True
    assert 85_000 < await eph.client.pttl(eph.key("par", "k")) <= 90_000
    assert 25_000 < await eph.client.pttl(eph.key("jti", "j")) <= 30_000
    assert await eph.add_once("jti", "j", 300) is False
    assert await eph.client.pttl(eph.key("jti", "j")) <= 30_000, "a replay does not extend the mark"


async def test_counters_get_their_ttl_once(eph: RedisEphemeralStore) -> None:
    assert await eph.incr("attempts", "k", 90) == 1
    assert 85_000 < await eph.client.pttl(eph.key("attempts", "k")) <= 90_000
    await eph.client.pexpire(eph.key("attempts", "k"), 40_000)
    assert await eph.incr("attempts", "k", 900) == 2
    assert await eph.client.pttl(eph.key("attempts", "k")) <= 40_000, "an increment keeps the window"
    await eph.put("attempts", "v", b"not a number", 60)
    with pytest.raises(StoreError):
        await eph.incr("attempts", "v", 60)


async def test_real_time_expiry(eph: RedisEphemeralStore) -> None:
    await eph.put("par", "k", b"v", 1)
    assert await eph.add_once("jti", "j", 1) is True
    assert await eph.add_once("jti", "zero", 0) is True, "a ttl below one second is raised to one"
    assert await eph.get("par", "k") == b"v"
    assert await eph.add_once("jti", "zero", 0) is False
    await asyncio.sleep(1.2)
    assert await eph.get("par", "k") is None
    assert await eph.take("par", "k") is None
    assert await eph.add_once("jti", "j", 1) is True, "an expired mark counts as absent"


async def test_unreachable_redis_raises_store_error() -> None:
    eph = RedisEphemeralStore.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.5)
    try:
        for op in (
            eph.get("ns", "k"), eph.take("ns", "k"), eph.add_once("ns", "k", 5), eph.put("ns", "k", b"", 5),
            eph.incr("ns", "k", 5),
        ):
            with pytest.raises(StoreError):
                await op
    finally:
        await eph.close()


def test_url_handling() -> None:
    assert split_prefix("redis://h:6379/0?key_prefix=tenant-a&ssl_cert_reqs=none") == (
        "redis://h:6379/0?ssl_cert_reqs=none",
        "tenant-a",
    )
    assert split_prefix("redis://h/1") == ("redis://h/1", None)
    assert RedisEphemeralStore.from_url("redis://h/1").prefix == "jarmor"
    assert RedisEphemeralStore.from_url("redis://h/1?key_prefix=x").prefix == "x"
    with pytest.raises(StoreError):
        RedisEphemeralStore.from_url("http://h/1")
    with pytest.raises(StoreError):
        open_store("sqlite://", "memcached://h")


async def test_open_store_with_redis_composes(tmp_path: object) -> None:
    with services.redis_prefix() as (url, prefix):
        store = open_store("sqlite://", url)
        assert isinstance(store, CompositeStore)
        assert isinstance(store.durable, SqlStore)
        assert isinstance(store.ephemeral, RedisEphemeralStore)
        await store.ephemeral.put("code", "c", b"grant", 60)
        durable_eph = store.durable.ephemeral
        assert await durable_eph.get("code", "c") is None, "ephemeral records go to Redis, not SQL"
        client = aioredis.Redis.from_url(services.redis_base_url())
        try:
            assert await client.get(f"{prefix}:code:c") == b"grant"
        finally:
            await client.aclose()
        await store.close()
