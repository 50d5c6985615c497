"""Where a resource server remembers the DPoP proofs it has accepted (RFC 9449 §11.1).

A proof's ``jti`` may be used once. The mark must be set atomically — of any number of concurrent requests
carrying the same proof, exactly one may pass — and, when the API runs on several processes or nodes, in a
store they share. ``ReplayStore`` is the one operation needed (``add_once``: set if absent, with a TTL;
jarmor's own ``EphemeralStore`` has the same signature, so an AS-side store can be passed too):

* ``MemoryReplayStore``: one process only (the default; say so in deployment notes);
* ``RedisReplayStore``: ``SET key 1 NX EX ttl`` on a shared Redis, for several workers or nodes.

Only a SHA-256 digest of (proof key thumbprint, ``jti``) is stored (§11.1: "store only a hash thereof").
"""

from __future__ import annotations

import hashlib
import heapq
import time
from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

__all__ = ["MemoryReplayStore", "RedisReplayStore", "ReplayStore", "replay_key"]

NAMESPACE = "rs-dpop-jti"


@runtime_checkable
class ReplayStore(Protocol):
    async def add_once(self, namespace: str, key: str, ttl: int) -> bool:
        """Set ``(namespace, key)`` for ``ttl`` seconds if absent; True when this call set it."""
        ...


def replay_key(jkt: str, jti: str) -> str:
    return hashlib.sha256(f"{jkt}\x00{jti}".encode()).hexdigest()


class MemoryReplayStore:
    """In-process marks with expiry; bounded (oldest marks are dropped first past ``max_entries``, which
    can only make a replay *after* that many newer proofs possible — size it above the request rate times
    the proof window). No await between the test and the set: atomic within one event loop."""

    def __init__(self, *, max_entries: int = 1_000_000, clock: Callable[[], float] = time.monotonic) -> None:
        self._marks: dict[tuple[str, str], float] = {}
        self._expiry: list[tuple[float, tuple[str, str]]] = []
        self._max = max_entries
        self._clock = clock

    async def add_once(self, namespace: str, key: str, ttl: int) -> bool:
        now = self._clock()
        item = (namespace, key)
        while self._expiry and (self._expiry[0][0] <= now or len(self._marks) >= self._max):
            expiry, old = heapq.heappop(self._expiry)
            if self._marks.get(old) == expiry:
                del self._marks[old]
        until = self._marks.get(item)
        if until is not None and until > now:
            return False
        self._marks[item] = now + ttl
        heapq.heappush(self._expiry, (now + ttl, item))
        return True


class RedisReplayStore:
    """Marks in Redis, shared by every node: ``SET prefix:namespace:key 1 NX EX ttl`` is atomic."""

    def __init__(self, redis: Any, *, prefix: str = "jarmor-rs") -> None:
        self._redis = redis
        self._prefix = prefix

    @classmethod
    def from_url(cls, url: str, *, prefix: str = "jarmor-rs") -> RedisReplayStore:
        import redis.asyncio as aioredis  # optional dependency: jarmor[redis]

        return cls(aioredis.Redis.from_url(url), prefix=prefix)

    async def add_once(self, namespace: str, key: str, ttl: int) -> bool:
        return bool(await self._redis.set(f"{self._prefix}:{namespace}:{key}", b"1", nx=True, ex=max(1, ttl)))

    async def aclose(self) -> None:
        await self._redis.aclose()
