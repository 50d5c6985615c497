"""``EphemeralStore`` on Redis: the short-lived single-use records shared by every node.

Each operation is one Redis command, atomic on the server, so single use holds across any number of nodes:

* ``put``: ``SET key value EX ttl``;
* ``get``: ``GET``;
* ``take``: ``GETDEL`` (Redis >= 6.2) — of any number of concurrent callers exactly one gets the value;
* ``add_once``: ``SET key 1 NX EX ttl`` — exactly one caller sets the mark, a replay finds it;
* ``incr``: ``SET key 0 NX EX ttl`` then ``INCRBY key by`` in one ``MULTI``/``EXEC`` transaction — the
  counter gets its expiry when it is created, and Redis runs each increment whole, so concurrent callers see
  distinct counts (an increment keeps the key's expiry: a fixed window);
* ``delete``: ``DEL``;
* ``take_and_mark``: ``GETDEL`` and, when it got the value, ``SET mark value EX ttl`` in one Lua script
  (``EVALSHA``: Redis runs a script whole, so no client sees the record gone without its mark).

Keys are ``<prefix>:<namespace>:<key>`` (prefix ``jarmor`` unless the URL says ``?key_prefix=...``, so that
several deployments can share one Redis); a namespace never contains ``:``, so keys never collide.

Expiry is Redis's own (wall clock, millisecond precision): a store-level fake clock does not apply here.
A ``ttl`` below one second is raised to one. What lives here is lost if Redis loses its data (a restart
without persistence): pending authorizations and unredeemed codes fail closed (the user starts again), but
forgotten ``jti`` replay marks would reopen a replay window for assertions still within their lifetime —
run Redis with persistence (AOF) if that matters to you.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from .base import StoreError, StoreUnavailable

DEFAULT_PREFIX = "jarmor"
DEFAULT_TIMEOUT = 5.0
SCHEMES = ("redis", "rediss", "unix")


def split_prefix(url: str) -> tuple[str, str | None]:
    """Remove jarmor's own ``key_prefix`` query parameter from a Redis URL: (url for redis-py, prefix)."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    prefix = None
    kept = []
    for name, value in query:
        if name == "key_prefix":
            prefix = value
        else:
            kept.append((name, value))
    return urlunsplit(parts._replace(query=urlencode(kept))), prefix


def _failure(exc: RedisError) -> StoreError:
    """Redis unreachable (refused, dropped, timed out) is transient: ``StoreUnavailable``; anything else (a
    wrong type, an authentication failure, a command error) is a plain ``StoreError``."""
    if isinstance(exc, RedisConnectionError | RedisTimeoutError):
        return StoreUnavailable(f"Redis is unreachable: {exc}")
    return StoreError(str(exc))


def _bytes(value: bytes | str | None) -> bytes | None:
    # the client is made without ``decode_responses``: values come back as they were stored
    return value.encode() if isinstance(value, str) else value


# KEYS[1]: the record, KEYS[2]: its mark; ARGV: the mark's value and ttl (seconds)
_TAKE_AND_MARK = """
local value = redis.call('GETDEL', KEYS[1])
if value then
  redis.call('SET', KEYS[2], ARGV[1], 'EX', ARGV[2])
end
return value
"""


class RedisEphemeralStore:
    def __init__(self, client: aioredis.Redis, *, prefix: str = DEFAULT_PREFIX) -> None:
        if not prefix:
            raise ValueError("the key prefix must not be empty")
        self.client = client
        self.prefix = prefix
        self._take_and_mark = client.register_script(_TAKE_AND_MARK)

    @classmethod
    def from_url(cls, url: str, *, prefix: str | None = None, **options: Any) -> RedisEphemeralStore:
        """``redis://[user:password@]host:6379/0``, ``rediss://...`` (TLS) or ``unix:///path?db=0``.

        Connections are made lazily, in the event loop that first uses the store. Socket timeouts default
        to five seconds, so an unreachable Redis fails requests instead of hanging them.
        """
        scheme = url.partition(":")[0].lower()
        if scheme not in SCHEMES:
            raise StoreError(f"unsupported Redis URL scheme {scheme!r}")
        url, url_prefix = split_prefix(url)
        options.setdefault("socket_timeout", DEFAULT_TIMEOUT)
        options.setdefault("socket_connect_timeout", DEFAULT_TIMEOUT)
        try:
            client = aioredis.Redis.from_url(url, **options)
        except (ValueError, RedisError) as exc:
            raise StoreError(f"invalid Redis URL: {exc}") from exc
        return cls(client, prefix=prefix or url_prefix or DEFAULT_PREFIX)

    def key(self, namespace: str, key: str) -> bytes:
        if ":" in namespace:
            raise ValueError(f"namespace {namespace!r} must not contain ':'")
        return f"{self.prefix}:{namespace}:{key}".encode()

    async def put(self, namespace: str, key: str, value: bytes, ttl: int) -> None:
        try:
            await self.client.set(self.key(namespace, key), value, ex=max(1, ttl))
        except RedisError as exc:
            raise _failure(exc) from exc

    async def get(self, namespace: str, key: str) -> bytes | None:
        try:
            value = await self.client.get(self.key(namespace, key))
        except RedisError as exc:
            raise _failure(exc) from exc
        return _bytes(value)

    async def take(self, namespace: str, key: str) -> bytes | None:
        try:
            value = await self.client.getdel(self.key(namespace, key))
        except RedisError as exc:
            raise _failure(exc) from exc
        return _bytes(value)

    async def add_once(self, namespace: str, key: str, ttl: int) -> bool:
        try:
            added = await self.client.set(self.key(namespace, key), b"1", nx=True, ex=max(1, ttl))
        except RedisError as exc:
            raise _failure(exc) from exc
        return bool(added)

    async def incr(self, namespace: str, key: str, ttl: int, *, by: int = 1) -> int:
        name = self.key(namespace, key)
        try:
            async with self.client.pipeline(transaction=True) as pipe:
                pipe.set(name, b"0", nx=True, ex=max(1, ttl))
                pipe.incrby(name, by)
                _created, count = await pipe.execute()
        except RedisError as exc:
            raise _failure(exc) from exc
        return int(count)

    async def delete(self, namespace: str, key: str) -> None:
        try:
            await self.client.delete(self.key(namespace, key))
        except RedisError as exc:
            raise _failure(exc) from exc

    async def take_and_mark(self, namespace: str, key: str, mark: str, value: bytes, ttl: int) -> bytes | None:
        try:
            taken = await self._take_and_mark(keys=[self.key(namespace, key), self.key(mark, key)],
                                              args=[value, max(1, ttl)])
        except RedisError as exc:
            raise _failure(exc) from exc
        return _bytes(taken)

    async def ping(self) -> None:
        """One round trip (``PING``): ``StoreUnavailable`` if Redis cannot be reached (checked before serving)."""
        try:
            await self.client.ping()
        except RedisError as exc:
            raise _failure(exc) from exc

    async def probe(self) -> str | None:
        """``None`` when Redis answers PING, else what went wrong (readiness, ``Store.health``)."""
        try:
            await self.client.ping()
        except (RedisError, OSError) as exc:
            return f"Redis does not answer: {type(exc).__name__}"
        return None

    async def close(self) -> None:
        await self.client.aclose()
