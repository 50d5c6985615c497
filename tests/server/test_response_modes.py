"""Authorization responses in every response mode (OAuth Multiple Response Types, Form Post, JARM, RFC 9207).

Checklist S40-S44, S46: plain modes carry ``iss`` equal to the issuer; JWT modes carry only ``response``
outside, and inside it iss/aud/exp/iat plus the response or error parameters, signed with the client's
registered algorithm by a key in the server's JWKS, with a lifetime within [10 s, 600 s].
"""

from __future__ import annotations

import re
from html import unescape
from typing import Any

import httpx
import pytest

from jarmor.jose import peek_header
from tests.kit import ISSUER, REDIRECT, Kit, TestClient

from .support import assert_redirect_error, plain_request, redeem, split_location, verify_jarm

JARM_CLAIMS = {"iss", "aud", "exp", "iat", "code", "state"}


def form_fields(r: httpx.Response) -> tuple[str, dict[str, str]]:
    """The action and hidden fields of a form_post page, checked for the Form Post security headers."""
    assert r.status_code == 200, r.text[:300]
    assert r.headers["content-type"].startswith("text/html")
    assert "no-store" in r.headers["cache-control"] and "no-cache" in r.headers["cache-control"]
    assert "location" not in r.headers
    assert "form-action 'self' http://127.0.0.1:9999" in r.headers["content-security-policy"]
    action = re.search(r'<form method="post" action="([^"]+)"', r.text)
    assert action
    fields = {unescape(n): unescape(v) for n, v in re.findall(r'name="([^"]*)" value="([^"]*)"', r.text)}
    return unescape(action.group(1)), fields


@pytest.fixture
async def base(kit: Kit) -> TestClient:
    return await kit.add_client(risk_tier="baseline")


@pytest.fixture
async def elev(kit: Kit) -> TestClient:
    return await kit.add_client(risk_tier="elevated")


# --- plain modes: RFC 9207 iss --------------------------------------------------------------------------


@pytest.mark.parametrize(("mode", "sep"), [("query", "?"), ("fragment", "#"), (None, "?")])
async def test_plain_redirect_modes(kit: Kit, base: TestClient, mode: str | None, sep: str) -> None:
    params, verifier = plain_request(base, response_mode=mode)
    r = await kit.authorize(params)
    assert r.status_code == 303
    uri, got_sep, got = split_location(r)
    assert (uri, got_sep) == (REDIRECT, sep)
    assert set(got) == {"code", "state", "iss"}
    assert got["iss"] == ISSUER == (await kit.http.get("/.well-known/openid-configuration")).json()["issuer"]
    assert got["state"] == params["state"]
    assert (await redeem(kit, base, got["code"], verifier)).status_code == 200


async def test_form_post_mode(kit: Kit, base: TestClient) -> None:
    params, verifier = plain_request(base, response_mode="form_post")
    action, fields = form_fields(await kit.authorize(params))
    assert action == REDIRECT
    assert set(fields) == {"code", "state", "iss"} and fields["iss"] == ISSUER
    assert (await redeem(kit, base, fields["code"], verifier)).status_code == 200


@pytest.mark.parametrize(("mode", "sep"), [("query", "?"), ("fragment", "#")])
async def test_plain_error_carries_iss_and_state(kit: Kit, base: TestClient, mode: str, sep: str) -> None:
    params, _ = plain_request(base, response_mode=mode, scope="openid nope")
    got = assert_redirect_error(
        kit, await kit.authorize(params), "invalid_scope", state=params["state"], separator=sep
    )
    assert got["error_description"]


async def test_form_post_error(kit: Kit, base: TestClient) -> None:
    params, _ = plain_request(base, response_mode="form_post", scope="openid nope")
    _action, fields = form_fields(await kit.authorize(params))
    assert (
        fields["error"] == "invalid_scope" and fields["iss"] == ISSUER and fields["state"] == params["state"]
    )


async def test_form_post_escapes_values(kit: Kit, base: TestClient) -> None:
    state = '"><script>alert(1)</script>'
    params, _ = plain_request(base, response_mode="form_post", state=state)
    r = await kit.authorize(params)
    assert "<script>alert(1)" not in r.text
    assert form_fields(r)[1]["state"] == state


# --- JWT modes (JARM) -----------------------------------------------------------------------------------


async def jarm_response(
    kit: Kit, client: TestClient, mode: str | None, **claims: Any
) -> tuple[httpx.Response, dict[str, str]]:
    if mode:
        claims["response_mode"] = mode
    ro, ctx = client.request_object(**claims)
    r = await kit.authorize({"client_id": client.client_id, "request": ro})
    return r, ctx


@pytest.mark.parametrize(
    ("mode", "sep"), [("jwt", "?"), ("query.jwt", "?"), ("fragment.jwt", "#"), (None, "?")]
)
async def test_jarm_redirect_modes(kit: Kit, elev: TestClient, mode: str | None, sep: str) -> None:
    r, ctx = await jarm_response(kit, elev, mode)
    assert r.status_code == 303
    uri, got_sep, outside = split_location(r)
    assert (uri, got_sep) == (REDIRECT, sep)
    assert set(outside) == {"response"}, "S41: iss and everything else only inside the JWT"
    claims = verify_jarm(kit, elev, outside["response"])
    assert set(claims) == JARM_CLAIMS
    assert isinstance(claims["aud"], str)
    assert claims["state"] == ctx["state"]
    assert claims["iat"] <= kit.env.now() < claims["exp"]
    assert (await redeem(kit, elev, claims["code"], ctx["code_verifier"])).status_code == 200


async def test_form_post_jwt_mode(kit: Kit, elev: TestClient) -> None:
    r, ctx = await jarm_response(kit, elev, "form_post.jwt")
    action, fields = form_fields(r)
    assert action == REDIRECT and set(fields) == {"response"}
    claims = verify_jarm(kit, elev, fields["response"])
    assert set(claims) == JARM_CLAIMS and claims["state"] == ctx["state"]


@pytest.mark.parametrize("mode", ["jwt", "query.jwt", "fragment.jwt", "form_post.jwt"])
async def test_jarm_errors_are_inside_the_jwt(kit: Kit, elev: TestClient, mode: str) -> None:
    """S46: an error after the redirect URI is verified travels inside the JARM JWT with state."""
    r, ctx = await jarm_response(kit, elev, mode, scope="openid nope")
    if mode == "form_post.jwt":
        _action, fields = form_fields(r)
        assert set(fields) == {"response"}
        claims = verify_jarm(kit, elev, fields["response"])
    else:
        sep = "#" if mode == "fragment.jwt" else "?"
        claims = assert_redirect_error(kit, r, "invalid_scope", client=elev, separator=sep)
    assert claims["error"] == "invalid_scope" and claims["state"] == ctx["state"]
    assert set(claims) <= {"iss", "aud", "exp", "iat", "error", "error_description", "state"}


async def test_jarm_without_state(kit: Kit, elev: TestClient) -> None:
    r, _ = await jarm_response(kit, elev, "jwt", omit=("state",))
    claims = verify_jarm(kit, elev, split_location(r)[2]["response"])
    assert "state" not in claims


async def test_jarm_is_signed_with_the_registered_alg(kit: Kit) -> None:
    """S44: the client's authorization_signed_response_alg; the high tier's default is PS256 (not RS256)."""
    for tier, registered, expected in (
        ("high", None, "PS256"),
        ("elevated", "EdDSA", "EdDSA"),
        ("baseline", None, "RS256"),
    ):
        client = await kit.add_client(risk_tier=tier, authorization_signed_response_alg=registered)
        assert client.metadata["authorization_signed_response_alg"] == expected
        ro, _ = client.request_object(response_mode="jwt")
        if tier == "high":
            pushed = await kit.par(client, {"request": ro, "client_id": client.client_id})
            r = await kit.authorize(
                {"client_id": client.client_id, "request_uri": pushed.json()["request_uri"]}
            )
        else:
            r = await kit.authorize({"client_id": client.client_id, "request": ro})
        token = split_location(r)[2]["response"]
        assert peek_header(token)["alg"] == expected
        verify_jarm(kit, client, token)


async def test_plain_mode_for_a_baseline_client_that_asks_for_jarm(kit: Kit, base: TestClient) -> None:
    """JARM is available in every tier; a baseline client may ask for it in a plain request."""
    params, _ = plain_request(base, response_mode="jwt")
    r = await kit.authorize(params)
    assert set(split_location(r)[2]) == {"response"}


# --- response_mode validation ------------------------------------------------------------------------------


async def test_unknown_response_mode(kit: Kit, base: TestClient) -> None:
    params, _ = plain_request(base, response_mode="web_message")
    assert_redirect_error(kit, await kit.authorize(params), "invalid_request", state=params["state"])


async def test_response_mode_not_registered_by_the_client(kit: Kit) -> None:
    client = await kit.add_client(risk_tier="baseline", response_modes=["query"])
    params, _ = plain_request(client, response_mode="fragment")
    assert_redirect_error(kit, await kit.authorize(params), "invalid_request", state=params["state"])
