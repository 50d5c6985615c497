"""Hostile ``Forwarded`` headers (RFC 7239) from a trusted proxy: never a 500, never anything but the TCP peer
or a well-formed address as the client, bounded work — and nothing at all from an untrusted peer."""

from __future__ import annotations

import ipaddress
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jarmor.protocol.addresses import TrustedProxies
from jarmor.server.forwarded import forwarded_client, parse_forwarded
from tests.kit import ISSUER, Kit, make_kit

HOSTILE = [
    'for="', 'for="\\', "for=\x00", "for=" + '"' * 5000, ",,,,;;;;" * 1000, "for=" + "_" * 8000,
    'for="[::1]:0"', 'for="[::ffff:127.0.0.1]"', 'for="[::1%25lo]"', "for=0x7f.1", "for=127.1",
    'for="1.2.3.4\r\nX-Injected: 1"', "for=unknown, for=unknown", 'for="\xff\xfe"', "for=1.2.3.4;" * 500,
    'for="' + "\\\\" * 3000 + '"', "for=é", 'for="[' + "f" * 100 + ']"', "proto=javascript",
]
TRUSTED = TrustedProxies(["127.0.0.1"])


def settle(client: tuple[str, int] | None) -> None:
    """A client the parser reports is an IP address or an RFC 7239 §6.3 obfuscated identifier, bounded."""
    if client is None:
        return
    host, port = client
    assert 0 <= port <= 65535 and len(host) <= 128
    if not host.startswith("_"):
        ipaddress.ip_address(host)


@given(st.lists(st.text(max_size=300), max_size=4))
@settings(max_examples=300, deadline=None)
def test_any_text_is_read_or_refused_never_raises(values: list[str]) -> None:
    client, scheme = forwarded_client(values, TRUSTED)
    settle(client)
    assert scheme in (None, "http", "https")


@given(st.lists(st.sampled_from(["for=", "_x", "1.2.3.4", '"', "\\", "[", "]", ":", ",", ";", "=", " ",
                                  "::1", "proto=", "https", "unknown", "80"]), max_size=40))
@settings(max_examples=500, deadline=None)
def test_grammar_fragments_never_raise(parts: list[str]) -> None:
    value = "".join(parts)
    parse_forwarded(value)
    settle(forwarded_client([value], TRUSTED)[0])


@pytest.fixture
async def kit() -> Any:
    k = await make_kit(reuse_server_keys=True)
    yield k
    await k.http.aclose()


async def test_hostile_headers_through_the_app_are_never_a_server_error(kit: Kit) -> None:
    from jarmor.server.forwarded import ForwardedMiddleware

    app: Any = kit.http._transport.app  # type: ignore[attr-defined]
    client = await kit.add_client()
    for trusted in (["127.0.0.1"], ["10.0.0.0/8"]):
        proxied = ForwardedMiddleware(app, trusted)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=proxied), base_url=ISSUER) as http:
            for value in HOSTILE:
                ro, _ = client.request_object()
                headers = [("forwarded", value.encode("latin-1", "replace"))]
                r = await http.post("/par", data={**client.auth_form(), "request": ro, "client_id": client.client_id},
                                    headers=headers)
                assert r.status_code == 201, (value[:40], r.text)
                assert (await http.get("/.well-known/openid-configuration", headers=headers)).status_code == 200
