"""Outbound fetching on a client's behalf (attack catalog group F, A69; A34 for ``request_uri``), beyond the
fetcher's own suite (tests/server/test_fetcher.py, test_jwks_uri.py, test_request_uri.py):

* properties over arbitrary URLs and IP addresses — the URL check only ever refuses with ``FetchError``,
  and no address outside global unicast (including IPv4 hidden in IPv6 transition formats) is allowed;
* hostile JWKS *documents* (what a fetched ``jwks_uri`` may answer) are refused within budget;
* no network oracle: whatever makes a ``jwks_uri`` unusable, the token endpoint answers the same bytes.
"""

from __future__ import annotations

import ipaddress
import json
from typing import Any
from urllib.parse import urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st

from jarmor.jose import JoseError, generate_jwk
from jarmor.protocol.addresses import address_allowed
from jarmor.server.fetch import Fetched, Fetcher, FetchError, FetchLimits
from jarmor.server.references import RemoteClientKeys
from tests.kit import ASSERTION_TYPE, Kit
from tests.server.support import assert_json_error

from .support import assert_unchanged, bounded, snapshot

BUDGET = {"seconds": 0.5, "megabytes": 16.0}
URL_CHARS = st.sampled_from([*"abc019.:/@[]%?#&=-_~\\ \t\r\nxX", "\u0430", "\u3002", "\uff0e", "\x00"])


@given(st.one_of(
    st.text(max_size=80),
    st.builds(lambda scheme, rest: scheme + rest, st.sampled_from(["https://", "http://", "HTTPS://", "file://",
                                                                 "https:\\\\", "https:/", "//"]),
              st.text(URL_CHARS, max_size=60)),
))
def test_url_check_refuses_only_with_fetch_error(url: str) -> None:
    fetcher = Fetcher(FetchLimits(allow_loopback=False))
    try:
        scheme, host, port = fetcher.check_url(url)
    except FetchError as exc:
        assert exc.reason in ("bad_url", "scheme")
        return
    assert scheme == "https" and host and 0 < port < 65536
    assert url.isascii() and "@" not in urlsplit(url).netloc and not any(c in url for c in "\\\r\n\t ")


NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))


def _embedded(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """IPv4 inside IPv6 transition formats (mapped, 6to4, Teredo, NAT64): judged by the IPv4 address."""
    if any(ip in net for net in NAT64):
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)


@given(st.ip_addresses(), st.booleans())
def test_address_policy(ip: Any, loopback: bool) -> None:
    """Allowed means: globally routable unicast (or loopback, when allowed) — also for embedded IPv4."""
    allowed = address_allowed(ip, allow_loopback=loopback)
    if isinstance(ip, ipaddress.IPv6Address):
        inner = _embedded(ip)
        if inner is not None:
            assert allowed == address_allowed(inner, allow_loopback=loopback)
            return
    if not allowed:
        return
    if ip.is_loopback:
        assert loopback
    else:
        assert ip.is_global and not (ip.is_private or ip.is_multicast or ip.is_reserved or ip.is_link_local)


@pytest.mark.parametrize(
    "address",
    ["::ffff:127.0.0.1", "::ffff:10.1.2.3", "2002:a00:1::", "2001:0:4136:e378:8000:63bf:f5ff:fffe",
     "64:ff9b::a9fe:a9fe", "64:ff9b:1::a00:1", "fe80::1", "ff02::1", "::", "100.64.0.1", "0.0.0.0",
     "255.255.255.255", "192.0.2.1", "198.18.0.1", "fc00::1"],
)
def test_special_use_addresses_are_never_allowed(address: str) -> None:
    assert not address_allowed(ipaddress.ip_address(address), allow_loopback=False)


# --- hostile JWKS documents -------------------------------------------------------------------------------------


def _documents() -> list[tuple[str, bytes]]:
    key = generate_jwk("ES256").public_dict()
    return [
        ("10,000 keys", json.dumps({"keys": [key] * 10_000}).encode()[: 64 * 1024]),
        ("33 keys", json.dumps({"keys": [{**key, "kid": f"k{i}"} for i in range(33)]}).encode()),
        ("keys object", b'{"keys":{}}'),
        ("keys null", b'{"keys":null}'),
        ("not JSON", b"<html>"),
        ("deep", b'{"keys":' + b"[" * 30_000 + b"]" * 30_000 + b"}"),
        ("huge number", b'{"keys":[],"x":' + b"9" * 6000 + b"}"),
        ("private key", json.dumps({"keys": [generate_jwk("ES256").private_dict()]}).encode()),
        ("symmetric", b'{"keys":[{"kty":"oct","k":"c2VjcmV0c2VjcmV0c2VjcmV0"}]}'),
        ("duplicate members", b'{"keys":[],"keys":[]}'),
        ("BOM", b'\xef\xbb\xbf{"keys":[]}'),
    ]


@pytest.mark.parametrize(("case", "body"), _documents(), ids=[c for c, _ in _documents()])
async def test_hostile_jwks_documents_are_refused_within_budget(
    case: str, body: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def answer(self: Fetcher, url: str, **_: Any) -> Fetched:
        return Fetched(url=url, body=body, content_type="application/json", address="203.0.113.7")

    monkeypatch.setattr(Fetcher, "get", answer)
    keys = RemoteClientKeys(Fetcher(FetchLimits()))
    with bounded(**BUDGET):
        with pytest.raises((JoseError, FetchError)):
            await keys.fetch_jwks("https://client.example/jwks")


CAUSES: list[tuple[str, Any]] = [
    ("dns", FetchError("x", reason="dns")),
    ("private address", FetchError("x", reason="forbidden_address")),
    ("timeout", FetchError("x", reason="timeout")),
    ("redirect", FetchError("x", reason="status")),
    ("too large", FetchError("x", reason="too_large")),
    ("html", b"<html>"),
    ("no keys", b'{"keys":[]}'),
    ("private key", json.dumps({"keys": [generate_jwk("ES256", kid="k").private_dict()]}).encode()),
]


async def test_jwks_uri_failures_read_the_same(kit: Kit, monkeypatch: pytest.MonkeyPatch) -> None:
    """A69: the token endpoint's answer is identical whatever the cause (no probe of the server's network)."""
    key = generate_jwk("ES256", kid="k")
    machine = await kit.add_client(risk_tier="baseline", key=key, jwks=None,
                                   jwks_uri="https://client.example/jwks", grant_types=["client_credentials"],
                                   redirect_uris=None)
    answers: set[tuple[int, bytes]] = set()
    for _case, cause in CAUSES:
        async def answer(self: Fetcher, url: str, _cause: Any = cause, **_: Any) -> Fetched:
            if isinstance(_cause, FetchError):
                raise _cause
            return Fetched(url=url, body=_cause, content_type="application/json", address="203.0.113.7")

        monkeypatch.setattr(Fetcher, "get", answer)
        kit.server.client_keys.invalidate()
        before = snapshot(kit)
        r = await kit.http.post("/token", data={"grant_type": "client_credentials",
                                               "client_assertion_type": ASSERTION_TYPE,
                                               "client_assertion": machine.assertion()})
        assert_json_error(r, "invalid_client", 401)
        assert_unchanged(kit, before)
        answers.add((r.status_code, r.content))
    assert len(answers) == 1, answers
