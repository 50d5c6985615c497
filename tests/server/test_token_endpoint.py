"""The token endpoint: code binding, PKCE, replay, refresh rotation, client credentials, client authentication.

Checklist S38, S49-S56 and attack catalog groups T (A50-A54) and C (A55-A58). Every error is JSON with
``Cache-Control: no-store``; ``invalid_client`` is 401, the others 400; no token is stored on failure.
"""

from __future__ import annotations

import asyncio
import base64
from typing import Any, cast

import httpx
import pytest
from cryptography.hazmat.primitives import serialization

from jarmor.jose import JwkSet, generate_jwk, verify_jws
from jarmor.jose.testing import hmac_raw, keyring
from jarmor.protocol.policy import Policy
from tests.kit import ASSERTION_TYPE, ISSUER, REDIRECT, Clock, Kit, TestClient, all_tokens, pkce_pair

from .conftest import KitFactory
from .support import assert_json_error, code_from, now, plain_request, redeem


@pytest.fixture
async def base(kit: Kit) -> TestClient:
    return await kit.add_client(risk_tier="baseline")


async def obtain_code(kit: Kit, client: TestClient, **overrides: Any) -> tuple[str, str]:
    """An authorization code for ``client`` (plain request) and its PKCE verifier."""
    params, verifier = plain_request(client, **overrides)
    r = await kit.authorize(params)
    return code_from(kit, client, r)["code"], verifier


async def introspect(kit: Kit, client: TestClient, token: str) -> dict[str, Any]:
    r = await kit.http.post("/introspect", data={**client.auth_form(), "token": token})
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def assert_no_tokens(kit: Kit) -> None:
    assert all_tokens(kit) == [], "no token may be stored"


# --- success -------------------------------------------------------------------------------------------


async def test_code_exchange_success(kit: Kit, base: TestClient) -> None:
    code, verifier = await obtain_code(kit, base)
    r = await redeem(kit, base, code, verifier)
    assert r.status_code == 200, r.text
    assert "no-store" in r.headers["cache-control"]
    body = r.json()
    assert body["token_type"] == "Bearer" and body["scope"] == "openid" and body["expires_in"] > 0
    assert len(body["access_token"]) >= 43 and len(body["refresh_token"]) >= 43 and len(code) >= 43  # S57
    jwks = JwkSet.from_dict(kit.server.keyring.public_jwks())
    claims = verify_jws(body["id_token"], jwks, algorithms=["ES256"]).claims
    assert claims["iss"] == ISSUER and claims["aud"] == base.client_id and claims["sub"] == "alice"
    assert (await introspect(kit, base, body["access_token"]))["active"] is True


# --- S49 / A52: single use, replay revokes, races -----------------------------------------------------


async def test_code_replay_is_refused_and_revokes_issued_tokens(kit: Kit, base: TestClient) -> None:
    code, verifier = await obtain_code(kit, base)
    first = (await redeem(kit, base, code, verifier)).json()
    r = await redeem(kit, base, code, verifier)
    assert_json_error(r, "invalid_grant")
    assert (await introspect(kit, base, first["access_token"]))["active"] is False
    assert (await introspect(kit, base, first["refresh_token"]))["active"] is False
    r = await kit.token(base, {"grant_type": "refresh_token", "refresh_token": first["refresh_token"]})
    assert_json_error(r, "invalid_grant")
    assert all(t.revoked_at is not None for t in all_tokens(kit))


async def test_concurrent_redemption_of_one_code(kit: Kit, base: TestClient) -> None:
    code, verifier = await obtain_code(kit, base)
    results = await asyncio.gather(*(redeem(kit, base, code, verifier) for _ in range(20)))
    assert sum(r.status_code == 200 for r in results) == 1
    for r in results:
        if r.status_code != 200:
            assert_json_error(r, "invalid_grant")


# --- S50 / S51 / A53: code bound to client and redirect_uri ---------------------------------------------


async def test_code_presented_by_another_client(kit: Kit, base: TestClient) -> None:
    """S50: invalid_grant. Design choice: the failed attempt consumes the code (the catalog's A53 policy),
    so the legitimate client cannot redeem it afterwards either."""
    other = await kit.add_client(risk_tier="baseline")
    code, verifier = await obtain_code(kit, base)
    assert_json_error(await redeem(kit, other, code, verifier), "invalid_grant")
    assert_json_error(await redeem(kit, base, code, verifier), "invalid_grant")
    assert_no_tokens(kit)


@pytest.mark.parametrize("uri", [None, "http://127.0.0.1:9999/cb2", REDIRECT + "/"])
async def test_redirect_uri_must_match(kit: Kit, base: TestClient, uri: str | None) -> None:
    code, verifier = await obtain_code(kit, base)
    form = {"grant_type": "authorization_code", "code": code, "code_verifier": verifier}
    if uri is not None:
        form["redirect_uri"] = uri
    assert_json_error(await kit.token(base, form), "invalid_grant")
    assert_json_error(await redeem(kit, base, code, verifier), "invalid_grant")  # consumed (A53)
    assert_no_tokens(kit)


async def test_redirect_uri_is_required_even_when_the_request_omitted_it(kit: Kit, base: TestClient) -> None:
    """Design choice (stricter than RFC 6749 §4.1.3): the token request always names the redirect URI."""
    code, verifier = await obtain_code(kit, base, redirect_uri=None)
    form = {"grant_type": "authorization_code", "code": code, "code_verifier": verifier}
    assert_json_error(await kit.token(base, form), "invalid_grant")


# --- S52: code lifetime ------------------------------------------------------------------------------


@pytest.mark.signs_in
@pytest.mark.parametrize(("tier", "lifetime"), [("high", 60), ("elevated", 120), ("baseline", 300)])
async def test_expired_code(kit: Kit, clock: Clock, tier: str, lifetime: int) -> None:
    client = await kit.add_client(risk_tier=tier)
    ro, ctx = client.request_object(response_mode="jwt" if tier != "baseline" else "query")
    r = await kit.par(client, {"request": ro, "client_id": client.client_id})
    r = await kit.authorize({"client_id": client.client_id, "request_uri": r.json()["request_uri"]})
    code = code_from(kit, client, r)["code"]
    clock.advance(lifetime + 1)
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT,
        "code_verifier": ctx["code_verifier"],
        **client.auth_form(exp=now() + lifetime + 60),
    }
    assert_json_error(await kit.http.post("/token", data=form), "invalid_grant")
    assert_no_tokens(kit)


@pytest.mark.signs_in
async def test_code_just_within_lifetime(kit: Kit, clock: Clock) -> None:
    client = await kit.add_client(risk_tier="high")
    out_ro, ctx = client.request_object(response_mode="jwt")
    r = await kit.par(client, {"request": out_ro, "client_id": client.client_id})
    r = await kit.authorize({"client_id": client.client_id, "request_uri": r.json()["request_uri"]})
    code = code_from(kit, client, r)["code"]
    clock.advance(55)
    assert (await redeem(kit, client, code, ctx["code_verifier"])).status_code == 200


# --- S38 / A50 / A51 / A54: PKCE at redemption -------------------------------------------------------


@pytest.mark.parametrize(
    "verifier",
    [
        None,
        "wrong",
        "A" * 42,
        "A" * 129,
        "A" * 42 + "+",
        "A" * 42 + "=",
        "A" * 42 + " ",
        "A" * 42 + "é",
        "<challenge>",
        "<verifier> ",
        "<other>",
    ],
    ids=[
        "missing",
        "short",
        "42 chars",
        "129 chars",
        "plus",
        "equals",
        "space",
        "non-ascii",
        "the challenge",
        "trailing space",
        "attacker verifier (code injection)",
    ],
)
async def test_bad_code_verifier(kit: Kit, base: TestClient, verifier: str | None) -> None:
    own_verifier, challenge = pkce_pair()
    code, _ = await obtain_code(kit, base, code_challenge=challenge)
    value = {"<challenge>": challenge, "<verifier> ": own_verifier + " ", "<other>": pkce_pair()[0]}.get(
        verifier or "", verifier
    )
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT}
    if value is not None:
        form["code_verifier"] = value
    assert_json_error(await kit.token(base, form), "invalid_grant")
    # the code is invalidated by the failed attempt
    assert_json_error(await redeem(kit, base, code, own_verifier), "invalid_grant")
    assert_no_tokens(kit)


# --- grant type and request shape ----------------------------------------------------------------------


async def test_unsupported_and_missing_grant_type(kit: Kit, base: TestClient) -> None:
    assert_json_error(await kit.token(base, {"grant_type": "password"}), "unsupported_grant_type")
    assert_json_error(await kit.token(base, {}), "invalid_request")
    assert_json_error(await kit.token(base, {"grant_type": "authorization_code"}), "invalid_request")


async def test_unknown_code(kit: Kit, base: TestClient) -> None:
    assert_json_error(await redeem(kit, base, "not-a-code", pkce_pair()[0]), "invalid_grant")
    assert_json_error(await redeem(kit, base, "x" * 300, pkce_pair()[0]), "invalid_grant")


async def test_token_endpoint_requires_post_form(kit: Kit, base: TestClient) -> None:
    assert (await kit.http.get("/token")).status_code == 405
    r = await kit.http.post("/token", json={"grant_type": "client_credentials", **base.auth_form()})
    assert_json_error(r, "invalid_request")


# --- refresh tokens: rotation and reuse detection -----------------------------------------------------


async def test_refresh_rotation_and_reuse_detection(kit: Kit, base: TestClient) -> None:
    code, verifier = await obtain_code(kit, base)
    first = (await redeem(kit, base, code, verifier)).json()
    r = await kit.token(base, {"grant_type": "refresh_token", "refresh_token": first["refresh_token"]})
    assert r.status_code == 200, r.text
    second = r.json()
    assert second["refresh_token"] != first["refresh_token"]
    assert (await introspect(kit, base, second["access_token"]))["active"] is True
    # reuse of the rotated token revokes the whole grant (RFC 9700 §4.14.2)
    r = await kit.token(base, {"grant_type": "refresh_token", "refresh_token": first["refresh_token"]})
    assert_json_error(r, "invalid_grant")
    for token in (first["access_token"], second["access_token"], second["refresh_token"]):
        assert (await introspect(kit, base, token))["active"] is False
    r = await kit.token(base, {"grant_type": "refresh_token", "refresh_token": second["refresh_token"]})
    assert_json_error(r, "invalid_grant")
    grants = await kit.store.grants.list_for_client(base.client_id)
    assert len(grants) == 1 and grants[0].revoked_at is not None


async def test_concurrent_refresh_yields_one_new_token(kit: Kit, base: TestClient) -> None:
    code, verifier = await obtain_code(kit, base)
    rt = (await redeem(kit, base, code, verifier)).json()["refresh_token"]
    results = await asyncio.gather(
        *(kit.token(base, {"grant_type": "refresh_token", "refresh_token": rt}) for _ in range(10))
    )
    assert sum(r.status_code == 200 for r in results) == 1
    for r in results:
        if r.status_code != 200:
            assert_json_error(r, "invalid_grant")  # concurrent use is treated as reuse


async def test_refresh_scope_can_narrow_not_widen(kit: Kit, base: TestClient) -> None:
    code, verifier = await obtain_code(kit, base, scope="openid profile")
    rt = (await redeem(kit, base, code, verifier)).json()["refresh_token"]
    r = await kit.token(base, {"grant_type": "refresh_token", "refresh_token": rt, "scope": "openid email"})
    assert_json_error(r, "invalid_scope")
    r = await kit.token(base, {"grant_type": "refresh_token", "refresh_token": rt, "scope": "profile"})
    assert r.status_code == 200 and r.json()["scope"] == "profile"


async def test_refresh_token_of_another_client(kit: Kit, base: TestClient) -> None:
    other = await kit.add_client(risk_tier="baseline")
    code, verifier = await obtain_code(kit, base)
    rt = (await redeem(kit, base, code, verifier)).json()["refresh_token"]
    r = await kit.token(other, {"grant_type": "refresh_token", "refresh_token": rt})
    assert_json_error(r, "invalid_grant")


async def test_revoking_a_refresh_token_revokes_the_grant(kit: Kit, base: TestClient) -> None:
    code, verifier = await obtain_code(kit, base)
    body = (await redeem(kit, base, code, verifier)).json()
    r = await kit.http.post("/revoke", data={**base.auth_form(), "token": body["refresh_token"]})
    assert r.status_code == 200
    assert (await introspect(kit, base, body["access_token"]))["active"] is False


# --- client credentials ---------------------------------------------------------------------------------


async def machine(kit: Kit, **meta: Any) -> TestClient:
    return await kit.add_client(
        risk_tier="baseline",
        grant_types=["client_credentials"],
        redirect_uris=[],
        scope="profile email",
        **meta,
    )


async def test_client_credentials_for_a_machine_client(kit: Kit) -> None:
    client = await machine(kit)
    assert client.metadata["client_kind"] == "machine"
    r = await kit.token(client, {"grant_type": "client_credentials", "scope": "profile"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["scope"] == "profile" and "refresh_token" not in body and "id_token" not in body
    assert (await introspect(kit, client, body["access_token"]))["active"] is True


async def test_client_credentials_refusals(kit: Kit, base: TestClient) -> None:
    client = await machine(kit)
    r = await kit.token(client, {"grant_type": "client_credentials", "scope": "openid"})
    assert_json_error(r, "invalid_scope")
    r = await kit.token(base, {"grant_type": "client_credentials"})
    assert_json_error(r, "unauthorized_client")
    r = await kit.token(client, {"grant_type": "authorization_code", "code": "x"})
    assert_json_error(r, "unauthorized_client")
    assert_no_tokens(kit)


async def test_client_credentials_scope_raising_the_tier(make: KitFactory) -> None:
    """A secret-authenticated machine client cannot get a scope whose tier requires private_key_jwt."""
    kit = await make(policy=Policy(scope_tiers={"payments": "high"}))
    client = await kit.add_client(
        risk_tier="baseline",
        grant_types=["client_credentials"],
        redirect_uris=[],
        token_endpoint_auth_method="client_secret_post",
        scope="profile payments",
    )
    r = await kit.token(client, {"grant_type": "client_credentials", "scope": "payments"})
    body = assert_json_error(r, "invalid_client", 401)
    assert "private_key_jwt" in body["error_description"]
    r = await kit.token(client, {"grant_type": "client_credentials", "scope": "profile"})
    assert r.status_code == 200


# --- client_secret_basic / client_secret_post (baseline only) ------------------------------------------


async def test_client_secret_basic(kit: Kit) -> None:
    client = await kit.add_client(risk_tier="baseline", token_endpoint_auth_method="client_secret_basic")
    assert client.secret
    code, verifier = await obtain_code(kit, client)
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT,
        "code_verifier": verifier,
    }
    r = await kit.http.post("/token", data=form, headers=client.basic())
    assert r.status_code == 200, r.text
    bad = "Basic " + base64.b64encode(f"{client.client_id}:wrong".encode()).decode()
    r = await kit.http.post(
        "/token", data={"grant_type": "refresh_token", "refresh_token": "x"}, headers={"Authorization": bad}
    )
    assert_json_error(r, "invalid_client", 401)
    assert r.headers["www-authenticate"].startswith("Basic")
    # the form client_id must agree with the Basic user (FAPI1 Baseline 5.2.2-19)
    r = await kit.http.post(
        "/token",
        data={"grant_type": "refresh_token", "refresh_token": "x", "client_id": "someone-else"},
        headers=client.basic(),
    )
    assert_json_error(r, "invalid_client", 401)


async def test_client_secret_post(kit: Kit) -> None:
    client = await kit.add_client(risk_tier="baseline", token_endpoint_auth_method="client_secret_post")
    code, verifier = await obtain_code(kit, client)
    assert (await redeem(kit, client, code, verifier)).status_code == 200
    # the registered method must be used: Basic is refused for a client_secret_post client
    r = await kit.http.post(
        "/token", data={"grant_type": "refresh_token", "refresh_token": "x"}, headers=client.basic()
    )
    assert_json_error(r, "invalid_client", 401)
    r = await kit.http.post(
        "/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": "x",
            "client_id": client.client_id,
            "client_secret": "wrong",
        },
    )
    assert_json_error(r, "invalid_client", 401)


# --- S54 / S56 / A55-A58: private_key_jwt ------------------------------------------------------------


async def token_with(kit: Kit, client: TestClient, form: dict[str, str]) -> httpx.Response:
    return await kit.http.post("/token", data={"grant_type": "client_credentials", **form})


@pytest.fixture
async def pkj(kit: Kit) -> TestClient:
    """A machine client authenticating with private_key_jwt (client credentials keep the focus on auth)."""
    return await machine(kit)


def assertion_form(client: TestClient, token: str) -> dict[str, str]:
    return {"client_assertion_type": ASSERTION_TYPE, "client_assertion": token}


async def test_missing_assertion(kit: Kit, pkj: TestClient) -> None:
    assert_json_error(await token_with(kit, pkj, {"client_id": pkj.client_id}), "invalid_client", 401)
    assert_json_error(await token_with(kit, pkj, {}), "invalid_client", 401)


_BAD_ASSERTIONS: list[tuple[str, dict[str, Any], tuple[str, ...]]] = [
    ("iss other", {"iss": "client-2"}, ()),
    ("sub other", {"sub": "client-2"}, ()),
    ("sub missing", {}, ("sub",)),
    ("iss missing", {}, ("iss",)),
    ("aud attacker", {"aud": "https://attacker-as.example/token"}, ()),
    ("aud trailing slash", {"aud": ISSUER + "/"}, ()),
    ("aud upper case", {"aud": ISSUER.upper()}, ()),
    ("aud empty array", {"aud": []}, ()),
    ("aud authorization endpoint", {"aud": ISSUER + "/authorize"}, ()),
    ("aud missing", {}, ("aud",)),
    ("exp missing", {}, ("exp",)),
    ("exp 5 min ago", {"exp": -300}, ()),
    ("exp 1 year ahead", {"exp": 31536000}, ()),
    ("exp string", {"exp": "9999999999"}, ()),
    ("iat 61 s ahead", {"iat": 61}, ()),
    ("nbf 61 s ahead", {"nbf": 61}, ()),
    ("jti missing", {}, ("jti",)),
    ("jti 10 KB", {"jti": "j" * 10_000}, ()),
    ("jti number", {"jti": 5}, ()),
]


@pytest.mark.parametrize(("case", "changes", "omit"), _BAD_ASSERTIONS, ids=[c[0] for c in _BAD_ASSERTIONS])
async def test_bad_assertion_claims(
    kit: Kit, pkj: TestClient, case: str, changes: dict[str, Any], omit: tuple[str, ...]
) -> None:
    t = now()
    claims: dict[str, Any] = {
        k: (t + v if k in ("exp", "iat", "nbf") and isinstance(v, int) else v) for k, v in changes.items()
    }
    token = pkj.assertion(omit=omit, **claims)
    assert_json_error(await token_with(kit, pkj, assertion_form(pkj, token)), "invalid_client", 401)
    assert_no_tokens(kit)


@pytest.mark.parametrize(
    "claims",
    [{"nbf": 8, "iat": 8}, {"aud": ISSUER + "/token"}, {"aud": [ISSUER, "https://other.example"]}],
    ids=["iat/nbf 8 s ahead", "aud token endpoint", "aud array with issuer"],
)
async def test_accepted_assertion_variants(kit: Kit, pkj: TestClient, claims: dict[str, Any]) -> None:
    t = now()
    claims = {k: (t + v if k in ("iat", "nbf") else v) for k, v in claims.items()}
    r = await token_with(kit, pkj, assertion_form(pkj, pkj.assertion(**claims)))
    assert r.status_code == 200, r.text


async def test_assertion_signed_with_wrong_keys(kit: Kit, pkj: TestClient) -> None:
    other = await machine(kit)
    attacker = generate_jwk("ES256", kid=pkj.key.kid)
    for token in (
        pkj.assertion(key=attacker),
        pkj.assertion(key=other.key),
        pkj.assertion(key=generate_jwk("ES256", kid="unknown")),
    ):
        assert_json_error(await token_with(kit, pkj, assertion_form(pkj, token)), "invalid_client", 401)


async def test_hs256_assertion_keyed_with_the_public_key(kit: Kit) -> None:
    rsa = keyring().c1_sig
    client = await machine(kit, alg="PS256", key=rsa)
    pem = cast(Any, rsa.key.raw_value).public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    t = now()
    claims = {"iss": client.client_id, "sub": client.client_id, "aud": ISSUER, "jti": "h1", "exp": t + 60}
    token = hmac_raw({"alg": "HS256", "kid": rsa.kid}, claims, pem)
    assert_json_error(await token_with(kit, client, assertion_form(client, token)), "invalid_client", 401)


async def test_request_object_typ_is_not_an_assertion(kit: Kit, pkj: TestClient) -> None:
    """S56.9 / RFC 9101 §10.8: a JWT typed as a request object cannot authenticate."""
    t = now()
    from jarmor.jose import sign_jws

    claims = {"iss": pkj.client_id, "sub": pkj.client_id, "aud": ISSUER, "jti": "t1", "exp": t + 60}
    token = sign_jws(claims, pkj.key, "ES256", typ="oauth-authz-req+jwt")
    assert_json_error(await token_with(kit, pkj, assertion_form(pkj, token)), "invalid_client", 401)


async def test_registered_assertion_alg_is_enforced(kit: Kit) -> None:
    ec, ed = generate_jwk("ES256", kid="ec"), generate_jwk("EdDSA", kid="ed")
    client = await machine(
        kit,
        key=ec,
        token_endpoint_auth_signing_alg="EdDSA",
        jwks={"keys": [ec.public_dict(), ed.public_dict()]},
    )
    r = await token_with(kit, client, assertion_form(client, client.assertion()))
    assert_json_error(r, "invalid_client", 401)
    r = await token_with(kit, client, assertion_form(client, client.assertion(key=ed, alg="EdDSA")))
    assert r.status_code == 200, r.text


async def test_rs256_assertion_refused_in_high(kit: Kit) -> None:
    """S56.8: FAPI*EnsureSignedClientAssertionWithRS256Fails."""
    rsa = keyring().c1_rsa  # an RSA key without an alg member: usable for RS256 and PS256
    client = await kit.add_client(
        risk_tier="high",
        alg="PS256",
        key=rsa,
        grant_types=["client_credentials"],
        redirect_uris=[],
        scope="profile",
    )
    r = await token_with(kit, client, assertion_form(client, client.assertion(alg="RS256")))
    assert_json_error(r, "invalid_client", 401)
    r = await token_with(kit, client, assertion_form(client, client.assertion()))
    assert r.status_code == 200, r.text


async def test_assertion_replay(kit: Kit, pkj: TestClient) -> None:
    """S56.7 / A57: an assertion is accepted once, across endpoints."""
    token = pkj.assertion()
    assert (await token_with(kit, pkj, assertion_form(pkj, token))).status_code == 200
    assert_json_error(await token_with(kit, pkj, assertion_form(pkj, token)), "invalid_client", 401)
    r = await kit.http.post("/introspect", data={**assertion_form(pkj, token), "token": "x"})
    assert_json_error(r, "invalid_client", 401)


async def test_same_jti_from_another_client_is_accepted(kit: Kit, pkj: TestClient) -> None:
    other = await machine(kit)
    assert (await token_with(kit, pkj, assertion_form(pkj, pkj.assertion(jti="shared")))).status_code == 200
    r = await token_with(kit, other, assertion_form(other, other.assertion(jti="shared")))
    assert r.status_code == 200


async def test_invalid_assertion_leaves_no_jti_mark(kit: Kit, pkj: TestClient) -> None:
    """A57 jti poisoning: a badly signed assertion carrying a future jti does not block the real one."""
    attacker = generate_jwk("ES256", kid=pkj.key.kid)
    poisoned = pkj.assertion(jti="future", key=attacker)
    assert_json_error(await token_with(kit, pkj, assertion_form(pkj, poisoned)), "invalid_client", 401)
    expired = pkj.assertion(jti="future2", exp=now() - 300)
    assert_json_error(await token_with(kit, pkj, assertion_form(pkj, expired)), "invalid_client", 401)
    for jti in ("future", "future2"):
        r = await token_with(kit, pkj, assertion_form(pkj, pkj.assertion(jti=jti)))
        assert r.status_code == 200


async def test_authentication_method_confusion(kit: Kit, pkj: TestClient) -> None:
    """A58: one method per request (invalid_request); the registered method only (invalid_client)."""
    token = pkj.assertion()
    basic = {"Authorization": "Basic " + base64.b64encode(f"{pkj.client_id}:x".encode()).decode()}
    r = await kit.http.post(
        "/token", data={"grant_type": "client_credentials", **assertion_form(pkj, token)}, headers=basic
    )
    assert_json_error(r, "invalid_request")
    r = await token_with(kit, pkj, {**assertion_form(pkj, pkj.assertion()), "client_secret": "x"})
    assert_json_error(r, "invalid_request")
    r = await kit.http.post("/token", data={"grant_type": "client_credentials"}, headers=basic)
    assert_json_error(r, "invalid_client", 401)
    for kind in (ASSERTION_TYPE + " ", "urn:ietf:params:oauth:client-assertion-type:saml2-bearer", None):
        form = {"client_assertion": pkj.assertion()}
        if kind is not None:
            form["client_assertion_type"] = kind
        assert_json_error(await token_with(kit, pkj, form), "invalid_client", 401)
    query = f"grant_type=client_credentials&client_assertion_type={ASSERTION_TYPE}"
    query += f"&client_assertion={pkj.assertion()}&client_assertion={pkj.assertion()}"
    r = await kit.http.post(
        "/token", content=query, headers={"content-type": "application/x-www-form-urlencoded"}
    )
    assert_json_error(r, "invalid_request")


async def test_form_client_id_must_match_the_assertion(kit: Kit, pkj: TestClient) -> None:
    """S54 / FAPI1 Baseline 5.2.2-19: mismatched client identifiers are invalid_client."""
    other = await machine(kit)
    r = await token_with(kit, pkj, {**assertion_form(pkj, pkj.assertion()), "client_id": other.client_id})
    assert_json_error(r, "invalid_client", 401)


async def test_client_registered_for_private_key_jwt_cannot_use_a_secret(kit: Kit, pkj: TestClient) -> None:
    r = await token_with(kit, pkj, {"client_id": pkj.client_id, "client_secret": "guess"})
    assert_json_error(r, "invalid_client", 401)


async def test_disabled_client_cannot_authenticate(kit: Kit, pkj: TestClient) -> None:
    rec = await kit.store.clients.get(pkj.client_id)
    assert rec is not None
    rec.disabled_at = now()
    rec.updated_at += 1
    await kit.store.clients.update(rec)
    kit.server.directory.invalidate(pkj.client_id)
    r = await token_with(kit, pkj, assertion_form(pkj, pkj.assertion()))
    assert_json_error(r, "invalid_client", 401)


async def test_verifier_without_a_stored_challenge_is_refused(kit: Kit, base: TestClient) -> None:
    """A50 (RFC 9700 §4.8): PKCE is always required here, so the code fixture is set up directly."""
    from jarmor.protocol.authorization import AuthorizationRequest
    from jarmor.protocol.tokens import issue_code

    req = AuthorizationRequest(
        client_id=base.client_id, redirect_uri=REDIRECT, response_type="code", response_mode="query",
        scope=("openid",), state=None, nonce=None, code_challenge="", code_challenge_method="",
        tier="baseline", tier_reasons=(),
    )
    issued = await issue_code(kit.env, req, subject="alice", auth_time=now(), flow_id="f")
    assert_json_error(await redeem(kit, base, issued.code, pkce_pair()[0]), "invalid_grant")
    assert_no_tokens(kit)


async def test_introspection_and_revocation_are_per_client(kit: Kit, base: TestClient) -> None:
    """RFC 7662 / RFC 7009: another client learns nothing about, and cannot revoke, this client's tokens."""
    other = await kit.add_client(risk_tier="baseline")
    code, verifier = await obtain_code(kit, base)
    body = (await redeem(kit, base, code, verifier)).json()
    assert await introspect(kit, other, body["access_token"]) == {"active": False}
    r = await kit.http.post("/revoke", data={**other.auth_form(), "token": body["refresh_token"]})
    assert r.status_code == 200
    assert (await introspect(kit, base, body["access_token"]))["active"] is True
    r = await kit.http.post("/introspect", data={"token": body["access_token"], "client_id": base.client_id})
    assert_json_error(r, "invalid_client", 401)
