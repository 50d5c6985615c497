"""Assertions on the three error channels (checklist §0.4) and builders for requests the tests mutate.

* REDIRECT — 303 to the *registered* redirect URI with ``error``, ``state`` and RFC 9207 ``iss``; in a JWT
  response mode everything travels inside one JARM JWT verified here with the server's published JWKS.
* PAGE — an HTML error page, status 400, and no ``Location`` header.
* JSON — back-channel error with ``Cache-Control: no-store``.
"""

from __future__ import annotations

import re
import secrets
import time
from html import unescape
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx

from jarmor.jose import JwkSet, peek_header, verify_jws
from tests.kit import ISSUER, REDIRECT, Kit, TestClient, ephemeral_keys, pkce_pair, response_params

UNSET: Any = object()
CODE_NS = "code"
PAR_NS = "par"
RO_JTI_NS = "ro-jti"


def plain_request(client: TestClient, **overrides: Any) -> tuple[dict[str, str], str]:
    """A valid unsigned authorization request (query parameters) and its PKCE verifier; ``None`` drops one."""
    verifier, challenge = pkce_pair()
    params: dict[str, Any] = {
        "client_id": client.client_id,
        "response_type": "code",
        "redirect_uri": REDIRECT,
        "scope": "openid",
        "state": secrets.token_urlsafe(12),
        "nonce": secrets.token_urlsafe(12),
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    params.update(overrides)
    return {k: str(v) for k, v in params.items() if v is not None}, verifier


def split_location(r: httpx.Response) -> tuple[str, str, dict[str, str]]:
    """(URI before ? or #, the separator used, the parameters) of a redirect."""
    loc = r.headers["location"]
    parts = urlsplit(loc)
    base = loc.split("#", 1)[0].split("?", 1)[0]
    if parts.fragment:
        return base, "#", dict(parse_qsl(parts.fragment))
    return base, "?", dict(parse_qsl(parts.query))


def verify_jarm(kit: Kit, client: TestClient, token: str) -> dict[str, Any]:
    """Verify a JARM JWT with the server's published JWKS and the client's registered algorithm (JARM §2.4)."""
    header = peek_header(token)
    jwks = JwkSet.from_dict(kit.server.keyring.public_jwks())
    assert header["alg"] == client.metadata["authorization_signed_response_alg"]
    assert jwks.has_kid(header["kid"]), "JARM kid must name a key in the server JWKS"
    claims = verify_jws(token, jwks, algorithms=[header["alg"]]).claims
    now = kit.env.now()
    assert claims["iss"] == ISSUER
    assert claims["aud"] == client.client_id
    assert 10 <= claims["exp"] - now <= 600
    return claims


def assert_redirect_error(
    kit: Kit,
    r: httpx.Response,
    error: str,
    *,
    client: TestClient | None = None,
    state: Any = UNSET,
    redirect_uri: str = REDIRECT,
    separator: str = "?",
) -> dict[str, Any]:
    """A 303 to the registered ``redirect_uri`` carrying ``error``; JARM-wrapped when ``client`` is given."""
    assert r.status_code == 303, f"{r.status_code} {r.text[:300]}"
    base, sep, params = split_location(r)
    assert base == redirect_uri
    assert sep == separator
    if client is not None:
        assert set(params) == {"response"}, f"only 'response' may travel outside the JWT: {params}"
        params = verify_jarm(kit, client, params["response"])
    else:
        assert params.get("iss") == ISSUER, "RFC 9207: iss on every redirect-based response"
        assert "response" not in params
    assert params.get("error") == error, params
    assert "code" not in params
    if state is not UNSET:
        assert params.get("state") == state
    return params


def page_error(r: httpx.Response) -> str:
    match = re.search(r'id="error-code">([^<]*)<', r.text)
    assert match, r.text[:300]
    return unescape(match.group(1))


def assert_error_page(r: httpx.Response, error: str) -> None:
    """An HTML error page: 400, no Location (RFC 6749 §4.1.2.1: never redirect to an unverified URI)."""
    assert r.status_code == 400, f"{r.status_code} {r.headers.get('location')} {r.text[:200]}"
    assert "location" not in r.headers
    assert r.headers["content-type"].startswith("text/html")
    assert "no-store" in r.headers["cache-control"]
    assert page_error(r) == error


def assert_json_error(r: httpx.Response, error: str, status: int = 400) -> dict[str, Any]:
    assert r.status_code == status, f"{r.status_code} {r.text[:300]}"
    assert r.headers["content-type"].startswith("application/json")
    assert "no-store" in r.headers["cache-control"]
    assert "location" not in r.headers
    body: dict[str, Any] = r.json()
    assert body["error"] == error, body
    return body


def assert_no_code(kit: Kit) -> None:
    assert ephemeral_keys(kit, CODE_NS) == [], "no authorization code may be minted"


def code_from(kit: Kit, client: TestClient, r: httpx.Response) -> dict[str, Any]:
    """The success parameters of an authorization response (unwrapped and verified when JARM)."""
    params: dict[str, Any] = response_params(r)
    if "response" in params:
        assert set(params) == {"response"}
        params = verify_jarm(kit, client, params["response"])
    assert "code" in params, params
    return params


async def redeem(kit: Kit, client: TestClient, code: str, verifier: str, **extra: str) -> httpx.Response:
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT,
        "code_verifier": verifier,
    }
    form.update(extra)
    return await kit.token(client, {k: v for k, v in form.items() if v is not None})


async def push(kit: Kit, client: TestClient, **claims: Any) -> tuple[str, dict[str, Any]]:
    """PAR with a signed request object; returns (request_uri, request-object context)."""
    ro, ctx = client.request_object(**claims)
    r = await kit.par(client, {"request": ro, "client_id": client.client_id})
    assert r.status_code == 201, r.text
    return str(r.json()["request_uri"]), ctx


def now() -> int:
    return int(time.time())


def count_connections(kit: Any, monkeypatch: Any) -> list[str]:
    """Record every connection the fetcher would open (``Fetcher._fetch`` runs only for checked addresses)."""
    seen: list[str] = []
    original = kit.server.fetcher._fetch

    async def counting(url: str, *args: Any, **kw: Any) -> Any:
        seen.append(url)
        return await original(url, *args, **kw)

    monkeypatch.setattr(kit.server.fetcher, "_fetch", counting)
    return seen
