"""The authorization endpoint through the ASGI app: JAR by value, redirect rules, PKCE, state/nonce.

Checklist S1-S18, S22-S23, S32-S33, S35, S37, S40, S46 and attack catalog group Z (A27-A40). Every negative
test pins the error code, the channel (REDIRECT to the registered URI with iss / JARM JWT, or PAGE) and
that nothing was minted or recorded.
"""

from __future__ import annotations

import asyncio
import re
import secrets
from typing import Any, cast

import orjson
import pytest
from cryptography.hazmat.primitives import serialization

from jarmor.jose import JwkSet, encrypt_jwe, generate_jwk, verify_jws
from jarmor.jose.testing import hmac_raw, keyring, segment, sign_raw
from jarmor.protocol.context import Settings
from jarmor.server.accounts import add_user
from tests.kit import ISSUER, REDIRECT, Kit, TestClient, ephemeral_keys, pkce_pair, response_params

from .conftest import KitFactory
from .support import (
    RO_JTI_NS,
    assert_error_page,
    assert_no_code,
    assert_redirect_error,
    code_from,
    now,
    plain_request,
    redeem,
    split_location,
)

REDIRECT2 = "http://127.0.0.1:9999/cb2"


@pytest.fixture
async def base(kit: Kit) -> TestClient:
    """A baseline client: every response mode registered, plain requests allowed, query by default."""
    return await kit.add_client(risk_tier="baseline")


@pytest.fixture
async def elev(kit: Kit) -> TestClient:
    """An elevated client: signed request object, JARM and private_key_jwt required."""
    return await kit.add_client(risk_tier="elevated", redirect_uris=[REDIRECT, REDIRECT2])


def ro_claims(client: TestClient, **overrides: Any) -> dict[str, Any]:
    """The claims of a valid request object (for tokens forged outside ``TestClient.request_object``)."""
    _ro, ctx = client.request_object(**overrides)
    ctx.pop("code_verifier")
    return ctx


async def authorize_ro(kit: Kit, client: TestClient, token: str, **outer: str) -> Any:
    return await kit.authorize({"client_id": client.client_id, "request": token, **outer})


async def assert_jti_still_usable(kit: Kit, client: TestClient, jti: str) -> None:
    """A rejected request object must leave no replay mark: a valid one with the same jti succeeds."""
    ro, _ctx = client.request_object(jti=jti)
    r = await authorize_ro(kit, client, ro)
    assert r.status_code == 303
    code_from(kit, client, r)


# --- success and RFC 9207 iss (S40) -------------------------------------------------------------------


async def test_plain_request_succeeds_with_iss_and_state(kit: Kit, base: TestClient) -> None:
    params, verifier = plain_request(base)
    r = await kit.authorize(params)
    base_uri, sep, got = split_location(r)
    assert r.status_code == 303 and base_uri == REDIRECT and sep == "?"
    assert got["iss"] == ISSUER and got["state"] == params["state"]
    t = await redeem(kit, base, got["code"], verifier)
    assert t.status_code == 200, t.text


async def test_authorization_request_by_post(kit: Kit, base: TestClient) -> None:
    params, _ = plain_request(base)
    r = await kit.http.post("/authorize", data=params)
    assert r.status_code == 303
    assert code_from(kit, base, r)["iss"] == ISSUER


async def test_user_denial_redirects_access_denied_with_iss(make: KitFactory) -> None:
    """S40: error responses carry iss too; the user pressing Deny gives access_denied (RFC 6749 §4.1.2.1)."""
    kit = await make(auto_approve=None)
    client = await kit.add_client(risk_tier="baseline")
    await add_user(kit.store.users, "alice", "correct horse battery")
    params, _ = plain_request(client)
    r = await kit.authorize(params)
    assert r.status_code == 200
    action = re.search(r'action="([^"]+)"', r.text)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', r.text)
    assert action and csrf
    r = await kit.http.post(
        action.group(1),
        data={"csrf_token": csrf.group(1), "username": "alice", "password": "correct horse battery"},
    )
    assert r.status_code == 303
    r = await kit.http.get(r.headers["location"])
    assert r.status_code == 200
    action = re.search(r'action="([^"]+)"', r.text)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', r.text)
    assert action and csrf
    r = await kit.http.post(action.group(1), data={"csrf_token": csrf.group(1), "decision": "deny"})
    assert_redirect_error(kit, r, "access_denied", state=params["state"])
    assert_no_code(kit)


async def test_prompt_none_without_session_is_login_required(make: KitFactory) -> None:
    kit = await make(auto_approve=None)
    client = await kit.add_client(risk_tier="baseline")
    params, _ = plain_request(client, prompt="none")
    r = await kit.authorize(params)
    assert_redirect_error(kit, r, "login_required", state=params["state"])


# --- rule R: when to redirect, when to show a page (S13, S32, A36, A37) --------------------------------


async def test_missing_client_id_is_page(kit: Kit, base: TestClient) -> None:
    params, _ = plain_request(base, client_id=None)
    assert_error_page(await kit.authorize(params), "invalid_request")
    assert_no_code(kit)


async def test_unknown_client_is_page(kit: Kit, base: TestClient) -> None:
    params, _ = plain_request(base, client_id="no-such-client")
    assert_error_page(await kit.authorize(params), "invalid_request")


@pytest.mark.parametrize(
    "uri",
    [
        "https://evil.example/cb",
        REDIRECT + "/",
        REDIRECT + "?x=1",
        REDIRECT.upper(),
        "http://127.0.0.1:9998/cb",
    ],
)
async def test_unregistered_redirect_uri_is_page(kit: Kit, base: TestClient, uri: str) -> None:
    """S32 / A36: exact string match; anything else is an error page, never a redirect."""
    params, _ = plain_request(base, redirect_uri=uri)
    assert_error_page(await kit.authorize(params), "invalid_request")
    assert_no_code(kit)


async def test_missing_redirect_uri_uses_the_only_registered_one(kit: Kit, base: TestClient) -> None:
    params, _ = plain_request(base, redirect_uri=None)
    r = await kit.authorize(params)
    assert split_location(r)[0] == REDIRECT
    code_from(kit, base, r)


async def test_missing_redirect_uri_with_several_registered_is_page(kit: Kit) -> None:
    client = await kit.add_client(risk_tier="baseline", redirect_uris=[REDIRECT, REDIRECT2])
    params, _ = plain_request(client, redirect_uri=None)
    assert_error_page(await kit.authorize(params), "invalid_request")


@pytest.mark.parametrize("name", ["client_id", "state", "redirect_uri", "request"])
async def test_repeated_parameter_is_page(kit: Kit, base: TestClient, name: str) -> None:
    """A33 / RFC 6749 §3.1: parameters must not be repeated."""
    params, _ = plain_request(base)
    params.setdefault(name, "x")
    query = "&".join(f"{k}={v}" for k, v in params.items()) + f"&{name}=other"
    r = await kit.http.get("/authorize?" + query)
    assert_error_page(r, "invalid_request")
    assert_no_code(kit)


async def test_request_and_request_uri_together(kit: Kit, base: TestClient) -> None:
    """S17 / RFC 9101 §5: invalid_request (the request object's redirect_uri is registered: REDIRECT)."""
    ro, ctx = base.request_object()
    r = await kit.authorize(
        {"client_id": base.client_id, "request": ro, "request_uri": "urn:ietf:params:oauth:request_uri:abc"}
    )
    assert_redirect_error(kit, r, "invalid_request", state=ctx["state"])
    assert_no_code(kit)
    assert ephemeral_keys(kit, RO_JTI_NS) == []


# --- S1: alg none and empty signatures ----------------------------------------------------------------


@pytest.mark.parametrize("alg", ["none", "None", "NONE", "nOnE"])
async def test_unsigned_request_object_is_rejected(kit: Kit, base: TestClient, alg: str) -> None:
    claims = ro_claims(base)
    token = f"{segment({'alg': alg, 'typ': 'oauth-authz-req+jwt'})}.{segment(claims)}."
    r = await authorize_ro(kit, base, token)
    assert_redirect_error(kit, r, "invalid_request_object", state=claims["state"])
    assert_no_code(kit)
    await assert_jti_still_usable(kit, base, claims["jti"])


async def test_empty_signature_is_rejected(kit: Kit, base: TestClient) -> None:
    ro, ctx = base.request_object()
    head, body, _sig = ro.split(".")
    r = await authorize_ro(kit, base, f"{head}.{body}.")
    assert_redirect_error(kit, r, "invalid_request_object", state=ctx["state"])
    await assert_jti_still_usable(kit, base, ctx["jti"])


async def test_unsigned_request_object_with_unregistered_redirect_is_page(kit: Kit, base: TestClient) -> None:
    """Rule R: the unverified redirect_uri of a failing request object is trusted only if registered."""
    claims = ro_claims(base, redirect_uri="https://evil.example/cb")
    token = f"{segment({'alg': 'none'})}.{segment(claims)}."
    assert_error_page(await authorize_ro(kit, base, token), "invalid_request_object")


# --- S2: only the client's own registered keys ---------------------------------------------------------


async def test_signed_with_another_clients_key(kit: Kit, base: TestClient) -> None:
    other = await kit.add_client(risk_tier="baseline")
    claims = ro_claims(base)
    token = sign_raw(
        {"alg": "ES256", "kid": other.key.kid, "typ": "oauth-authz-req+jwt"}, claims, other.key, "ES256"
    )
    r = await authorize_ro(kit, base, token)
    assert_redirect_error(kit, r, "invalid_request_object", state=claims["state"])
    assert_no_code(kit)
    await assert_jti_still_usable(kit, base, claims["jti"])


async def test_signed_with_another_key_claiming_the_clients_kid(kit: Kit, base: TestClient) -> None:
    attacker = generate_jwk("ES256", kid=base.key.kid)
    ro, ctx = base.request_object(key=attacker)
    assert_redirect_error(
        kit, await authorize_ro(kit, base, ro), "invalid_request_object", state=ctx["state"]
    )


async def test_tampered_payload(kit: Kit, base: TestClient) -> None:
    ro, ctx = base.request_object()
    head, _body, sig = ro.split(".")
    claims = ro_claims(base, state=ctx["state"], scope="openid profile", jti=ctx["jti"])
    r = await authorize_ro(kit, base, f"{head}.{segment(claims)}.{sig}")
    assert_redirect_error(kit, r, "invalid_request_object", state=ctx["state"])
    await assert_jti_still_usable(kit, base, ctx["jti"])


async def test_kid_not_in_the_clients_jwks(kit: Kit, base: TestClient) -> None:
    stranger = generate_jwk("ES256", kid="not-registered")
    ro, ctx = base.request_object(key=stranger)
    assert_redirect_error(
        kit, await authorize_ro(kit, base, ro), "invalid_request_object", state=ctx["state"]
    )


async def test_embedded_jwk_header_is_never_used(kit: Kit, base: TestClient) -> None:
    attacker = generate_jwk("ES256", kid="atk")
    claims = ro_claims(base)
    for header in (
        {"alg": "ES256", "jwk": attacker.public_dict()},
        {"alg": "ES256", "kid": "atk", "jwk": attacker.public_dict()},
        {"alg": "ES256", "kid": "atk", "jku": "https://evil.example/jwks"},
        {"alg": "ES256", "x5u": "https://evil.example/cert"},
    ):
        r = await authorize_ro(kit, base, sign_raw(header, claims, attacker, "ES256"))
        assert_redirect_error(kit, r, "invalid_request_object", state=claims["state"])
    assert_no_code(kit)


# --- S3: algorithm allowlist and key binding ------------------------------------------------------------


async def test_hs256_keyed_with_the_clients_public_key(kit: Kit) -> None:
    """The classic confusion (A3): HS256 whose secret is the client's RSA public key, PEM or JWK JSON."""
    rsa = keyring().c1_sig
    client = await kit.add_client(risk_tier="baseline", alg="PS256", key=rsa)
    claims = ro_claims(client)
    pem = cast(Any, rsa.key.raw_value).public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    for secret in (pem, segment(rsa.public_dict()).encode()):
        token = hmac_raw({"alg": "HS256", "kid": rsa.kid}, claims, secret)
        r = await authorize_ro(kit, client, token)
        assert_redirect_error(kit, r, "invalid_request_object", state=claims["state"])
    await assert_jti_still_usable(kit, client, claims["jti"])


async def test_registered_request_object_alg_is_enforced(kit: Kit) -> None:
    """S3.3: the client registered PS256 and also holds an EC key; an ES256 object is refused."""
    rsa, ec = keyring().c1_sig, generate_jwk("ES256", kid="c1-ec")
    client = await kit.add_client(
        risk_tier="baseline",
        alg="PS256",
        key=rsa,
        request_object_signing_alg="PS256",
        jwks={"keys": [rsa.public_dict(), ec.public_dict()]},
    )
    ro, ctx = client.request_object(key=ec, alg="ES256")
    r = await authorize_ro(kit, client, ro)
    assert_redirect_error(kit, r, "invalid_request_object", state=ctx["state"])
    ro, _ = client.request_object()
    code_from(kit, client, await authorize_ro(kit, client, ro))


async def test_key_is_bound_to_its_alg(kit: Kit) -> None:
    """RFC 8725 §3.1: a key registered with alg PS256 cannot verify an RS256 signature."""
    rsa = keyring().c1_sig
    client = await kit.add_client(risk_tier="baseline", alg="PS256", key=rsa)
    claims = ro_claims(client)
    token = sign_raw({"alg": "RS256", "kid": rsa.kid, "typ": "oauth-authz-req+jwt"}, claims, rsa, "RS256")
    r = await authorize_ro(kit, client, token)
    assert_redirect_error(kit, r, "invalid_request_object", state=claims["state"])


# --- S4: typ ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("typ", ["dpop+jwt", "at+jwt", "client-authentication+jwt", "JWT"])
async def test_foreign_typ_is_rejected(kit: Kit, base: TestClient, typ: str) -> None:
    claims = ro_claims(base)
    token = sign_raw({"alg": "ES256", "kid": base.key.kid, "typ": typ}, claims, base.key, "ES256")
    assert_redirect_error(
        kit, await authorize_ro(kit, base, token), "invalid_request_object", state=claims["state"]
    )


@pytest.mark.parametrize(
    "typ", [None, "oauth-authz-req+jwt", "OAuth-Authz-Req+JWT", "application/oauth-authz-req+jwt"]
)
async def test_expected_or_absent_typ_is_accepted(kit: Kit, base: TestClient, typ: str | None) -> None:
    claims = ro_claims(base)
    header = {"alg": "ES256", "kid": base.key.kid} | ({"typ": typ} if typ else {})
    code_from(kit, base, await authorize_ro(kit, base, sign_raw(header, claims, base.key, "ES256")))


# --- S5: encrypted request objects (decryption works; not advertised or registrable yet) -----------------


async def test_encrypted_request_object_is_decrypted(kit: Kit, base: TestClient) -> None:
    ro, ctx = base.request_object()
    jwks = JwkSet.from_dict(kit.server.keyring.public_jwks())
    enc_key = next(k for k in jwks if k.use == "enc" and k.alg == "RSA-OAEP-256")
    r = await authorize_ro(kit, base, encrypt_jwe(ro, enc_key, "RSA-OAEP-256", "A256GCM", cty="JWT"))
    params = code_from(kit, base, r)
    assert params["state"] == ctx["state"]


async def test_encrypted_bare_claims_are_rejected(kit: Kit, base: TestClient) -> None:
    """RFC 9101 §5 / A20: a JWE whose plaintext is a claims set (encrypted, not signed) is refused."""
    claims = ro_claims(base)
    jwks = JwkSet.from_dict(kit.server.keyring.public_jwks())
    enc_key = next(k for k in jwks if k.use == "enc" and k.alg == "RSA-OAEP-256")
    token = encrypt_jwe(orjson.dumps(claims), enc_key, "RSA-OAEP-256", "A256GCM")
    # nothing to peek inside a JWE, no outer redirect_uri: the client's only registered URI (rule R)
    assert_redirect_error(kit, await authorize_ro(kit, base, token), "invalid_request_object", state=None)
    assert_no_code(kit)


# --- S6-S11, S15, S16: request-object claims -------------------------------------------------------------

_BAD_CLAIMS: list[tuple[str, dict[str, Any], tuple[str, ...]]] = [
    ("iss missing", {}, ("iss",)),
    ("iss other client", {"iss": "client-2"}, ()),
    ("aud missing", {}, ("aud",)),
    ("aud attacker", {"aud": "https://attacker.example"}, ()),
    ("aud authorization endpoint", {"aud": ISSUER + "/authorize"}, ()),
    ("aud token endpoint", {"aud": ISSUER + "/token"}, ()),
    ("aud par endpoint", {"aud": ISSUER + "/par"}, ()),
    ("aud trailing slash", {"aud": ISSUER + "/"}, ()),
    ("aud array without issuer", {"aud": ["https://other.example"]}, ()),
    ("aud empty array", {"aud": []}, ()),
    ("exp missing", {}, ("exp",)),
    ("exp passed", {"exp": -60}, ()),
    ("exp 70 min ahead", {"exp": 4200}, ()),
    ("exp string", {"exp": "9999999999"}, ()),
    ("nbf 70 min ago", {"nbf": -4200, "iat": -4200, "exp": 60}, ()),
    ("nbf 120 s ahead", {"nbf": 120}, ()),
    ("iat 1 h ahead", {"iat": 3600}, ()),
    ("iat 2 h ago", {"iat": -7200}, ()),
    ("jti empty", {"jti": ""}, ()),
    ("jti number", {"jti": 12345}, ()),
    ("jti missing", {}, ("jti",)),
    ("client_id claim missing", {}, ("client_id",)),
    ("client_id claim other", {"client_id": "client-2"}, ()),
    ("request inside", {"request": "eyJhbGciOiJub25lIn0.e30."}, ()),
    ("request_uri urn inside", {"request_uri": "urn:ietf:params:oauth:request_uri:abc"}, ()),
    ("request_uri https inside", {"request_uri": "https://attacker.example/ro"}, ()),
    ("sub is client_id", {"sub": "<client>"}, ()),
    ("max_age string", {"max_age": "600"}, ()),
    ("max_age null", {"max_age": None}, ()),
    ("max_age negative", {"max_age": -1}, ()),
    ("scope number", {"scope": 5}, ()),
    ("claims not object", {"claims": "x"}, ()),
]
_TIME_CLAIMS = ("exp", "nbf", "iat")


@pytest.mark.parametrize(("case", "changes", "omit"), _BAD_CLAIMS, ids=[c[0] for c in _BAD_CLAIMS])
async def test_bad_request_object_claims(
    kit: Kit, base: TestClient, case: str, changes: dict[str, Any], omit: tuple[str, ...]
) -> None:
    """S6-S12, S15, S16 / A29, A30, A32: invalid_request_object, redirected (the redirect_uri is registered)."""
    t = now()
    claims: dict[str, Any] = {
        k: (t + v if k in _TIME_CLAIMS and isinstance(v, int) else base.client_id if v == "<client>" else v)
        for k, v in changes.items()
    }
    ro, ctx = base.request_object(omit=omit, **claims)
    r = await authorize_ro(kit, base, ro)
    assert_redirect_error(kit, r, "invalid_request_object", state=ctx["state"])
    assert_no_code(kit)
    assert ephemeral_keys(kit, RO_JTI_NS) == [], "no jti replay mark for an invalid request object"


async def test_multiple_aud_with_issuer_is_accepted(kit: Kit, base: TestClient) -> None:
    """S7: ``[issuer, other]`` succeeds (FAPI*EnsureServerAcceptsRequestObjectWithMultipleAud)."""
    ro, _ = base.request_object(aud=[ISSUER, "https://other.example"])
    code_from(kit, base, await authorize_ro(kit, base, ro))


@pytest.mark.parametrize("field", ["nbf", "iat"])
async def test_time_claims_8_seconds_ahead_are_accepted(kit: Kit, base: TestClient, field: str) -> None:
    """S9/S10: FAPI 2.0 clock skew — 8 s in the future must be accepted."""
    extra: dict[str, Any] = {field: now() + 8}
    ro, _ = base.request_object(**extra)
    code_from(kit, base, await authorize_ro(kit, base, ro))


async def test_query_client_id_differs_from_the_request_object(kit: Kit, base: TestClient) -> None:
    """S13 / A29(a): the object is verified with the query client's keys only; another client's object fails."""
    other = await kit.add_client(risk_tier="baseline")
    ro, ctx = other.request_object()
    r = await kit.authorize({"client_id": base.client_id, "request": ro})
    assert_redirect_error(kit, r, "invalid_request_object", state=ctx["state"])
    assert_no_code(kit)


# --- S11 / A31: request-object replay --------------------------------------------------------------------


async def test_request_object_replay_is_rejected(kit: Kit, base: TestClient) -> None:
    ro, ctx = base.request_object()
    code_from(kit, base, await authorize_ro(kit, base, ro))
    r = await authorize_ro(kit, base, ro)
    assert_redirect_error(kit, r, "invalid_request_object", state=ctx["state"])


async def test_same_jti_from_another_client_is_accepted(kit: Kit, base: TestClient) -> None:
    other = await kit.add_client(risk_tier="baseline")
    ro, _ = base.request_object(jti="shared-jti")
    code_from(kit, base, await authorize_ro(kit, base, ro))
    ro, _ = other.request_object(jti="shared-jti")
    code_from(kit, other, await authorize_ro(kit, other, ro))


async def test_concurrent_use_of_one_request_object(kit: Kit, base: TestClient) -> None:
    """A31: 20 concurrent submissions of the same request object yield exactly one code."""
    ro, _ = base.request_object()
    results = await asyncio.gather(*(authorize_ro(kit, base, ro) for _ in range(20)))
    codes = [r for r in results if "code=" in r.headers.get("location", "")]
    assert len(codes) == 1
    assert len(ephemeral_keys(kit, "code")) == 1
    for r in results:
        if r not in codes:
            assert_redirect_error(kit, r, "invalid_request_object")


# --- S14 / A28 / A40: only the request object's parameters are used ------------------------------------


async def test_outer_parameters_are_ignored(kit: Kit, elev: TestClient) -> None:
    attacker_verifier, attacker_challenge = pkce_pair()
    ro, ctx = elev.request_object(state="s-in", nonce="n-in")
    outer = {
        "redirect_uri": REDIRECT2,
        "scope": "openid profile",
        "state": "s-out",
        "nonce": "n-out",
        "code_challenge": attacker_challenge,
        "code_challenge_method": "S256",
        "response_mode": "query",
        "response_type": "token",
        "prompt": "none",
        "max_age": "0",
    }
    r = await authorize_ro(kit, elev, ro, **outer)
    assert split_location(r)[0] == REDIRECT
    params = code_from(kit, elev, r)  # JARM: the outer response_mode=query was ignored
    assert params["state"] == "s-in"
    t = await redeem(kit, elev, params["code"], attacker_verifier)
    assert t.status_code == 400 and t.json()["error"] == "invalid_grant"

    ro, ctx = elev.request_object(state="s-in", nonce="n-in")
    params = code_from(kit, elev, await authorize_ro(kit, elev, ro, **outer))
    t = await redeem(kit, elev, params["code"], ctx["code_verifier"])
    assert t.status_code == 200, t.text
    assert t.json()["scope"] == "openid"
    jwks = JwkSet.from_dict(kit.server.keyring.public_jwks())
    id_token = verify_jws(t.json()["id_token"], jwks, algorithms=["ES256"]).claims
    assert id_token["nonce"] == "n-in"


async def test_state_only_outside_the_request_object_is_not_returned(kit: Kit, elev: TestClient) -> None:
    ro, _ = elev.request_object(omit=("state",))
    params = code_from(kit, elev, await authorize_ro(kit, elev, ro, state="s-out"))
    assert "state" not in params


async def test_scope_only_outside_the_request_object_fails(kit: Kit, elev: TestClient) -> None:
    ro, ctx = elev.request_object(omit=("scope",))
    r = await authorize_ro(kit, elev, ro, scope="openid")
    assert_redirect_error(kit, r, "invalid_request", client=elev, state=ctx["state"])
    assert_no_code(kit)
    assert ephemeral_keys(kit, RO_JTI_NS) == []


async def test_redirect_uri_only_outside_the_request_object_fails(kit: Kit, elev: TestClient) -> None:
    """Two URIs are registered, so the object must name one; the outer one is not used (page)."""
    ro, _ = elev.request_object(omit=("redirect_uri",))
    assert_error_page(await authorize_ro(kit, elev, ro, redirect_uri=REDIRECT), "invalid_request")


# --- S18 / S21 / A34: unsupported request modes ----------------------------------------------------------


async def test_request_parameter_disabled(make: KitFactory) -> None:
    kit = await make(settings=Settings(request_parameter_supported=False))
    client = await kit.add_client(risk_tier="baseline")
    ro, ctx = client.request_object()
    r = await authorize_ro(kit, client, ro)
    assert_redirect_error(kit, r, "request_not_supported", state=ctx["state"])
    assert (await kit.http.get("/.well-known/oauth-authorization-server")).json()[
        "request_parameter_supported"
    ] is False


@pytest.mark.parametrize(
    "uri",
    [
        "https://client.example/ro.jwt",
        "http://169.254.169.254/latest/meta-data/",
        "file:///etc/passwd",
        "data:application/oauth-authz-req+jwt,eyJ9",
    ],
)
async def test_hosted_request_uri_is_not_supported(kit: Kit, base: TestClient, uri: str) -> None:
    """S21 / A34: only PAR URNs; no outbound fetch, an error page."""
    r = await kit.authorize({"client_id": base.client_id, "request_uri": uri})
    assert_error_page(r, "request_uri_not_supported")


# --- S22 / S23 / A27: signed request objects and PAR required -------------------------------------------


async def test_elevated_client_plain_request_is_refused_in_jarm(kit: Kit, elev: TestClient) -> None:
    params, _ = plain_request(elev)
    r = await kit.authorize(params)
    body = assert_redirect_error(kit, r, "invalid_request", client=elev, state=params["state"])
    assert "signed_request_object" in body["error_description"]


async def test_client_flag_require_signed_request_object(kit: Kit) -> None:
    client = await kit.add_client(risk_tier="baseline", require_signed_request_object=True)
    params, _ = plain_request(client)
    assert_redirect_error(kit, await kit.authorize(params), "invalid_request", state=params["state"])
    ro, _ = client.request_object()
    code_from(kit, client, await authorize_ro(kit, client, ro))


async def test_high_client_request_object_by_value_is_refused(kit: Kit) -> None:
    """S23 / A27: a by-value request sent to /authorize when PAR is required."""
    client = await kit.add_client(risk_tier="high")
    ro, ctx = client.request_object(response_mode="jwt")
    r = await authorize_ro(kit, client, ro)
    body = assert_redirect_error(kit, r, "invalid_request", client=client, state=ctx["state"])
    assert "control par" in body["error_description"]
    assert ephemeral_keys(kit, RO_JTI_NS) == []


async def test_client_flag_require_pushed_authorization_requests(kit: Kit) -> None:
    client = await kit.add_client(risk_tier="baseline", require_pushed_authorization_requests=True)
    params, _ = plain_request(client)
    assert_redirect_error(kit, await kit.authorize(params), "invalid_request", state=params["state"])


# --- S33: response_type ---------------------------------------------------------------------------------


@pytest.mark.parametrize("rt", ["token", "code id_token", "id_token", "none"])
async def test_unsupported_response_type(kit: Kit, base: TestClient, rt: str) -> None:
    params, _ = plain_request(base, response_type=rt)
    assert_redirect_error(
        kit, await kit.authorize(params), "unsupported_response_type", state=params["state"]
    )
    assert_no_code(kit)


async def test_missing_response_type(kit: Kit, base: TestClient) -> None:
    params, _ = plain_request(base, response_type=None)
    assert_redirect_error(kit, await kit.authorize(params), "invalid_request", state=params["state"])


async def test_code_without_jarm_is_refused_in_elevated(kit: Kit, elev: TestClient) -> None:
    """S33 (FAPI1 Adv.): response_type=code needs JARM; a plain mode is not even registered."""
    ro, ctx = elev.request_object(response_mode="query")
    r = await authorize_ro(kit, elev, ro)
    assert_redirect_error(kit, r, "invalid_request", client=elev, state=ctx["state"])


async def test_unknown_scope(kit: Kit, base: TestClient) -> None:
    params, _ = plain_request(base, scope="openid admin")
    assert_redirect_error(kit, await kit.authorize(params), "invalid_scope", state=params["state"])


# --- S35: nonce and state are never truncated ------------------------------------------------------------


@pytest.mark.parametrize("length", [64, 384])
async def test_nonce_round_trips_exactly(kit: Kit, elev: TestClient, length: int) -> None:
    nonce = secrets.token_urlsafe(length)[:length]
    ro, ctx = elev.request_object(nonce=nonce)
    params = code_from(kit, elev, await authorize_ro(kit, elev, ro))
    t = await redeem(kit, elev, params["code"], ctx["code_verifier"])
    jwks = JwkSet.from_dict(kit.server.keyring.public_jwks())
    assert verify_jws(t.json()["id_token"], jwks, algorithms=["ES256"]).claims["nonce"] == nonce


async def test_long_state_round_trips_exactly(kit: Kit, base: TestClient) -> None:
    state = secrets.token_urlsafe(1500)[:1500]
    params, _ = plain_request(base, state=state)
    assert code_from(kit, base, await kit.authorize(params))["state"] == state


async def test_too_long_state_is_refused_not_truncated(kit: Kit, base: TestClient) -> None:
    params, _ = plain_request(base, state="s" * 3000)
    r = await kit.authorize(params)
    assert_redirect_error(kit, r, "invalid_request", state="s" * 3000)


async def test_no_state_sent_none_returned(kit: Kit, base: TestClient) -> None:
    params, _ = plain_request(base, state=None)
    r = await kit.authorize(params)
    assert "state" not in response_params(r)


# --- S37 / A39: PKCE at the authorization endpoint -------------------------------------------------------

_CHALLENGE = pkce_pair()[1]
_BAD_PKCE = [
    ("no challenge", {"code_challenge": None}),
    ("method missing", {"code_challenge_method": None}),
    ("method plain", {"code_challenge_method": "plain"}),
    ("method S512", {"code_challenge_method": "S512"}),
    ("method s256", {"code_challenge_method": "s256"}),
    ("challenge 42 chars", {"code_challenge": _CHALLENGE[:42]}),
    ("challenge 129 chars", {"code_challenge": "a" * 129}),
    ("challenge with +", {"code_challenge": "+" + _CHALLENGE[1:]}),
    ("challenge with =", {"code_challenge": _CHALLENGE[:42] + "="}),
]


@pytest.mark.parametrize(("case", "change"), _BAD_PKCE, ids=[c[0] for c in _BAD_PKCE])
async def test_bad_pkce_plain_request(kit: Kit, base: TestClient, case: str, change: dict[str, Any]) -> None:
    params, _ = plain_request(base, **change)
    assert_redirect_error(kit, await kit.authorize(params), "invalid_request", state=params["state"])
    assert_no_code(kit)


@pytest.mark.parametrize(("case", "change"), _BAD_PKCE[:4], ids=[c[0] for c in _BAD_PKCE[:4]])
async def test_bad_pkce_in_request_object_is_jarm_error(
    kit: Kit, elev: TestClient, case: str, change: dict[str, Any]
) -> None:
    omit = tuple(k for k, v in change.items() if v is None)
    ro, ctx = elev.request_object(omit=omit, **{k: v for k, v in change.items() if v is not None})
    r = await authorize_ro(kit, elev, ro)
    assert_redirect_error(kit, r, "invalid_request", client=elev, state=ctx["state"])
    assert ephemeral_keys(kit, RO_JTI_NS) == []


# --- S46: errors under JARM -----------------------------------------------------------------------------


async def test_request_object_error_is_inside_a_jarm_jwt(kit: Kit, elev: TestClient) -> None:
    ro, ctx = elev.request_object(exp=now() - 120)
    r = await authorize_ro(kit, elev, ro)
    body = assert_redirect_error(kit, r, "invalid_request_object", client=elev, state=ctx["state"])
    assert set(body) <= {"iss", "aud", "exp", "iat", "error", "error_description", "state"}


async def test_jarm_error_in_fragment_mode(kit: Kit, elev: TestClient) -> None:
    ro, ctx = elev.request_object(response_mode="fragment.jwt", scope="openid nope")
    r = await authorize_ro(kit, elev, ro)
    assert_redirect_error(kit, r, "invalid_scope", client=elev, state=ctx["state"], separator="#")


# --- regression: max_age (OIDC Core §3.1.2.1) --------------------------------------------------------


@pytest.mark.parametrize("value", ["abc", "-1", "1e3", "1.5", "9" * 23])
async def test_bad_max_age_is_invalid_request_not_a_crash(kit: Kit, base: TestClient, value: str) -> None:
    """Regression: a non-integer max_age in a query used to raise ValueError (HTTP 500)."""
    params, _ = plain_request(base, max_age=value)
    assert_redirect_error(kit, await kit.authorize(params), "invalid_request", state=params["state"])
    assert_no_code(kit)
    r = await kit.par(base, plain_request(base, max_age=value)[0])
    assert r.status_code == 400 and r.json()["error"] == "invalid_request"


@pytest.mark.parametrize("value", ["0", "600"])
async def test_integer_max_age_is_accepted(kit: Kit, base: TestClient, value: str) -> None:
    params, _ = plain_request(base, max_age=value)
    code_from(kit, base, await kit.authorize(params))


# --- more channels ---------------------------------------------------------------------------------------


async def test_bad_signature_for_a_jarm_client_is_a_jarm_error(kit: Kit, elev: TestClient) -> None:
    """Before verification, the object's own registered redirect_uri and JWT mode carry the error (rule R)."""
    attacker = generate_jwk("ES256", kid=elev.key.kid)
    ro, ctx = elev.request_object(key=attacker, response_mode="fragment.jwt")
    r = await authorize_ro(kit, elev, ro)
    assert_redirect_error(kit, r, "invalid_request_object", client=elev, state=ctx["state"], separator="#")
    assert ephemeral_keys(kit, RO_JTI_NS) == []


async def test_disabled_client_is_page(kit: Kit, base: TestClient) -> None:
    rec = await kit.store.clients.get(base.client_id)
    assert rec is not None
    rec.disabled_at, rec.updated_at = now(), rec.updated_at + 1
    await kit.store.clients.update(rec)
    kit.server.directory.invalidate(base.client_id)
    params, _ = plain_request(base)
    assert_error_page(await kit.authorize(params), "invalid_client")
    assert_no_code(kit)
