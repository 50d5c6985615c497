"""DPoP ``jti`` replay marks (RFC 9449 §11.1): one winner among concurrent requests, in memory and across
two resource-server nodes sharing Redis."""

from __future__ import annotations

import asyncio
import os
import secrets

import pytest

from jarmor.resource import MemoryReplayStore, RedisReplayStore, ResourceError, ResourceServer

from .support import DPOP, KEY, NOW, URL, FakeVerifier, claims, proof


async def test_memory_marks_expire_and_stay_bounded() -> None:
    now = [0.0]
    store = MemoryReplayStore(max_entries=3, clock=lambda: now[0])
    assert await store.add_once("n", "a", 10) and not await store.add_once("n", "a", 10)
    now[0] = 11
    assert await store.add_once("n", "a", 10)
    for k in "bcdef":
        assert await store.add_once("n", k, 10)
    assert len(store._marks) <= 3


@pytest.mark.redis
async def test_a_proof_replayed_on_two_nodes_sharing_redis_passes_once() -> None:
    url = os.environ.get("JARMOR_TEST_REDIS_URL")
    if not url:
        if os.environ.get("JARMOR_REQUIRE_PEERS"):
            pytest.fail("JARMOR_TEST_REDIS_URL is not set")
        pytest.skip("JARMOR_TEST_REDIS_URL is not set")
    prefix = "test-rs-" + secrets.token_hex(6)
    stores = [RedisReplayStore.from_url(url, prefix=prefix) for _ in range(2)]
    verifier = FakeVerifier({DPOP: claims(cnf={"jkt": KEY.thumbprint()})})
    nodes = [ResourceServer(verifier=verifier, replay_store=s, clock=lambda: NOW) for s in stores]
    p = proof(DPOP)
    try:
        results = await asyncio.gather(
            *(nodes[i % 2].authenticate(method="GET", url=URL, authorization=f"DPoP {DPOP}", dpop=p)
              for i in range(20)),
            return_exceptions=True,
        )
    finally:
        for s in stores:
            await s.aclose()
    assert sum(not isinstance(r, BaseException) for r in results) == 1
    refused = [r for r in results if isinstance(r, BaseException)]
    assert all(isinstance(r, ResourceError) and r.error == "invalid_dpop_proof" for r in refused)
