"""Worker for the cross-process race: runs in a freshly spawned interpreter, opens its own store."""

from __future__ import annotations

import asyncio
from typing import Any

from jarmor.store import TokenRecord, open_store

T0 = 1_700_000_000


def keys(n: int) -> list[str]:
    return [f"k{i:04d}" for i in range(n)]


def refresh_token(token_hash: str) -> TokenRecord:
    return TokenRecord(token_hash, "refresh_token", "c1", "alice", "openid", "g1", T0, T0 + 3600)


async def _race(url: str, redis_url: str | None, worker: int, n: int, barrier: Any) -> dict[str, Any]:
    # every worker opens the (possibly fresh) file at the same moment: table creation must not race
    barrier.wait()
    store = open_store(url, redis_url)
    try:
        barrier.wait()
        if worker == 0:
            for k in keys(n):
                await store.ephemeral.put("code", k, k.encode(), 600)
                await store.ephemeral.put("code2", k, k.encode(), 600)
                await store.tokens.create(refresh_token(f"old-{k}"))
        barrier.wait()
        took, added, rotated, marked = [], [], [], []
        counted: dict[str, list[int]] = {}
        for k in keys(n):
            barrier.wait()  # every key is raced for by all workers at the same moment
            value = await store.ephemeral.take("code", k)
            if value is not None:
                assert value == k.encode()
                took.append(k)
            if await store.ephemeral.take_and_mark("code2", k, "code-used", f"w{worker}".encode(), 600) is not None:
                marked.append(k)
            if await store.ephemeral.add_once("jti", k, 600):
                added.append(k)
            if await store.tokens.rotate(f"old-{k}", refresh_token(f"new-{k}-{worker}"), T0 + 1):
                rotated.append(k)
            counted[k] = [await store.ephemeral.incr("attempts", k, 600) for _ in range(2)]
        return {"took": took, "added": added, "rotated": rotated, "marked": marked, "counted": counted}
    finally:
        await store.close()


def run(url: str, redis_url: str | None, worker: int, n: int, barrier: Any, results: Any) -> None:
    try:
        results.put((worker, asyncio.run(_race(url, redis_url, worker, n, barrier))))
    except BaseException as exc:
        barrier.abort()
        results.put((worker, {"error": [repr(exc)]}))
        raise
