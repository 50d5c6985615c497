"""Shared builders for the resource-server tests: proofs from ``jarmor.jose`` and an in-memory verifier."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from typing import Any

from jarmor.jose import Jwk, generate_jwk, sign_jws_embedded_jwk
from jarmor.protocol.dpop import access_token_hash
from jarmor.resource import ResourceServer, TokenClaims, TokenRejected

NOW = 1_800_000_000
URL = "https://api.example/orders"
KEY = generate_jwk("ES256")
OTHER_KEY = generate_jwk("ES256")


def proof(
    token: str | None,
    *,
    key: Jwk = KEY,
    alg: str = "ES256",
    method: str = "GET",
    url: str = URL,
    iat: int = NOW,
    **extra: Any,
) -> str:
    claims: dict[str, Any] = {"jti": secrets.token_urlsafe(16), "htm": method, "htu": url, "iat": iat}
    if token is not None:
        claims["ath"] = access_token_hash(token)
    claims.update(extra)
    return sign_jws_embedded_jwk({k: v for k, v in claims.items() if v is not None}, key, alg, typ="dpop+jwt")


class FakeVerifier:
    """Tokens known by value; counts calls."""

    def __init__(self, tokens: Mapping[str, Mapping[str, Any]]) -> None:
        self.tokens = dict(tokens)
        self.calls = 0

    async def verify(self, token: str) -> TokenClaims:
        self.calls += 1
        claims = self.tokens.get(token)
        if claims is None:
            raise TokenRejected("the access token is invalid, expired or revoked")
        return TokenClaims.from_claims(claims)


def claims(**kw: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"active": True, "sub": "alice", "client_id": "app", "scope": "orders:read",
                            "exp": NOW + 600, "iat": NOW - 10}
    base.update(kw)
    return {k: v for k, v in base.items() if v is not None}


BEARER = "bearer-token-1"
DPOP = "dpop-token-1"
MTLS = "mtls-token-1"
STEP = "stepped-token-1"


def server(**kw: Any) -> ResourceServer:
    from .certs import CERT_THUMBPRINT

    verifier = FakeVerifier({
        BEARER: claims(),
        DPOP: claims(cnf={"jkt": KEY.thumbprint()}, token_type="DPoP"),
        MTLS: claims(cnf={"x5t#S256": CERT_THUMBPRINT}),
        STEP: claims(acr="urn:loa:2", auth_time=NOW - 100),
    })
    kw.setdefault("clock", lambda: NOW)
    return ResourceServer(verifier=verifier, **kw)
