"""The format of the access tokens the token endpoint issues: opaque (the default) or RFC 9068 JWT.

A tier's ``access_token_format`` decides (the effective tier of the grant, like every other property).
Opaque tokens are 256-bit random strings the resource server checks by introspection. A JWT access token
(RFC 9068) is for resource servers that cannot call introspection:

* header ``typ: at+jwt`` (§2.1), signed with the server's key for the first of the tier's algorithms the
  keyring holds (asymmetric only; §4 forbids ``none``), ``kid`` naming it in the published JWKS;
* claims (§2.2): ``iss``, ``exp``, ``aud`` (the configured default resource indicator, §3:
  ``[settings] access_token_audience``), ``sub`` (the user, or for a client-credentials grant the client,
  §2.2), ``client_id``, ``iat``, ``jti`` (128 random bits), ``scope`` (§2.2.3), ``auth_time`` when known
  (§2.2.1) and ``cnf`` when the token is sender-constrained (RFC 9449 §6.1 ``jkt``, RFC 8705 §3.1
  ``x5t#S256``).

Either way the token endpoint stores the token's SHA-256 as for an opaque token, so introspection and
revocation (RFC 7662, RFC 7009) treat both formats alike (a revoked JWT still verifies at a resource server
that does not introspect until it expires: RFC 9068 §6 — keep the tier's lifetime short).
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from typing import Any

from ..jose import sign_jws
from . import errors
from .binding import TokenBinding, cnf
from .clients import Client
from .context import Environment
from .policy import Tier

__all__ = ["AT_JWT_TYP", "jwt_access_token"]

AT_JWT_TYP = "at+jwt"


class AccessTokenFormatError(errors.OAuthError):
    """The server cannot produce the format the tier asks for (configuration): 500, never a partial token."""

    error = "server_error"
    status = 500


def _signing_alg(env: Environment, tier: Tier) -> str:
    available = env.keys.signing_algs()
    for alg in tier.signing_algs:
        if alg in available:
            return alg
    raise AccessTokenFormatError("no server signing key for an algorithm the tier allows")


def jwt_access_token(
    env: Environment,
    client: Client,
    tier: Tier,
    *,
    subject: str | None,
    scope: str,
    now: int,
    binding: TokenBinding | None = None,
    authentication: Mapping[str, Any] | None = None,
) -> str | None:
    """The JWT access token for this grant when ``tier`` asks for the JWT format; ``None`` for opaque (the
    caller then makes a random token)."""
    if tier.access_token_format != "jwt":
        return None
    audience = env.settings.access_token_audience
    if not audience:
        raise AccessTokenFormatError("JWT access tokens need [settings] access_token_audience (RFC 9068 section 3)")
    claims: dict[str, Any] = {
        "iss": env.issuer,
        "exp": now + tier.access_token_lifetime,
        "aud": audience,
        "sub": subject if subject is not None else client.client_id,
        "client_id": client.client_id,
        "iat": now,
        "jti": secrets.token_urlsafe(16),
    }
    if scope:
        claims["scope"] = scope
    claims.update(authentication or {})  # RFC 9068 §2.2.1: auth_time, acr, amr of the user's sign-in
    if binding is not None:
        claims["cnf"] = cnf(binding)
    alg = _signing_alg(env, tier)
    return sign_jws(claims, env.keys.signing_key(alg), alg, typ=AT_JWT_TYP)
