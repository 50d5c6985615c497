"""The hardened fetcher (server/fetch.py): every refusal, with its reason, in bounded time.

A local origin (tests/server/origin.py) produces the slow, silent, huge, redirecting and mistyped answers;
addresses that must never be contacted are refused before any connection is attempted.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from jarmor.protocol.addresses import address_allowed
from jarmor.server.fetch import Fetcher, FetchError, FetchLimits, TtlCache
from tests.server.origin import Origin, make_pki, run_origin

JSON = ("application/json",)
LIMITS = FetchLimits(
    total_timeout=1.5, connect_timeout=1.0, read_timeout=1.0, max_bytes=4096, allow_loopback=True
)


@pytest.fixture
def origin() -> Iterator[Origin]:
    with run_origin() as o:
        yield o


@pytest.fixture
def fetcher() -> Fetcher:
    return Fetcher(LIMITS)


async def refused(
    fetcher: Fetcher, url: str, reason: str, *, accept: tuple[str, ...] = JSON, within: float | None = None
) -> FetchError:
    started = time.monotonic()
    with pytest.raises(FetchError) as info:
        await fetcher.get(url, accept=accept)
    elapsed = time.monotonic() - started
    assert info.value.reason == reason, f"{info.value.reason}: {info.value}"
    bound = within if within is not None else fetcher.limits.total_timeout + 0.5
    assert elapsed < bound, f"took {elapsed:.2f} s"
    return info.value


async def test_fetches_a_document(fetcher: Fetcher, origin: Origin) -> None:
    url = origin.put("/doc", b'{"keys": []}', "application/json; charset=utf-8")
    doc = await fetcher.get(url, accept=JSON)
    assert doc.body == b'{"keys": []}'
    assert doc.content_type == "application/json"
    assert doc.address == "127.0.0.1"
    assert origin.hosts[-1] == f"127.0.0.1:{origin.port}"


# --- slow and silent servers: the total deadline always wins ------------------------------------------


async def test_silent_server_times_out(fetcher: Fetcher, origin: Origin) -> None:
    await refused(fetcher, origin.base + "/silent", "timeout")


async def test_dripping_body_hits_the_total_deadline(fetcher: Fetcher, origin: Origin) -> None:
    """Each read arrives within read_timeout, so only the total deadline can stop it (slow-loris)."""
    started = time.monotonic()
    await refused(fetcher, origin.base + "/drip", "timeout")
    assert time.monotonic() - started >= LIMITS.total_timeout - 0.2


async def test_connect_timeout_is_bounded_by_the_deadline(monkeypatch: Any) -> None:
    """A connection that never completes (a black-holed address) ends at the total deadline."""
    import httpcore

    async def hang(*args: Any, **kwargs: Any) -> Any:
        await asyncio.sleep(30)

    monkeypatch.setattr(httpcore.AnyIOBackend, "connect_tcp", hang)
    f = Fetcher(FetchLimits(total_timeout=1.0, connect_timeout=5.0), resolver=_fixed("93.184.216.34"))
    await refused(f, "https://blackhole.example/x", "timeout")


# --- size -----------------------------------------------------------------------------------------------


async def test_declared_oversize_refused_before_reading(fetcher: Fetcher, origin: Origin) -> None:
    await refused(fetcher, origin.base + "/huge-declared", "too_large", within=1.0)


async def test_undeclared_oversize_stops_streaming(fetcher: Fetcher, origin: Origin) -> None:
    await refused(fetcher, origin.base + "/huge-chunked", "too_large", within=1.0)


async def test_exact_limit_is_accepted(fetcher: Fetcher, origin: Origin) -> None:
    url = origin.put("/limit", b"x" * LIMITS.max_bytes, "application/json")
    assert len((await fetcher.get(url, accept=JSON)).body) == LIMITS.max_bytes
    url = origin.put("/over", b"x" * (LIMITS.max_bytes + 1), "application/json")
    await refused(fetcher, url, "too_large")


# --- redirects, status, content type, content coding ---------------------------------------------------


@pytest.mark.parametrize("target", ["/jwks", "http://169.254.169.254/latest/meta-data/"])
async def test_redirects_are_not_followed(fetcher: Fetcher, origin: Origin, target: str) -> None:
    origin.put("/jwks", b"{}", "application/json")
    await refused(fetcher, origin.base + "/redirect" + target, "redirect")
    assert origin.hits["/jwks"] == 0


async def test_error_status(fetcher: Fetcher, origin: Origin) -> None:
    await refused(fetcher, origin.base + "/error", "status")
    await refused(fetcher, origin.base + "/missing", "status")


@pytest.mark.parametrize("ctype", ["text/html", "application/jwt", "", "application/json-seq"])
async def test_wrong_content_type(fetcher: Fetcher, origin: Origin, ctype: str) -> None:
    url = origin.put("/typed", b"{}", ctype)
    await refused(fetcher, url, "content_type")


async def test_content_coding_refused(fetcher: Fetcher, origin: Origin) -> None:
    await refused(fetcher, origin.base + "/gzip", "content_encoding")


# --- URL and address rules ------------------------------------------------------------------------------

NOT_LOOPBACK = FetchLimits(total_timeout=1.0, allow_loopback=False)


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://client.example/jwks", "scheme"),
        ("ftp://client.example/jwks", "scheme"),
        ("file:///etc/passwd", "bad_url"),
        ("https://user:pw@client.example/jwks", "bad_url"),
        ("https:///jwks", "bad_url"),
        ("https://client.example:99999/", "bad_url"),
        ("https://client.example:0/", "bad_url"),
        ("https://clïent.example/", "bad_url"),
        ("https://client.example/" + "a" * 3000, "bad_url"),
    ],
)
async def test_url_rules(url: str, reason: str) -> None:
    await refused(Fetcher(NOT_LOOPBACK, resolver=_never), url, reason, within=0.2)


@pytest.mark.parametrize(
    "host",
    [
        "10.0.0.1",
        "172.16.5.4",
        "192.168.1.1",
        "169.254.169.254",
        "127.0.0.1",
        "[::1]",
        "0.0.0.0",
        "100.64.0.1",
        "224.0.0.1",
        "255.255.255.255",
        "[fe80::1]",
        "[fc00::1]",
        "[::ffff:10.0.0.1]",
        "[::ffff:127.0.0.1]",
        "[2002:a00:1::1]",
        "[64:ff9b::a9fe:a9fe]",
        "[ff02::1]",
        "[::]",
        "192.0.2.1",
        "2130706433",
    ],
)
async def test_non_public_addresses_refused(host: str) -> None:
    """SSRF (A34): never contact a private, loopback, link-local, multicast or reserved address."""
    f = Fetcher(NOT_LOOPBACK)
    await refused(f, f"https://{host}/latest/meta-data/", "forbidden_address", within=0.5)


@pytest.mark.parametrize("host", ["10.0.0.1", "169.254.169.254", "[fd00::1]", "192.168.0.10"])
async def test_private_addresses_refused_even_for_a_loopback_issuer(host: str) -> None:
    await refused(Fetcher(LIMITS), f"https://{host}/x", "forbidden_address", within=0.5)


async def test_http_loopback_refused_when_issuer_not_loopback(origin: Origin) -> None:
    await refused(Fetcher(NOT_LOOPBACK), origin.base + "/x", "scheme", within=0.2)
    assert origin.hits.total() == 0


async def test_localhost_name_refused_when_issuer_not_loopback() -> None:
    await refused(Fetcher(NOT_LOOPBACK), "https://localhost/x", "forbidden_address", within=1.0)


async def test_every_resolved_address_must_be_public() -> None:
    """One private answer among public ones refuses the whole name (no "pick the good one")."""
    f = Fetcher(NOT_LOOPBACK, resolver=_fixed("93.184.216.34", "10.1.2.3"))
    err = await refused(f, "https://mixed.example/jwks", "forbidden_address", within=0.5)
    assert "10.1.2.3" in str(err)


async def test_unresolvable_name() -> None:
    async def fail(host: str, port: int) -> list[str]:
        raise FetchError("nope", reason="dns")

    await refused(Fetcher(NOT_LOOPBACK, resolver=fail), "https://nowhere.example/", "dns", within=0.5)


async def test_slow_resolver_is_bounded_by_the_deadline() -> None:
    async def stall(host: str, port: int) -> list[str]:
        await asyncio.sleep(30)
        return []

    await refused(Fetcher(NOT_LOOPBACK, resolver=stall), "https://stall.example/", "timeout")


def test_address_classification() -> None:
    assert address_allowed(ipaddress.ip_address("93.184.216.34"))
    assert address_allowed(ipaddress.ip_address("2606:2800:220:1:248:1893:25c8:1946"))
    assert not address_allowed(ipaddress.ip_address("127.0.0.1"))
    assert address_allowed(ipaddress.ip_address("127.0.0.1"), allow_loopback=True)
    assert address_allowed(ipaddress.ip_address("::1"), allow_loopback=True)
    assert not address_allowed(ipaddress.ip_address("::ffff:169.254.169.254"), allow_loopback=True)
    assert not address_allowed(ipaddress.ip_address("2001:db8::1"))


# --- TLS and DNS pinning ---------------------------------------------------------------------------------


def _fixed(*addresses: str) -> Any:
    calls: list[str] = []

    async def resolve(host: str, port: int) -> list[str]:
        calls.append(host)
        return list(addresses)

    resolve.calls = calls  # type: ignore[attr-defined]
    return resolve


async def _never(host: str, port: int) -> list[str]:
    raise AssertionError("no resolution expected")


async def test_connects_to_the_checked_address_with_name_based_tls(tmp_path: Path, monkeypatch: Any) -> None:
    """DNS rebinding: the name is resolved once, by the fetcher; the connection goes to that checked IP.

    ``jwks.example`` does not resolve anywhere, so the fetch can only succeed if no second lookup happens;
    TLS still verifies the certificate for the *name* (SNI and Host carry it), not for the IP.
    """
    pki = make_pki(tmp_path, "jwks.example")
    real = socket.getaddrinfo

    def guard(host: Any, *a: Any, **kw: Any) -> Any:
        assert host != "jwks.example", "the name must not be resolved again after the check"
        return real(host, *a, **kw)

    monkeypatch.setattr(socket, "getaddrinfo", guard)
    with run_origin(pki.server, host_name="jwks.example") as o:
        o.put("/jwks", b'{"keys": []}', "application/jwk-set+json")
        resolver = _fixed("127.0.0.1")
        f = Fetcher(LIMITS, resolver=resolver, ssl_context=pki.client_context())
        doc = await f.get(o.base + "/jwks", accept=("application/jwk-set+json",))
        assert doc.body == b'{"keys": []}' and doc.address == "127.0.0.1"
        assert resolver.calls == ["jwks.example"]
        assert o.sni == ["jwks.example"]
        assert o.hosts == [f"jwks.example:{o.port}"]


async def test_certificate_for_another_name_is_refused(tmp_path: Path) -> None:
    pki = make_pki(tmp_path, "other.example")
    with run_origin(pki.server, host_name="jwks.example") as o:
        o.put("/jwks", b"{}", "application/json")
        f = Fetcher(LIMITS, resolver=_fixed("127.0.0.1"), ssl_context=pki.client_context())
        await refused(f, o.base + "/jwks", "tls")
        assert o.hits.total() == 0


async def test_untrusted_certificate_is_refused(tmp_path: Path) -> None:
    pki = make_pki(tmp_path, "jwks.example")
    with run_origin(pki.server, host_name="jwks.example") as o:
        o.put("/jwks", b"{}", "application/json")
        f = Fetcher(LIMITS, resolver=_fixed("127.0.0.1"))  # system trust store: the test CA is unknown
        await refused(f, o.base + "/jwks", "tls")


async def test_tries_the_next_checked_address_when_one_refuses(origin: Origin) -> None:
    origin.put("/jwks", b"{}", "application/json")
    # the origin listens on 127.0.0.1 only: 127.0.0.2 refuses the connection
    f = Fetcher(LIMITS, resolver=_fixed("127.0.0.2", "127.0.0.1"))
    doc = await f.get(f"http://localhost:{origin.port}/jwks", accept=JSON)
    assert doc.address == "127.0.0.1"


# --- cache ----------------------------------------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_cache_ttl_and_rate_limited_refresh() -> None:
    clock = FakeClock()
    cache: TtlCache[str, int] = TtlCache(ttl=300, refetch_interval=30, clock=clock)
    loads = 0

    async def load() -> int:
        nonlocal loads
        loads += 1
        return loads

    assert await cache.get("k", load) == 1
    assert await cache.get("k", load) == 1  # fresh
    assert await cache.get("k", load, refresh=True) == 2  # a forced refresh is allowed at once
    assert await cache.get("k", load, refresh=True) == 2  # then suppressed within refetch_interval
    clock.now += 29
    assert await cache.get("k", load, refresh=True) == 2
    clock.now += 2
    assert await cache.get("k", load, refresh=True) == 3  # allowed again
    clock.now += 301
    assert await cache.get("k", load) == 4  # expired


async def test_cache_single_flight() -> None:
    cache: TtlCache[str, int] = TtlCache(ttl=300, refetch_interval=30, clock=FakeClock())
    loads = 0

    async def load() -> int:
        nonlocal loads
        loads += 1
        await asyncio.sleep(0.05)
        return loads

    results = await asyncio.gather(*(cache.get("k", load) for _ in range(20)))
    assert results == [1] * 20 and loads == 1


async def test_cache_failure_keeps_last_good_value_and_backs_off() -> None:
    clock = FakeClock()
    cache: TtlCache[str, str] = TtlCache(ttl=10, refetch_interval=30, clock=clock)
    attempts = 0

    async def good() -> str:
        return "v1"

    async def bad() -> str:
        nonlocal attempts
        attempts += 1
        raise FetchError("down", reason="connect")

    assert await cache.get("k", good) == "v1"
    clock.now += 11
    assert await cache.get("k", bad) == "v1"  # stale but served
    assert await cache.get("k", bad) == "v1"
    assert await cache.get("k", bad, refresh=True) == "v1"
    assert attempts == 1  # failures are not retried within refetch_interval
    with pytest.raises(FetchError):
        await cache.get("other", bad)
    with pytest.raises(FetchError):
        await cache.get("other", bad)  # remembered: no second attempt
    assert attempts == 2
