"""What every attack test asserts besides the error itself: no state change, no outbound request, bounded cost.

* ``snapshot`` / ``assert_unchanged`` — everything the in-memory store holds that a request can create,
  consume or revoke: the live keys of every ephemeral namespace (``par``, ``code``, ``code-used``,
  ``ro-jti``, ``assertion-jti``, ``interaction``), tokens (with their revocation and rotation), grants,
  clients and users. A rejected request must leave all of it exactly as it was.
* ``no_outbound`` — the server's hardened fetcher (``jwks_uri``, ``request_uri``) and name resolution
  refuse and record every attempt; the test asserts none happened.
* ``bounded`` — the catalog's BOUNDED(t, m): CPU time of this thread (where the event loop, so the whole
  in-process server, runs), ``tracemalloc`` peak, and a lax wall-clock cap that catches hangs. CPU time,
  unlike wall-clock time, does not depend on what else the (shared) machine is running.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

from jarmor.jose import testing
from jarmor.jose.testing import Cost
from jarmor.server.fetch import Fetcher, FetchError
from tests.kit import Kit

__all__ = [
    "FORM", "Outbound", "Snapshot", "assert_unchanged", "bounded", "form", "no_outbound", "raw_request", "snapshot",
]


@contextmanager
def bounded(seconds: float = 0.5, megabytes: float = 16.0, *, wall: float = 15.0) -> Iterator[Cost]:
    """``jarmor.jose.testing.bounded`` (peak traced memory, here with a lax wall-clock cap that catches hangs)
    plus a budget of ``seconds`` of CPU time of this thread."""
    cpu = time.thread_time()
    with testing.bounded(seconds=wall, megabytes=megabytes) as cost:
        yield cost
    used = time.thread_time() - cpu
    assert used <= seconds, f"used {used:.3f} s of CPU, budget {seconds} s"


@dataclass(frozen=True)
class Snapshot:
    ephemeral: dict[str, dict[str, float]]  # namespace -> live key -> expiry
    tokens: dict[str, tuple[Any, ...]]
    grants: dict[str, Any]
    clients: frozenset[str]
    users: frozenset[str]

    def namespace(self, name: str) -> frozenset[str]:
        return frozenset(self.ephemeral.get(name, {}))


def snapshot(kit: Kit) -> Snapshot:
    store: Any = kit.store
    eph: dict[str, dict[str, float]] = {}
    now = store.ephemeral._clock()
    for (ns, key), (_value, expires) in store.ephemeral._data.items():
        if expires > now:
            eph.setdefault(ns, {})[key] = expires
    return Snapshot(
        ephemeral=eph,
        tokens={h: (t.revoked_at, t.rotated_to, t.expires_at) for h, t in store.tokens._data.items()},
        grants={g: r.revoked_at for g, r in store.grants._data.items()},
        clients=frozenset(store.clients._data),
        users=frozenset(store.users._data),
    )


# Rate-limit counters (server/ratelimit.py) count every request, refused ones included: that is their job,
# not state the request achieved.
REQUEST_COUNTERS = frozenset({"rate"})


def assert_unchanged(kit: Kit, before: Snapshot, *, allow: tuple[str, ...] = ()) -> None:
    """Nothing minted, consumed, marked or revoked since ``before`` (``allow``: namespaces that may change).

    A record that reached its expiry in the meantime is not "consumed" (long Hypothesis runs outlive codes).
    """
    after = snapshot(kit)
    now = kit.store.ephemeral._clock()
    for ns in set(before.ephemeral) | set(after.ephemeral):
        if ns in allow or ns in REQUEST_COUNTERS:
            continue
        added = after.namespace(ns) - before.namespace(ns)
        removed = {k for k in before.namespace(ns) - after.namespace(ns) if before.ephemeral[ns][k] > now}
        assert not added and not removed, (
            f"ephemeral namespace {ns!r} changed: +{sorted(added)[:3]} -{sorted(removed)[:3]}"
        )
    assert after.tokens == before.tokens, "tokens were minted, revoked or rotated"
    assert after.grants == before.grants, "grants were created or revoked"
    assert after.clients == before.clients, "clients were registered or removed"
    assert after.users == before.users


@dataclass
class Outbound:
    attempts: list[str] = field(default_factory=list)


@contextmanager
def no_outbound(monkeypatch: pytest.MonkeyPatch) -> Iterator[Outbound]:
    """Record (and refuse) every outbound fetch and name resolution; assert there was none on exit."""
    seen = Outbound()

    async def refuse_get(self: Fetcher, url: str, **_: Any) -> Any:
        seen.attempts.append(url)
        raise FetchError("outbound requests are forbidden in this test", reason="forbidden_address")

    def refuse_resolve(host: Any, *args: Any, **kwargs: Any) -> Any:
        seen.attempts.append(f"dns:{host}")
        raise socket.gaierror("outbound resolution is forbidden in this test")

    monkeypatch.setattr(Fetcher, "get", refuse_get)
    monkeypatch.setattr(socket, "getaddrinfo", refuse_resolve)
    yield seen
    assert seen.attempts == [], f"outbound requests were attempted: {seen.attempts}"


async def raw_request(
    kit: Kit, method: str, path: str, *, body: bytes = b"", headers: dict[str, str] | None = None,
    query: bytes = b"",
) -> httpx.Response:
    """Call the ASGI app directly with exactly these bytes.

    Nothing is encoded on the way (httpx would re-encode a query, cap it at 64 KiB and spend more time
    encoding a large one than the server spends refusing it), so a ``bounded`` block around this call
    measures the server alone.
    """
    app = kit.http._transport.app  # type: ignore[attr-defined]
    raw_headers = [(b"host", b"127.0.0.1:8000")]
    raw_headers += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in (headers or {}).items()]
    if body and not any(k == b"content-length" for k, _ in raw_headers):
        raw_headers.append((b"content-length", str(len(body)).encode()))
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method, "scheme": "http",
        "path": path, "raw_path": path.encode(), "query_string": query, "root_path": "", "headers": raw_headers,
        "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8000),
    }
    pending = [{"type": "http.request", "body": body, "more_body": False}]
    status = 0
    out_headers: list[tuple[bytes, bytes]] = []
    chunks: list[bytes] = []

    async def receive() -> dict[str, Any]:
        return pending.pop(0) if pending else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
            out_headers.extend(message.get("headers", []))
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(scope, receive, send)
    return httpx.Response(status, headers=out_headers, content=b"".join(chunks))


def form(params: dict[str, str]) -> bytes:
    return urlencode(params).encode()


FORM = {"content-type": "application/x-www-form-urlencoded"}
