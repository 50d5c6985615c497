"""RFC 8705 in the protocol core: registration of the mutual-TLS metadata (§2.1.2, §2.2, §3.4), subject
matching, and discovery (§3.3, §5)."""

from __future__ import annotations

from typing import Any

import pytest

from jarmor.protocol import errors
from jarmor.protocol.context import Endpoints
from jarmor.protocol.metadata import server_metadata
from jarmor.protocol.mtls import ClientCertificate, subject_matches
from tests.certs import issue, make_ca
from tests.kit import Kit

pytestmark = pytest.mark.anyio


async def _register(kit: Kit, **meta: Any) -> dict[str, Any]:
    kit.server.env.mtls = True
    return (await kit.add_client(grant_types=["client_credentials"], redirect_uris=None, **meta)).metadata


@pytest.mark.parametrize(
    ("member", "value", "stored"),
    [
        ("tls_client_auth_subject_dn", "CN=client,O=jarmor tests", "CN=client,O=jarmor tests"),
        ("tls_client_auth_san_dns", "client.example.com", "client.example.com"),
        ("tls_client_auth_san_uri", "https://client.example.com/id", "https://client.example.com/id"),
        ("tls_client_auth_san_ip", "2001:db8:0::1", "2001:db8::1"),
        ("tls_client_auth_san_email", "ops@client.example.com", "ops@client.example.com"),
    ],
)
async def test_tls_client_auth_registers_one_subject(kit: Kit, member: str, value: str, stored: str) -> None:
    meta = await _register(kit, token_endpoint_auth_method="tls_client_auth", **{member: value})
    assert meta[member] == stored


@pytest.mark.parametrize(
    ("meta", "fragment"),
    [
        ({}, "exactly one"),
        ({"tls_client_auth_subject_dn": "CN=a", "tls_client_auth_san_dns": "a.example"}, "exactly one"),
        ({"tls_client_auth_subject_dn": ""}, "non-empty"),
        ({"tls_client_auth_subject_dn": 7}, "non-empty"),
        ({"tls_client_auth_subject_dn": "not a dn"}, "RFC 4514"),
        ({"tls_client_auth_san_dns": "a.example\n"}, "not a valid"),
        ({"tls_client_auth_san_dns": "a..example"}, "not a valid"),
        ({"tls_client_auth_san_dns": "-a.example"}, "not a valid"),
        ({"tls_client_auth_san_uri": "no scheme"}, "not a valid"),
        ({"tls_client_auth_san_uri": "https://a.example/\n"}, "not a valid"),
        ({"tls_client_auth_san_ip": "192.0.2.300"}, "IPv4 or IPv6"),
        ({"tls_client_auth_san_email": "a@b@c"}, "not a valid"),
        ({"tls_client_auth_san_email": "ops@example.com x"}, "not a valid"),
    ],
)
async def test_tls_client_auth_subject_is_validated(kit: Kit, meta: dict[str, Any], fragment: str) -> None:
    with pytest.raises(errors.OAuthError) as info:
        await _register(kit, token_endpoint_auth_method="tls_client_auth", **meta)
    assert info.value.error == "invalid_client_metadata"
    assert fragment in info.value.description


async def test_subject_members_need_tls_client_auth(kit: Kit) -> None:
    with pytest.raises(errors.OAuthError, match="only used with"):
        await _register(kit, token_endpoint_auth_method="client_secret_basic", tls_client_auth_subject_dn="CN=a")


async def test_self_signed_needs_registered_keys(kit: Kit) -> None:
    with pytest.raises(errors.OAuthError, match="jwks or jwks_uri"):
        await _register(kit, token_endpoint_auth_method="self_signed_tls_client_auth", jwks=None)


async def test_bound_tokens_flag_is_a_boolean(kit: Kit) -> None:
    with pytest.raises(errors.OAuthError, match="boolean"):
        await _register(kit, token_endpoint_auth_method="client_secret_basic",
                        tls_client_certificate_bound_access_tokens="yes")
    meta = await _register(kit, token_endpoint_auth_method="client_secret_basic",
                           tls_client_certificate_bound_access_tokens=True)
    assert meta["tls_client_certificate_bound_access_tokens"] is True


async def test_mtls_methods_need_a_server_that_sees_certificates(kit: Kit) -> None:
    with pytest.raises(errors.OAuthError, match="not supported"):
        await kit.add_client(token_endpoint_auth_method="tls_client_auth", tls_client_auth_subject_dn="CN=a",
                             grant_types=["client_credentials"], redirect_uris=None)


async def test_tiers_requiring_private_key_jwt_refuse_mtls_methods(kit: Kit) -> None:
    with pytest.raises(errors.OAuthError, match="private_key_jwt"):
        await _register(kit, risk_tier="elevated", token_endpoint_auth_method="tls_client_auth",
                        tls_client_auth_subject_dn="CN=a")


def test_subject_matching() -> None:
    ca = make_ca()
    cert = issue(ca, "client", dns=("Client.Example.com",), ips=("192.0.2.1",), uris=("https://c.example/x",),
                 emails=("ops@c.example",)).cert
    assert subject_matches({"tls_client_auth_subject_dn": "CN=client,O=jarmor tests"}, cert)
    assert not subject_matches({"tls_client_auth_subject_dn": "CN=client"}, cert)
    assert subject_matches({"tls_client_auth_san_dns": "client.example.com"}, cert)
    assert subject_matches({"tls_client_auth_san_ip": "192.0.2.1"}, cert)
    assert subject_matches({"tls_client_auth_san_uri": "https://c.example/x"}, cert)
    assert not subject_matches({"tls_client_auth_san_uri": "https://c.example/X"}, cert)
    assert subject_matches({"tls_client_auth_san_email": "ops@c.example"}, cert)
    assert not subject_matches({}, cert)


def test_thumbprint_is_x5t_s256() -> None:
    import base64
    import hashlib

    der = issue(make_ca(), "client").der
    expected = base64.urlsafe_b64encode(hashlib.sha256(der).digest()).rstrip(b"=").decode()
    assert ClientCertificate(der, chain_verified=False).thumbprint == expected


async def test_discovery(kit: Kit) -> None:
    env = kit.server.env
    plain = server_metadata(env)
    assert plain["tls_client_certificate_bound_access_tokens"] is False
    assert "tls_client_auth" not in plain["token_endpoint_auth_methods_supported"]
    assert "mtls_endpoint_aliases" not in plain
    env.mtls, env.mtls_aliases = True, Endpoints.for_issuer("https://mtls.example.com")
    meta = server_metadata(env)
    assert meta["tls_client_certificate_bound_access_tokens"] is True
    for name in ("token", "revocation", "introspection"):
        assert {"tls_client_auth", "self_signed_tls_client_auth"} <= set(meta[f"{name}_endpoint_auth_methods_supported"])
    assert meta["mtls_endpoint_aliases"]["token_endpoint"] == "https://mtls.example.com/token"
    assert meta["mtls_endpoint_aliases"]["pushed_authorization_request_endpoint"] == "https://mtls.example.com/par"


@pytest.mark.parametrize(("host", "alias"), [
    ("mtls.example.com", True), ("MTLS.example.com:443", True), ("mtls.example.com:8443", False),
    ("127.0.0.1:8000", False), ("user@mtls.example.com", False), ("mtls.example.com/token", False),
    ("mtls.example.com:x", False), ("", False), (None, False), ("mtls.example.com\t", False),
])
async def test_the_host_picks_the_alias_endpoints_or_the_main_ones(kit: Kit, host: str | None, alias: bool) -> None:
    """RFC 9449 §4.3 check 9 at RFC 8705 §5 aliases: which endpoint URL a request was sent to."""
    env = kit.server.env
    assert env.endpoints_at(host) is env.endpoints  # no aliases configured: always the main endpoints
    env.mtls_aliases = Endpoints.for_issuer("https://mtls.example.com")
    assert env.endpoints_at(host) is (env.mtls_aliases if alias else env.endpoints)
