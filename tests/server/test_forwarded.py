"""RFC 7239 ``Forwarded``: the grammar (RFC 7239 §4, §6), the right-most untrusted hop (§8.1), trust only in
``trusted_proxies``, and the one-header precedence (``forwarded_header``) — through the rate limits it feeds."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import httpx
import pytest
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from jarmor.config import ConfigError, ServerConfig
from jarmor.protocol.addresses import TrustedProxies
from jarmor.protocol.context import Settings
from jarmor.server.app import create_app
from jarmor.server.forwarded import (
    ForwardedMiddleware,
    Node,
    forwarded_client,
    parse_forwarded,
    parse_node,
)
from jarmor.store.memory import MemoryStore
from tests.kit import ISSUER, Kit, TestClient

from .conftest import KitFactory


def test_elements_pairs_and_quoted_strings() -> None:
    value = 'for=192.0.2.60;proto=http;by=203.0.113.43, For="[2001:db8:cafe::17]:4711";HOST="a,b;c=\\"d\\""'
    assert parse_forwarded(value) == [
        {"for": "192.0.2.60", "proto": "http", "by": "203.0.113.43"},
        {"for": "[2001:db8:cafe::17]:4711", "host": 'a,b;c="d"'},
    ]
    assert parse_forwarded("for=_hidden, , for=unknown ; ") == [{"for": "_hidden"}, {"for": "unknown"}]


@pytest.mark.parametrize("value", [
    'for="192.0.2.1',  # unterminated quoted-string
    "for=192.0.2.1;for=192.0.2.2",  # a parameter twice in one element (§4)
    "for =192.0.2.1",  # no whitespace around "="
    "for=[2001:db8::1]",  # "[" is no tchar: IPv6 must be quoted
    "for=192.0.2.1 proto=http",
    "=192.0.2.1",
    "for=",
    'for="a\x00b"',
    'for="a\\\x01"',
    "for=1.2.3.4" + ", for=1.2.3.4" * 64,  # more than MAX_ELEMENTS
    "for=" + "a" * 9000,  # more than MAX_HEADER
])
def test_malformed_or_oversized_values_are_refused(value: str) -> None:
    assert parse_forwarded(value) is None


@pytest.mark.parametrize(("value", "node"), [
    ("192.0.2.43", Node("ip", "192.0.2.43")),
    ("192.0.2.43:47011", Node("ip", "192.0.2.43", 47011)),
    ("[2001:DB8::1]:80", Node("ip", "2001:db8::1", 80)),
    ("[2001:db8::1]", Node("ip", "2001:db8::1")),
    ("unknown", Node("unknown", "unknown")),
    ("UNKNOWN:_port", Node("unknown", "unknown")),
    ("_SEVKISEK", Node("obfuscated", "_SEVKISEK")),
    ("_a.b-c_d:4711", Node("obfuscated", "_a.b-c_d", 4711)),
])
def test_nodes(value: str, node: Node) -> None:
    assert parse_node(value) == node


@pytest.mark.parametrize("value", [
    "2001:db8::1", "[2001:db8::1", "[fe80::1%eth0]", "[192.0.2.1]", "192.0.2.1:99999", "192.0.2.1:",
    "192.0.2.01", "example.com", "_", "_a b", "[2001:db8::1]x", "192.0.2.1:80:80", "", None, "1" * 200,
])
def test_malformed_nodes(value: str | None) -> None:
    assert parse_node(value) is None


TRUSTED = TrustedProxies(["10.0.0.0/8", "2001:db8:ff::/48"])


@pytest.mark.parametrize(("values", "client", "scheme"), [
    (["for=203.0.113.9"], ("203.0.113.9", 0), None),
    (["for=198.51.100.1, for=203.0.113.9;proto=https, for=10.0.0.2"], ("203.0.113.9", 0), "https"),
    (["for=198.51.100.1", 'for="203.0.113.9:1234"', 'for="[2001:db8:ff::2]"'], ("203.0.113.9", 1234), None),
    (["for=203.0.113.9:1234"], None, None),  # ":" is no tchar: a port must be quoted
    (["for=10.0.0.3, for=10.0.0.2"], ("10.0.0.3", 0), None),  # every hop trusted: the left-most
    (["for=_hidden;proto=HTTPS, for=10.0.0.2"], ("_hidden", 0), "https"),
    (["for=unknown;proto=http"], None, "http"),  # §6.2: the TCP peer stays the address
    (["for=203.0.113.9;proto=gopher"], ("203.0.113.9", 0), None),
    (['for="garbage, for=203.0.113.9'], None, None),  # malformed header: nothing changes
    (["proto=https, for=203.0.113.9"], ("203.0.113.9", 0), None),  # the walk stops at the client first
    (["for=203.0.113.9, proto=https"], None, None),  # an element without for= is reached first
    (["for=203.0.113.9, for=10.0.0.2:bad"], None, None),
    ([], None, None),
])
def test_the_right_most_untrusted_hop(values: list[str], client: tuple[str, int] | None, scheme: str | None) -> None:
    assert forwarded_client(values, TRUSTED) == (client, scheme)


async def par(kit: Kit, client: TestClient, http: httpx.AsyncClient, headers: dict[str, str]) -> httpx.Response:
    ro, _ = client.request_object()
    return await http.post(
        "/par", data={**client.auth_form(), "request": ro, "client_id": client.client_id}, headers=headers
    )


async def statuses(kit: Kit, app: Any, headers: list[dict[str, str]]) -> list[int]:
    client = await kit.add_client()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=ISSUER) as http:
        return [(await par(kit, client, http, h)).status_code for h in headers]


def settings(per_address: int) -> Settings:
    return replace(Settings(), rate_limit_window=3600, rate_limit_per_address=per_address)


async def test_forwarded_addresses_count_only_from_trusted_proxies(make: KitFactory) -> None:
    kit = await make(settings=settings(per_address=2))
    app: Any = kit.http._transport.app  # type: ignore[attr-defined]
    three = [{"Forwarded": f'for="203.0.113.{n}:1";proto=https, for=127.0.0.1'} for n in range(3)]
    assert await statuses(kit, ForwardedMiddleware(app, ["127.0.0.0/8"]), three) == [201, 201, 201]
    seen = await statuses(kit, ForwardedMiddleware(app, ["10.0.0.0/8"]), three)  # the peer is not trusted
    assert seen[:2] == [201, 201] and seen[2] == 429


async def test_a_client_cannot_pick_its_address_by_prepending_hops(make: KitFactory) -> None:
    kit = await make(settings=settings(per_address=2))
    app: Any = kit.http._transport.app  # type: ignore[attr-defined]
    forged = [{"Forwarded": f"for=198.51.100.{n}, for=203.0.113.7"} for n in range(3)]
    seen = await statuses(kit, ForwardedMiddleware(app, ["127.0.0.1"]), forged)
    assert seen == [201, 201, 429]  # one client address (the hop the proxy added), whatever it prepends


async def test_only_the_configured_header_is_believed(make: KitFactory) -> None:
    """Precedence: both headers present, only ``forwarded_header`` counts — the other is client-controlled
    behind a proxy that does not manage it."""
    kit = await make(settings=settings(per_address=2))
    app: Any = kit.http._transport.app  # type: ignore[attr-defined]
    both = [{"Forwarded": "for=203.0.113.5", "X-Forwarded-For": f"198.51.100.{n}"} for n in range(3)]
    assert await statuses(kit, ForwardedMiddleware(app, ["127.0.0.1"]), both) == [201, 201, 429]
    both = [{"Forwarded": f"for=198.51.100.{n}", "X-Forwarded-For": "203.0.113.6"} for n in range(3)]
    assert await statuses(kit, ProxyHeadersMiddleware(app, ["127.0.0.1"]), both) == [201, 201, 429]


@pytest.mark.parametrize(("header", "reader"), [("forwarded", ForwardedMiddleware),
                                                ("x-forwarded-for", ProxyHeadersMiddleware)])
def test_the_app_reads_the_configured_header(header: str, reader: type) -> None:
    config = ServerConfig(issuer=ISSUER, trusted_proxies=("10.0.0.0/8",), forwarded_header=header).validate()
    app = create_app(config, MemoryStore())
    readers = [m.cls for m in app.user_middleware if m.cls in (ForwardedMiddleware, ProxyHeadersMiddleware)]
    assert readers == [reader]  # exactly one proxy-header reader, the configured one
    with pytest.raises(ConfigError, match="forwarded_header must be"):
        replace(config, forwarded_header="Forwarded").validate()
