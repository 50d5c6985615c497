"""Building DPoP proofs and driving PAR / authorize / token with them (RFC 9449), for the server suites."""

from __future__ import annotations

import secrets
import time
from typing import Any

import httpx

from jarmor.jose import Jwk, sign_jws_embedded_jwk
from tests.kit import ISSUER, REDIRECT, Kit, TestClient

from .support import code_from, plain_request

TOKEN_URL = f"{ISSUER}/token"
PAR_URL = f"{ISSUER}/par"


def proof(key: Jwk, url: str = TOKEN_URL, *, alg: str | None = None, nonce: str | None = None,
          **claims: Any) -> str:
    """A valid proof for a POST to ``url`` signed by ``key``; keyword arguments override claims."""
    body: dict[str, Any] = {"jti": secrets.token_urlsafe(16), "htm": "POST", "htu": url, "iat": int(time.time())}
    if nonce is not None:
        body["nonce"] = nonce
    body.update(claims)
    return sign_jws_embedded_jwk(body, key, alg or str(key.alg or "ES256"), typ="dpop+jwt")


def _headers(proofs: tuple[str, ...]) -> list[tuple[str, str]]:
    return [("DPoP", p) for p in proofs]


async def token(kit: Kit, client: TestClient, form: dict[str, str], *proofs: str, at: int | None = None,
                url: str = "/token") -> httpx.Response:
    """``at``: the time the client assertion claims (the kit's clock, when a test moved it); ``url``: where to
    send it (an mTLS alias, RFC 8705 §5)."""
    auth = client.auth_form(iat=at, exp=at + 60) if at is not None else client.auth_form()
    return await kit.http.post(url, data={**auth, **form}, headers=_headers(proofs))


async def par(kit: Kit, client: TestClient, form: dict[str, str], *proofs: str, url: str = "/par") -> httpx.Response:
    return await kit.http.post(url, data={**client.auth_form(), **form}, headers=_headers(proofs))


async def code_via_par(
    kit: Kit, client: TestClient, *proofs: str, form: dict[str, str] | None = None, par_url: str = "/par",
    **claims: Any,
) -> tuple[str, str]:
    """PAR (signed request object, optional DPoP headers; to ``par_url``) -> authorize -> (code, verifier)."""
    ro, ctx = client.request_object(**claims)
    r = await par(kit, client, {"request": ro, "client_id": client.client_id, **(form or {})}, *proofs, url=par_url)
    assert r.status_code == 201, r.text
    r = await kit.authorize({"client_id": client.client_id, "request_uri": r.json()["request_uri"]})
    return str(code_from(kit, client, r)["code"]), str(ctx["code_verifier"])


async def code_by_value(kit: Kit, client: TestClient, **params: Any) -> tuple[str, str]:
    """A plain authorization request (query parameters) -> (code, verifier)."""
    query, verifier = plain_request(client, **params)
    r = await kit.authorize(query)
    return str(code_from(kit, client, r)["code"]), verifier


def code_form(code: str, verifier: str) -> dict[str, str]:
    return {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT, "code_verifier": verifier}


async def introspect(kit: Kit, client: TestClient, access_token: str) -> dict[str, Any]:
    r = await kit.http.post("/introspect", data={**client.auth_form(), "token": access_token})
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body
