"""What the client sends: request objects (C14/C15/C16), the authorization URL (C17), PAR (C18),
client assertions (C20), PKCE (C21) and state/nonce (C22)."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st

from jarmor.client import AsyncOAuthClient, ConfigurationError, DiscoveryError
from jarmor.client.pkce import new_nonce, new_pkce, new_state
from jarmor.client.request_object import request_object_claims
from jarmor.jose import peek_header, verify_jws

from .fake_server import CLIENT_ID, ISSUER, NOW, REDIRECT_URI, s256

B64URL = re.compile(r"^[A-Za-z0-9_-]+$")


async def test_golden_request_object(client: AsyncOAuthClient, fake: Any, keys: Any) -> None:
    start = await client.start_authorization(
        scope="openid accounts", max_age=300, acr_values=["a"]
    )
    token = fake.par_forms[0]["request"]
    header = peek_header(token)
    assert header == {"alg": "ES256", "kid": "client-sig-1", "typ": "oauth-authz-req+jwt"}
    claims = verify_jws(token, keys.client_sig_public, algorithms=["ES256"]).claims
    flow = client.core.store.take(start.state, NOW)
    assert flow is not None
    assert claims == {
        "iss": CLIENT_ID,
        "aud": ISSUER,
        "client_id": CLIENT_ID,
        "response_type": "code",
        "redirect_uri": REDIRECT_URI,
        "scope": "openid accounts",
        "state": start.state,
        "nonce": flow.nonce,
        "code_challenge": s256(flow.code_verifier),
        "code_challenge_method": "S256",
        "response_mode": "jwt",
        "max_age": 300,
        "acr_values": "a",
        "iat": NOW,
        "nbf": NOW,
        "exp": NOW + 300,
        "jti": claims["jti"],
    }
    assert isinstance(claims["aud"], str)
    assert len(claims["jti"]) >= 22 and B64URL.match(claims["jti"])  # ≥128 bits
    assert not {"sub", "request", "request_uri"} & claims.keys()
    assert isinstance(claims["max_age"], int)
    # flow record (C12)
    assert (flow.issuer, flow.client_id, flow.redirect_uri, flow.response_mode) == (
        ISSUER,
        CLIENT_ID,
        REDIRECT_URI,
        "jwt",
    )


async def test_par_sends_only_expected_fields_and_url_only_client_id_and_request_uri(
    client: AsyncOAuthClient, fake: Any
) -> None:
    start = await client.start_authorization(scope="accounts")
    (par,) = [r for r in fake.requests if r.url.path == "/par"]
    assert par.method == "POST"
    assert par.headers["content-type"] == "application/x-www-form-urlencoded"
    assert set(fake.par_forms[0]) == {"request", "client_id", "client_assertion_type", "client_assertion"}
    parts = urlsplit(start.url)
    query = parse_qsl(parts.query)
    assert [name for name, _ in query] == ["client_id", "request_uri"]
    assert dict(query)["client_id"] == CLIENT_ID
    assert start.request_uri == dict(query)["request_uri"]
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == fake.metadata["authorization_endpoint"]
    assert start.expires_at == NOW + 60


async def test_url_by_value(client: AsyncOAuthClient, fake: Any) -> None:
    start = await client.start_authorization(scope="accounts", use_par=False)
    names = [name for name, _ in parse_qsl(urlsplit(start.url).query)]
    assert names == ["client_id", "request"]
    start = await client.start_authorization(scope="openid", use_par=False)
    query = dict(parse_qsl(urlsplit(start.url).query))
    assert set(query) == {"client_id", "request", "response_type", "scope"}  # OIDC Core §6.1 duplicates
    assert query["response_type"] == "code" and query["scope"] == "openid"
    assert "request_uri" not in query


async def test_authorization_endpoint_query_is_kept(client: AsyncOAuthClient, fake: Any) -> None:
    fake.metadata["authorization_endpoint"] = f"{ISSUER}/authorize?tenant=t1"
    start = await client.start_authorization(scope="a")
    assert [n for n, _ in parse_qsl(urlsplit(start.url).query)] == ["tenant", "client_id", "request_uri"]


async def test_golden_client_assertion(client: AsyncOAuthClient, fake: Any, keys: Any) -> None:
    fake.metadata["token_endpoint"] = "https://other-as.example/token"  # aud must still be the issuer (A84)
    fake.metadata["pushed_authorization_request_endpoint"] = "https://as.example/par"
    await client.start_authorization(scope="a")
    await client.start_authorization(scope="a")
    jtis = set()
    for form in fake.par_forms:
        assert form["client_assertion_type"] == "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
        verified = verify_jws(form["client_assertion"], keys.client_sig_public, algorithms=["ES256"])
        claims = verified.claims
        assert verified.header.get("typ") is None
        assert claims == {
            "iss": CLIENT_ID,
            "sub": CLIENT_ID,
            "aud": ISSUER,
            "iat": NOW,
            "exp": NOW + 60,
            "jti": claims["jti"],
        }
        assert len(claims["jti"]) >= 22
        jtis.add(claims["jti"])
    assert len(jtis) == 2


async def test_each_start_has_fresh_pkce_state_nonce(client: AsyncOAuthClient, fake: Any, keys: Any) -> None:
    seen: set[str] = set()
    for _ in range(3):
        await client.start_authorization(scope="openid")
    for form in fake.par_forms:
        claims = verify_jws(form["request"], keys.client_sig_public, algorithms=["ES256"]).claims
        for name in ("state", "nonce", "code_challenge", "jti"):
            assert claims[name] not in seen
            seen.add(claims[name])


def test_pkce_generation() -> None:
    verifiers = {new_pkce().verifier for _ in range(2000)}
    assert len(verifiers) == 2000
    for verifier in list(verifiers)[:200]:
        assert len(verifier) == 43 and B64URL.match(verifier)
    pkce = new_pkce()
    assert pkce.method == "S256" and pkce.challenge == s256(pkce.verifier)
    assert pkce.verifier not in repr(pkce)
    # RFC 7636 Appendix B vector
    from jarmor.client.pkce import s256_challenge

    assert (
        s256_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk")
        == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
    )


def test_state_and_nonce_entropy() -> None:
    assert len({new_state() for _ in range(1000)}) == 1000
    nonce = new_nonce()
    assert 43 <= len(nonce) <= 64 and B64URL.match(nonce)


@pytest.mark.parametrize(
    "name", ["sub", "request", "request_uri", "iss", "aud", "state", "code_challenge_method"]
)
async def test_extra_cannot_set_reserved_claims(client: AsyncOAuthClient, fake: Any, name: str) -> None:
    with pytest.raises(ConfigurationError):
        await client.start_authorization(scope="a", extra={name: "client-1"})
    assert fake.requests == []  # refused before any network call


async def test_max_age_must_be_a_number(client: AsyncOAuthClient) -> None:
    with pytest.raises(ConfigurationError):
        await client.start_authorization(scope="openid", max_age="300")  # type: ignore[arg-type]


@given(lifetime=st.integers(min_value=1, max_value=3600), now=st.integers(min_value=0, max_value=2**40))
def test_request_object_lifetime_property(lifetime: int, now: int) -> None:
    claims = request_object_claims(
        client_id="c", issuer=ISSUER, params={"scope": "a"}, now=now, lifetime=lifetime, jti="j"
    )
    assert claims["nbf"] == claims["iat"] == now
    assert 0 < claims["exp"] - claims["nbf"] <= 3600
    assert claims["aud"] == ISSUER and "sub" not in claims


def test_request_object_lifetime_over_an_hour_refused(make_config: Any) -> None:
    with pytest.raises(ConfigurationError):
        make_config(request_object_lifetime=3601)
    with pytest.raises(ConfigurationError):
        request_object_claims(client_id="c", issuer=ISSUER, params={}, now=0, lifetime=3601, jti="j")


@pytest.mark.parametrize(
    ("member", "value", "kwargs"),
    [
        ("code_challenge_methods_supported", ["plain"], {}),
        ("code_challenge_methods_supported", None, {}),
        ("request_object_signing_alg_values_supported", ["PS256"], {}),
        ("authorization_signing_alg_values_supported", ["PS256"], {}),
        ("response_modes_supported", ["query", "fragment"], {}),
        ("pushed_authorization_request_endpoint", None, {}),
        ("token_endpoint_auth_signing_alg_values_supported", ["PS256"], {}),
        ("request_object_encryption_alg_values_supported", ["ECDH-ES"], {"encrypt_request": True}),
    ],
)
async def test_refuses_what_the_server_does_not_advertise(
    make_client: Any, make_config: Any, fake: Any, member: str, value: Any, kwargs: dict[str, Any]
) -> None:
    """A82/C14/C16: no downgrade to plain PKCE, no unadvertised algorithms or modes."""
    if value is None:
        del fake.metadata[member]
    else:
        fake.metadata[member] = value
    client = make_client(make_config(request_object_encryption_alg="RSA-OAEP-256"))
    with pytest.raises(DiscoveryError):
        await client.start_authorization(scope="a", **kwargs)
    assert fake.calls("/par") == 0


async def test_par_required_by_server(client: AsyncOAuthClient, fake: Any) -> None:
    fake.metadata["require_pushed_authorization_requests"] = True
    with pytest.raises(DiscoveryError) as info:
        await client.start_authorization(scope="a", use_par=False)
    assert info.value.reason == "par_required"


async def test_encrypt_request_needs_configuration(client: AsyncOAuthClient) -> None:
    with pytest.raises(ConfigurationError):
        await client.start_authorization(scope="a", encrypt_request=True)


async def test_request_object_typ_can_be_disabled(make_client: Any, make_config: Any, fake: Any) -> None:
    client = make_client(make_config(request_object_typ=None))
    start = await client.start_authorization(scope="a", use_par=False)
    header = peek_header(dict(parse_qsl(urlsplit(start.url).query))["request"])
    assert "typ" not in header and header["alg"] == "ES256"
