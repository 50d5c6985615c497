"""Hostile input at the token, revocation and introspection endpoints (attack catalog group T, A50-A54).

Errors are JSON with ``no-store``: ``invalid_client`` 401, the rest 400. A wrong guess never consumes the
real code; a request that cannot be parsed consumes nothing (not the code, not the client assertion); a
token of one kind presented as another is unknown, and revokes nothing.
"""

from __future__ import annotations

import secrets
from typing import Any
from urllib.parse import quote

import pytest

from tests.kit import REDIRECT, Kit, TestClient
from tests.server.support import assert_json_error, code_from, plain_request, push, redeem

from .support import FORM, assert_unchanged, bounded, raw_request, snapshot

BUDGET = {"seconds": 0.5, "megabytes": 16.0}
SPENT_BY_AUTH = ("assertion-jti",)  # an authenticated request spends its (fresh) client assertion



async def obtain_code(kit: Kit, client: TestClient) -> tuple[str, str]:
    params, verifier = plain_request(client)
    return code_from(kit, client, await kit.authorize(params))["code"], verifier


def encoded(params: dict[str, str]) -> str:
    return "&".join(f"{k}={quote(v, safe='')}" for k, v in params.items())


# --- A35-style guessing against codes ---------------------------------------------------------------------------


async def test_code_guessing_never_consumes_the_real_code(kit: Kit, base: TestClient) -> None:
    code, verifier = await obtain_code(kit, base)
    uri, _ = await push(kit, base)
    guesses = [
        code[:-1],
        code + "A",
        code.swapcase(),
        " " + code,
        code + " ",
        code.replace("-", "+").replace("_", "/") + "=",
        secrets.token_urlsafe(32),
        uri.rsplit(":", 1)[1],  # a live request_uri reference is not a code
        "x" * 257,
        "x" * 60_000,
    ]
    before = snapshot(kit)
    for guess in guesses:
        with bounded(**BUDGET):
            r = await redeem(kit, base, guess, verifier)
        assert_json_error(r, "invalid_grant")
    assert_unchanged(kit, before, allow=SPENT_BY_AUTH)
    r = await redeem(kit, base, code, verifier)
    assert r.status_code == 200, r.text


async def test_token_kinds_are_not_interchangeable(kit: Kit, base: TestClient) -> None:
    """A refresh token is not a code, an access token is not a refresh token; the mistake revokes nothing."""
    code, verifier = await obtain_code(kit, base)
    tokens = (await redeem(kit, base, code, verifier)).json()
    code2, verifier2 = await obtain_code(kit, base)
    before = snapshot(kit)
    for value in (tokens["refresh_token"], tokens["access_token"]):
        assert_json_error(await redeem(kit, base, value, verifier2), "invalid_grant")
    for value in (tokens["access_token"], code2):
        r = await kit.token(base, {"grant_type": "refresh_token", "refresh_token": value})
        assert_json_error(r, "invalid_grant")
    assert_unchanged(kit, before, allow=SPENT_BY_AUTH)
    assert (await redeem(kit, base, code2, verifier2)).status_code == 200


# --- requests that cannot be parsed consume nothing -------------------------------------------------------------


def _broken(client: TestClient, code: str, verifier: str) -> list[tuple[str, str, dict[str, str], str, int]]:
    good = encoded(
        {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT, "code_verifier": verifier,
         **client.auth_form()}
    )
    return [
        ("repeated code", good + "&code=" + code, FORM, "invalid_request", 400),
        ("repeated grant_type", good + "&grant_type=refresh_token", FORM, "invalid_request", 400),
        ("repeated code_verifier", good + "&code_verifier=" + verifier, FORM, "invalid_request", 400),
        ("repeated client_assertion", good + "&client_assertion=x", FORM, "invalid_request", 400),
        ("NUL", good + "&x=%00", FORM, "invalid_request", 400),
        ("invalid UTF-8", good + "&x=%ff", FORM, "invalid_request", 400),
        ("JSON content type", good, {"content-type": "application/json"}, "invalid_request", 400),
        ("no content type", good, {}, "invalid_request", 400),
        ("over 64 KiB", good + "&pad=" + "a" * 65_536, FORM, "invalid_request", 413),
    ]


async def test_unparseable_requests_leave_the_code_and_the_assertion_unused(kit: Kit, base: TestClient) -> None:
    code, verifier = await obtain_code(kit, base)
    for case, body, headers, error, status in _broken(base, code, verifier):
        before = snapshot(kit)
        with bounded(**BUDGET):
            r = await raw_request(kit, "POST", "/token", body=body.encode(), headers=headers)
        assert_json_error(r, error, status)
        assert_unchanged(kit, before)
        assert case
    for method in ("GET", "PUT", "DELETE"):
        r = await raw_request(kit, method, "/token", query=f"code={code}".encode())
        assert r.status_code == 405
    assert (await redeem(kit, base, code, verifier)).status_code == 200


@pytest.mark.parametrize(
    "grant_type",
    [
        "authorization_code ",
        "AUTHORIZATION_CODE",
        "password",
        "implicit",
        "urn:ietf:params:oauth:grant-type:jwt-bearer",
        "urn:ietf:params:oauth:grant-type:device_code",
        "authorization_code\u200b",
        "refresh_token,authorization_code",
    ],
)
async def test_unsupported_grant_types_are_refused_before_authentication(
    kit: Kit, base: TestClient, grant_type: str
) -> None:
    """unsupported_grant_type, and the client assertion sent along is not spent."""
    code, verifier = await obtain_code(kit, base)
    before = snapshot(kit)
    r = await kit.token(base, {"grant_type": grant_type, "code": code, "code_verifier": verifier})
    assert_json_error(r, "unsupported_grant_type")
    assert_unchanged(kit, before)


async def test_hostile_verifiers_are_bounded(kit: Kit, base: TestClient) -> None:
    """A51: a 60 KB verifier or one full of non-ASCII is invalid_grant (and, by policy, spends the code)."""
    for verifier in ("v" * 60_000, "\u00e9" * 100, "\U0001f600" * 43):
        code, _ = await obtain_code(kit, base)
        with bounded(**BUDGET):
            r = await redeem(kit, base, code, verifier)
        assert_json_error(r, "invalid_grant")


# --- refresh tokens ------------------------------------------------------------------------------------------------


async def test_refresh_token_guessing_revokes_nothing(kit: Kit, base: TestClient) -> None:
    code, verifier = await obtain_code(kit, base)
    rt = (await redeem(kit, base, code, verifier)).json()["refresh_token"]
    before = snapshot(kit)
    for guess in (rt[:-1], rt + "A", rt.swapcase(), secrets.token_urlsafe(32)):
        r = await kit.token(base, {"grant_type": "refresh_token", "refresh_token": guess})
        assert_json_error(r, "invalid_grant")
    r = await kit.token(base, {"grant_type": "refresh_token", "refresh_token": "r" * 300})
    assert_json_error(r, "invalid_request")
    assert_unchanged(kit, before, allow=SPENT_BY_AUTH)
    r = await kit.token(base, {"grant_type": "refresh_token", "refresh_token": rt})
    assert r.status_code == 200, r.text


@pytest.mark.parametrize("scope", ["openid admin", "OPENID", "openid\u00a0profile", "openid " * 400])
async def test_refresh_scope_cannot_widen(kit: Kit, base: TestClient, scope: str) -> None:
    code, verifier = await obtain_code(kit, base)
    rt = (await redeem(kit, base, code, verifier)).json()["refresh_token"]
    before = snapshot(kit)
    r = await kit.token(base, {"grant_type": "refresh_token", "refresh_token": rt, "scope": scope})
    if scope.split() and set(scope.split()) <= {"openid"}:
        assert r.status_code == 200  # repeating a granted scope is not widening
        return
    assert_json_error(r, "invalid_scope")
    assert_unchanged(kit, before, allow=SPENT_BY_AUTH)


# --- revocation and introspection: no cross-client effect, no oracle -------------------------------------------


async def _tokens(kit: Kit, client: TestClient) -> dict[str, Any]:
    code, verifier = await obtain_code(kit, client)
    body: dict[str, Any] = (await redeem(kit, client, code, verifier)).json()
    return body


async def test_introspection_does_not_leak_another_clients_token(kit: Kit, base: TestClient) -> None:
    other = await kit.add_client(risk_tier="baseline")
    mine = await _tokens(kit, base)
    for token in (mine["access_token"], mine["refresh_token"]):
        r = await kit.http.post("/introspect", data={**other.auth_form(), "token": token})
        assert r.status_code == 200 and r.json() == {"active": False}
    for token in ("x" * 10_000, "", "\u202e"):
        r = await kit.http.post("/introspect", data={**base.auth_form(), "token": token})
        assert r.status_code in (200, 400)
        if r.status_code == 200:
            assert r.json() == {"active": False}


async def test_revocation_by_another_client_has_no_effect(kit: Kit, base: TestClient) -> None:
    other = await kit.add_client(risk_tier="baseline")
    mine = await _tokens(kit, base)
    before = snapshot(kit)
    for token in (mine["access_token"], mine["refresh_token"], "x" * 10_000):
        r = await kit.http.post("/revoke", data={**other.auth_form(), "token": token})
        assert r.status_code == 200
    assert_unchanged(kit, before, allow=SPENT_BY_AUTH)
    r = await kit.http.post("/introspect", data={**base.auth_form(), "token": mine["access_token"]})
    assert r.json()["active"] is True


@pytest.mark.parametrize("path", ["/revoke", "/introspect"])
async def test_unauthenticated_or_malformed_back_channel_requests(kit: Kit, base: TestClient, path: str) -> None:
    mine = await _tokens(kit, base)
    before = snapshot(kit)
    assert_json_error(await kit.http.post(path, data={"token": mine["access_token"]}), "invalid_client", 401)
    r = await kit.http.post(path, data={"token": mine["access_token"], "client_id": base.client_id})
    assert_json_error(r, "invalid_client", 401)
    body = encoded({**base.auth_form(), "token": mine["access_token"]}) + "&token=x"
    assert_json_error(await raw_request(kit, "POST", path, body=body.encode(), headers=FORM), "invalid_request")
    assert (await raw_request(kit, "GET", path, query=f"token={mine['access_token']}".encode())).status_code == 405
    assert_unchanged(kit, before)
