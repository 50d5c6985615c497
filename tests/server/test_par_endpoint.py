"""The PAR endpoint (RFC 9126) and the resolution of its request_uri at the authorization endpoint.

Checklist S19-S31, S34 and attack catalog group P (A42-A48). PAR errors are JSON with no-store and never
a redirect; a request_uri that cannot be resolved is an error page (no trusted redirect URI exists yet).
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest

from jarmor.jose import generate_jwk
from jarmor.jose.testing import segment
from jarmor.protocol.authorization import AuthorizationRequest, pushed_request_key
from tests.kit import ASSERTION_TYPE, ISSUER, REDIRECT, Clock, Kit, TestClient, ephemeral_keys

from .conftest import KitFactory
from .support import (
    PAR_NS,
    RO_JTI_NS,
    assert_error_page,
    assert_json_error,
    assert_no_code,
    assert_redirect_error,
    code_from,
    now,
    plain_request,
    push,
    redeem,
)

URN = "urn:ietf:params:oauth:request_uri:"
REDIRECT2 = "http://127.0.0.1:9999/cb2"


@pytest.fixture
async def base(kit: Kit) -> TestClient:
    return await kit.add_client(risk_tier="baseline")


@pytest.fixture
async def high(kit: Kit) -> TestClient:
    return await kit.add_client(risk_tier="high")


async def par_ro(
    kit: Kit,
    client: TestClient,
    *,
    form: dict[str, str] | None = None,
    assertion: dict[str, Any] | None = None,
    **claims: Any,
) -> Any:
    ro, _ctx = client.request_object(**claims)
    return await kit.par(
        client, {"request": ro, "client_id": client.client_id, **(form or {})}, **(assertion or {})
    )


def assert_nothing_pushed(kit: Kit) -> None:
    assert ephemeral_keys(kit, PAR_NS) == [], "no request_uri may be minted"


async def stored(kit: Kit, request_uri: str, client_id: str) -> AuthorizationRequest:
    raw = await kit.store.ephemeral.get("par", pushed_request_key(client_id, request_uri.removeprefix(URN)))
    assert raw is not None
    return AuthorizationRequest.from_json(raw)


# --- S30 / S20: the success response -------------------------------------------------------------------


async def test_success_response(kit: Kit, high: TestClient) -> None:
    ro, _ = high.request_object(response_mode="jwt")
    r = await kit.par(high, {"request": ro, "client_id": high.client_id})
    assert r.status_code == 201
    assert r.headers["content-type"].startswith("application/json")
    assert "no-store" in r.headers["cache-control"]
    body = r.json()
    assert set(body) == {"request_uri", "expires_in"}
    assert isinstance(body["expires_in"], int) and 5 <= body["expires_in"] < 600
    ref = body["request_uri"].removeprefix(URN)
    assert body["request_uri"].startswith(URN)
    assert re.fullmatch(r"[A-Za-z0-9_-]{43,}", ref), "at least 256 bits of base64url randomness (S20, S57)"


@pytest.mark.signs_in
async def test_only_client_id_and_request_uri_are_needed(kit: Kit, high: TestClient) -> None:
    """S14 / S31: FAPI*ParWithoutDuplicateParameters."""
    uri, ctx = await push(kit, high, response_mode="jwt")
    params = code_from(kit, high, await kit.authorize({"client_id": high.client_id, "request_uri": uri}))
    assert params["state"] == ctx["state"]
    t = await redeem(kit, high, params["code"], ctx["code_verifier"])
    assert t.status_code == 200, t.text


async def test_plain_form_parameters_for_a_baseline_client(kit: Kit, base: TestClient) -> None:
    params, verifier = plain_request(base)
    r = await kit.par(base, params)
    assert r.status_code == 201, r.text
    got = code_from(
        kit, base, await kit.authorize({"client_id": base.client_id, "request_uri": r.json()["request_uri"]})
    )
    assert (await redeem(kit, base, got["code"], verifier)).status_code == 200


@pytest.mark.parametrize(("lifetime", "expected"), [(30, 30), (5, 5), (86400, 90)])
async def test_expires_in_follows_the_request_object_exp(
    kit: Kit, base: TestClient, lifetime: int, expected: int
) -> None:
    """A48: never beyond the request object's exp; clamped to the tier's PAR lifetime (90 s)."""
    t = now()
    r = await par_ro(kit, base, exp=t + lifetime, nbf=t, iat=t)
    if lifetime > 3600:
        assert_json_error(r, "invalid_request_object")  # the object itself lives too long
        r = await par_ro(kit, base, exp=t + 3000)
        expected = 90
    assert r.status_code == 201, r.text
    assert expected - 1 <= r.json()["expires_in"] <= expected


# --- S24: method, content type, size -------------------------------------------------------------------


async def test_get_is_405(kit: Kit, base: TestClient) -> None:
    params, _ = plain_request(base)
    r = await kit.http.get("/par", params=params)
    assert r.status_code == 405
    assert_nothing_pushed(kit)


async def test_json_body_is_invalid_request(kit: Kit, base: TestClient) -> None:
    params, _ = plain_request(base)
    r = await kit.http.post("/par", json={**params, **base.auth_form()})
    assert_json_error(r, "invalid_request")
    assert_nothing_pushed(kit)


async def test_oversized_body_is_413(kit: Kit, base: TestClient) -> None:
    params, _ = plain_request(base, state="s" * 70_000)
    r = await kit.par(base, params)
    assert r.status_code == 413
    assert_nothing_pushed(kit)


# --- S25 / S26 / A46 / A55 / A56: client authentication at PAR -----------------------------------------


async def test_no_client_authentication_is_401(kit: Kit, base: TestClient) -> None:
    params, _ = plain_request(base)
    r = await kit.http.post("/par", data=params)  # client_id only, but the client uses private_key_jwt
    assert_json_error(r, "invalid_client", 401)
    r = await kit.http.post("/par", data={k: v for k, v in params.items() if k != "client_id"})
    assert_json_error(r, "invalid_client", 401)
    assert_nothing_pushed(kit)


@pytest.mark.parametrize(
    "assertion",
    [
        {"iss": "client-2"},
        {"sub": "client-2"},
        {"aud": "https://attacker.example/token"},
        {"aud": ISSUER + "/"},
        {"exp": -300},
        {"iat": 61},
        {"nbf": 61},
    ],
    ids=["wrong iss", "wrong sub", "wrong aud", "aud trailing slash", "expired", "iat future", "nbf future"],
)
async def test_bad_client_assertion_is_401(kit: Kit, base: TestClient, assertion: dict[str, Any]) -> None:
    t = now()
    claims = {k: (t + v if k in ("exp", "iat", "nbf") else v) for k, v in assertion.items()}
    r = await par_ro(kit, base, assertion=claims)
    assert_json_error(r, "invalid_client", 401)
    assert_nothing_pushed(kit)
    assert ephemeral_keys(kit, RO_JTI_NS) == []


async def test_assertion_signed_by_an_attacker_is_401(kit: Kit, base: TestClient) -> None:
    attacker = generate_jwk("ES256", kid=base.key.kid)
    r = await par_ro(kit, base, assertion={"key": attacker})
    assert_json_error(r, "invalid_client", 401)


async def test_assertion_for_another_client_with_form_client_id(kit: Kit, base: TestClient) -> None:
    other = await kit.add_client(risk_tier="baseline")
    ro, _ = base.request_object()
    form = {"request": ro, "client_id": base.client_id, **other.auth_form()}
    assert_json_error(await kit.http.post("/par", data=form), "invalid_client", 401)


@pytest.mark.parametrize("which", ["issuer", "token", "par", "array"])
async def test_assertion_audiences_accepted_below_high(kit: Kit, base: TestClient, which: str) -> None:
    """S26 core/fapi1: the issuer, the token endpoint, the PAR endpoint, or an array containing one."""
    aud: Any = {
        "issuer": ISSUER,
        "token": ISSUER + "/token",
        "par": ISSUER + "/par",
        "array": [ISSUER, "https://dummy.example"],
    }[which]
    r = await par_ro(kit, base, assertion={"aud": aud})
    assert r.status_code == 201, r.text


@pytest.mark.parametrize("aud", [ISSUER + "/par", ISSUER + "/token", [ISSUER], [ISSUER, "https://x.example"]])
async def test_high_tier_assertion_audience_is_the_issuer_string_only(
    kit: Kit, high: TestClient, aud: Any
) -> None:
    """S26 fapi2 / A55: only the issuer, as a JSON string."""
    r = await par_ro(kit, high, response_mode="jwt", assertion={"aud": aud})
    assert_json_error(r, "invalid_client", 401)
    r = await par_ro(kit, high, response_mode="jwt", assertion={"aud": ISSUER})
    assert r.status_code == 201


# --- S27 / S12 / A44: request_uri never at PAR ----------------------------------------------------------


async def test_request_uri_form_parameter_is_invalid_request(kit: Kit, base: TestClient) -> None:
    r = await par_ro(kit, base, form={"request_uri": URN + "abc"})
    assert_json_error(r, "invalid_request")
    assert_nothing_pushed(kit)


async def test_request_uri_claim_is_invalid_request_object(kit: Kit, base: TestClient) -> None:
    r = await par_ro(kit, base, request_uri=URN + "abc")
    assert_json_error(r, "invalid_request_object")
    assert_nothing_pushed(kit)


# --- S28 / S34 / A47 / S33 / S37: full validation, JSON only -------------------------------------------


@pytest.mark.parametrize("uri", ["https://evil.example/cb", "javascript:alert(1)", REDIRECT + "/x"])
async def test_unregistered_redirect_uri_is_refused(kit: Kit, base: TestClient, uri: str) -> None:
    r = await par_ro(kit, base, redirect_uri=uri)
    assert_json_error(r, "invalid_request")
    params, _ = plain_request(base, redirect_uri=uri)
    assert_json_error(await kit.par(base, params), "invalid_request")
    assert_nothing_pushed(kit)


async def test_public_client_unregistered_redirect_uri_is_refused(kit: Kit) -> None:
    public = await kit.add_client(risk_tier="baseline", token_endpoint_auth_method="none")
    params, _ = plain_request(public, redirect_uri="https://evil.example/cb")
    assert_json_error(await kit.par(public, params), "invalid_request")


@pytest.mark.parametrize("rt", ["code id_token", "token"])
async def test_response_type_other_than_code(kit: Kit, base: TestClient, rt: str) -> None:
    assert_json_error(await par_ro(kit, base, response_type=rt), "unsupported_response_type")


@pytest.mark.parametrize(
    ("omit", "change"),
    [(("code_challenge",), {}), (("code_challenge_method",), {}), ((), {"code_challenge_method": "plain"})],
    ids=["no challenge", "no method", "plain"],
)
async def test_pkce_required_at_par(
    kit: Kit, base: TestClient, omit: tuple[str, ...], change: dict[str, Any]
) -> None:
    assert_json_error(await par_ro(kit, base, omit=omit, **change), "invalid_request")
    assert_nothing_pushed(kit)
    assert ephemeral_keys(kit, RO_JTI_NS) == []


# --- S29 / A30 / A45: request objects at PAR --------------------------------------------------------------


@pytest.mark.parametrize(
    "claims",
    [
        {"aud": ISSUER + "/par"},
        {"aud": "https://attacker.example"},
        {"exp": -120},
        {"iss": "client-2"},
        {"client_id": "client-2"},
        {"nbf": 120},
    ],
    ids=["aud par endpoint", "bad aud", "expired", "iss other", "client_id other", "nbf future"],
)
async def test_bad_request_object_at_par(kit: Kit, base: TestClient, claims: dict[str, Any]) -> None:
    t = now()
    claims = {k: (t + v if k in ("exp", "nbf") else v) for k, v in claims.items()}
    ro, ctx = base.request_object(**claims)
    r = await kit.par(base, {"request": ro, "client_id": base.client_id})
    assert_json_error(r, "invalid_request_object")
    assert_nothing_pushed(kit)
    # no jti replay mark: the same jti in a valid object is accepted afterwards
    assert (await par_ro(kit, base, jti=ctx["jti"])).status_code == 201


async def test_unsigned_and_tampered_request_objects_at_par(kit: Kit, base: TestClient) -> None:
    ro, ctx = base.request_object()
    claims = {k: v for k, v in ctx.items() if k != "code_verifier"}
    for token in (
        f"{segment({'alg': 'none'})}.{segment(claims)}.",
        ro.rsplit(".", 1)[0] + "." + "A" * 86,
        f"{ro.split('.')[0]}.{segment({**claims, 'scope': 'openid profile'})}.{ro.split('.')[2]}",
    ):
        r = await kit.par(base, {"request": token, "client_id": base.client_id})
        assert_json_error(r, "invalid_request_object")
    assert_nothing_pushed(kit)


async def test_request_object_for_another_client(kit: Kit, base: TestClient) -> None:
    """A45: the object is signed by the authenticated client but names another client."""
    other = await kit.add_client(risk_tier="baseline")
    choices: list[dict[str, Any]] = [
        {"client_id": other.client_id},
        {"iss": other.client_id},
        {"client_id": other.client_id, "iss": other.client_id},
    ]
    for claims in choices:
        assert_json_error(await par_ro(kit, base, **claims), "invalid_request_object")


async def test_stray_form_parameters_are_ignored(kit: Kit, base: TestClient) -> None:
    """A45: a request object plus outer fields: only the object's values are stored."""
    r = await par_ro(
        kit,
        base,
        form={
            "redirect_uri": "https://evil.example/cb",
            "scope": "openid profile",
            "state": "outer",
            "response_mode": "fragment",
        },
        state="inner",
    )
    assert r.status_code == 201, r.text
    req = await stored(kit, r.json()["request_uri"], base.client_id)
    assert (req.redirect_uri, req.scope, req.state, req.response_mode) == (
        REDIRECT,
        ("openid",),
        "inner",
        "query",
    )


async def test_same_request_object_pushed_twice(kit: Kit, base: TestClient) -> None:
    """A31: the second push of one object (same jti) is refused."""
    ro, _ = base.request_object()
    assert (await kit.par(base, {"request": ro, "client_id": base.client_id})).status_code == 201
    r = await kit.par(base, {"request": ro, "client_id": base.client_id})
    assert_json_error(r, "invalid_request_object")
    assert len(ephemeral_keys(kit, PAR_NS)) == 1


async def test_unsigned_push_for_a_client_requiring_signed_objects(kit: Kit) -> None:
    """S22 / A27: RFC 9126 §2.3 — invalid_request."""
    elevated = await kit.add_client(risk_tier="elevated")
    params, _ = plain_request(elevated, response_mode="jwt")
    assert_json_error(await kit.par(elevated, params), "invalid_request")
    assert_nothing_pushed(kit)


async def test_concurrent_push_of_one_request_object(kit: Kit, base: TestClient) -> None:
    ro, _ = base.request_object()
    results = await asyncio.gather(
        *(kit.par(base, {"request": ro, "client_id": base.client_id}) for _ in range(20))
    )
    assert sorted(r.status_code for r in results) == [201] + [400] * 19
    assert len(ephemeral_keys(kit, PAR_NS)) == 1


# --- S19 / A42 / A43: resolving the request_uri at the authorization endpoint ---------------------------


@pytest.mark.parametrize("uri", [URN + "unknown", URN, URN + "x" * 200])
async def test_unknown_request_uri_is_page(kit: Kit, base: TestClient, uri: str) -> None:
    r = await kit.authorize({"client_id": base.client_id, "request_uri": uri})
    assert_error_page(r, "invalid_request_uri")


async def test_expired_request_uri_is_page(kit: Kit, base: TestClient, clock: Clock) -> None:
    uri, _ = await push(kit, base)
    clock.advance(91)
    assert_error_page(
        await kit.authorize({"client_id": base.client_id, "request_uri": uri}), "invalid_request_uri"
    )
    assert_no_code(kit)


async def test_request_uri_of_another_client_is_page_and_not_consumed(kit: Kit, base: TestClient) -> None:
    """S19.3 / A43: bound to the pushing client; a mismatched attempt does not burn the victim's entry."""
    other = await kit.add_client(risk_tier="baseline")
    uri, ctx = await push(kit, base)
    assert_error_page(
        await kit.authorize({"client_id": other.client_id, "request_uri": uri}), "invalid_request_uri"
    )
    assert_no_code(kit)
    params = code_from(kit, base, await kit.authorize({"client_id": base.client_id, "request_uri": uri}))
    assert params["state"] == ctx["state"]


async def test_request_uri_without_client_id_is_page(kit: Kit, base: TestClient) -> None:
    uri, _ = await push(kit, base)
    assert_error_page(await kit.authorize({"request_uri": uri}), "invalid_request")
    code_from(kit, base, await kit.authorize({"client_id": base.client_id, "request_uri": uri}))


async def test_request_uri_reused_after_a_code_was_issued(kit: Kit, base: TestClient) -> None:
    """S19.4 / A42: one code per PAR entry."""
    uri, _ = await push(kit, base)
    code_from(kit, base, await kit.authorize({"client_id": base.client_id, "request_uri": uri}))
    assert_error_page(
        await kit.authorize({"client_id": base.client_id, "request_uri": uri}), "invalid_request_uri"
    )
    assert len(ephemeral_keys(kit, "code")) == 1


async def test_request_uri_is_consumed_at_first_visit(make: KitFactory) -> None:
    """Design choice (stricter than S19.5, a FAPI WARNING): the entry is consumed when /authorize first
    loads it, so reloading the sign-in page before authentication completes shows an error page."""
    kit = await make(auto_approve=None)
    client = await kit.add_client(risk_tier="baseline")
    uri, _ = await push(kit, client)
    first = await kit.authorize({"client_id": client.client_id, "request_uri": uri})
    assert first.status_code == 200 and "csrf_token" in first.text
    assert_error_page(
        await kit.authorize({"client_id": client.client_id, "request_uri": uri}), "invalid_request_uri"
    )


async def test_concurrent_use_of_one_request_uri(kit: Kit, base: TestClient) -> None:
    """S19.6: 20 concurrent visits, exactly one code."""
    uri, _ = await push(kit, base)
    results = await asyncio.gather(
        *(kit.authorize({"client_id": base.client_id, "request_uri": uri}) for _ in range(20))
    )
    assert sum(r.status_code == 303 for r in results) == 1
    assert sum(r.status_code == 400 for r in results) == 19
    assert len(ephemeral_keys(kit, "code")) == 1


async def test_outer_parameters_beside_request_uri_are_ignored(kit: Kit, base: TestClient) -> None:
    """S31: the stored request is used, never live query parameters."""
    uri, ctx = await push(kit, base, state="pushed")
    r = await kit.authorize(
        {
            "client_id": base.client_id,
            "request_uri": uri,
            "state": "live",
            "redirect_uri": "https://evil.example/cb",
            "response_mode": "fragment",
            "scope": "openid profile",
        }
    )
    params = code_from(kit, base, r)
    assert r.headers["location"].startswith(REDIRECT + "?")
    assert params["state"] == "pushed"
    t = await redeem(kit, base, params["code"], ctx["code_verifier"])
    assert t.json()["scope"] == "openid"


async def test_pushed_request_is_revalidated_against_the_current_registration(kit: Kit) -> None:
    """RFC 9126 §4 / §7.4: a redirect URI removed from the registration after the push is not used."""
    client = await kit.add_client(risk_tier="baseline", redirect_uris=[REDIRECT, REDIRECT2])
    uri, _ = await push(kit, client, redirect_uri=REDIRECT2)
    rec = await kit.store.clients.get(client.client_id)
    assert rec is not None
    rec.metadata["redirect_uris"] = [REDIRECT]
    rec.updated_at += 1
    await kit.store.clients.update(rec)
    kit.server.directory.invalidate(client.client_id)
    assert_error_page(
        await kit.authorize({"client_id": client.client_id, "request_uri": uri}), "invalid_request_uri"
    )
    assert_no_code(kit)


async def test_pushed_request_rechecked_when_the_tier_changes(kit: Kit) -> None:
    """RFC 9126 §7.4: a client raised to elevated after pushing a plain-mode request gets an error."""
    client = await kit.add_client(risk_tier="baseline")
    uri, ctx = await push(kit, client)
    rec = await kit.store.clients.get(client.client_id)
    assert rec is not None
    rec.metadata.update(
        risk_tier="elevated", response_modes=["jwt", "query.jwt"], require_signed_request_object=True
    )
    rec.updated_at += 1
    await kit.store.clients.update(rec)
    kit.server.directory.invalidate(client.client_id)
    r = await kit.authorize({"client_id": client.client_id, "request_uri": uri})
    assert_redirect_error(kit, r, "invalid_request", state=ctx["state"])
    assert_no_code(kit)


async def test_assertion_type_must_be_jwt_bearer(kit: Kit, base: TestClient) -> None:
    ro, _ = base.request_object()
    form = {
        "request": ro,
        "client_id": base.client_id,
        "client_assertion": base.assertion(),
        "client_assertion_type": ASSERTION_TYPE + " ",
    }
    assert_json_error(await kit.http.post("/par", data=form), "invalid_client", 401)
