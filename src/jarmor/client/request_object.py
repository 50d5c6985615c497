"""Building what the client sends: signed (optionally encrypted) request objects, ``private_key_jwt``
assertions and the authorization URL (RFC 9101, RFC 9126, RFC 7523; C14-C17, C20).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

from jarmor.jose import JoseError, Jwk, JwkSet, encrypt_jwe, sign_jws

from .errors import ConfigurationError, DiscoveryError

# Claims the library sets itself; a caller's ``extra`` may not supply them. ``sub``, ``request`` and
# ``request_uri`` are forbidden outright (RFC 9101 §4 and §10.8).
RESERVED_REQUEST_PARAMS: frozenset[str] = frozenset(
    {
        "iss",
        "aud",
        "sub",
        "exp",
        "nbf",
        "iat",
        "jti",
        "client_id",
        "request",
        "request_uri",
        "response_type",
        "response_mode",
        "redirect_uri",
        "scope",
        "state",
        "nonce",
        "code_challenge",
        "code_challenge_method",
    }
)
_INTEGER_PARAMS = ("max_age",)


def check_extra_params(extra: Mapping[str, object]) -> dict[str, object]:
    """Extra authorization parameters (``claims``, ``max_age``, ``acr_values`` ...) for the request object."""
    clean: dict[str, object] = {}
    for name, value in extra.items():
        if not isinstance(name, str) or not name:
            raise ConfigurationError("authorization parameter names must be non-empty strings")
        if name in RESERVED_REQUEST_PARAMS:
            raise ConfigurationError(
                f"authorization parameter {name!r} is set by the library and cannot be given"
            )
        if value is None:
            continue
        if name in _INTEGER_PARAMS and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
            raise ConfigurationError(f"{name} must be a non-negative JSON number (RFC 9101 §4)")
        clean[name] = value
    return clean


def request_object_claims(
    *,
    client_id: str,
    issuer: str,
    params: Mapping[str, object],
    now: int,
    lifetime: int,
    jti: str,
) -> dict[str, Any]:
    """RFC 9101 §4 with FAPI1 5.2.3-8/10/11/14 and FAPI2 MS client requirements 2/3 (C15).

    ``aud`` is the issuer as a single string; ``nbf`` = ``iat`` = now; ``exp - nbf`` = lifetime ≤ 3600;
    every authorization parameter is inside; ``sub``/``request``/``request_uri`` never are.
    """
    if not 1 <= lifetime <= 3600:
        raise ConfigurationError("request object lifetime must be 1..3600 s")
    forbidden = {"sub", "request", "request_uri"} & params.keys()
    if forbidden:
        raise ConfigurationError(f"request object must not contain {sorted(forbidden)}")
    claims: dict[str, Any] = dict(params)
    claims.update(
        {
            "iss": client_id,
            "aud": issuer,
            "client_id": client_id,
            "iat": now,
            "nbf": now,
            "exp": now + lifetime,
            "jti": jti,
        }
    )
    return claims


def sign_request_object(claims: Mapping[str, Any], key: Jwk, alg: str, *, typ: str | None) -> str:
    """C14: signed with the client's key (``kid`` in the header), explicitly typed (RFC 9101 §10.8)."""
    try:
        return sign_jws(claims, key, alg, typ=typ)
    except JoseError as exc:
        raise ConfigurationError(f"cannot sign the request object: {exc}") from exc


def check_advertised(value: str, supported: Sequence[str], what: str) -> None:
    if value not in supported:
        raise DiscoveryError(f"the server does not advertise {what} {value!r}", reason="not_supported")


def encrypt_request_object(jws: str, server_keys: JwkSet, alg: str, enc: str) -> tuple[str, Jwk]:
    """C16: a Nested JWT (sign, then encrypt) to the server's ``use=enc`` key; ``kid`` and ``cty`` set."""
    try:
        key = server_keys.select_encryption_key(alg)
        return encrypt_jwe(jws, key, alg, enc, cty="JWT"), key
    except JoseError as exc:
        raise DiscoveryError(f"no usable server encryption key: {exc}", reason="no_encryption_key") from exc


def client_assertion_claims(
    *, client_id: str, issuer: str, now: int, lifetime: int, jti: str
) -> dict[str, Any]:
    """C20: ``iss`` = ``sub`` = client_id (OIDC Core §9); ``aud`` = the issuer as a string (FAPI2 5.3.3.1-5),
    never an endpoint URL taken from metadata (CVE-2025-27370); short ``exp``; fresh ``jti``."""
    return {"iss": client_id, "sub": client_id, "aud": issuer, "iat": now, "exp": now + lifetime, "jti": jti}


def sign_client_assertion(claims: Mapping[str, Any], key: Jwk, alg: str) -> str:
    try:
        return sign_jws(claims, key, alg)
    except JoseError as exc:
        raise ConfigurationError(f"cannot sign the client assertion: {exc}") from exc


def authorization_url(endpoint: str, params: Sequence[tuple[str, str]]) -> str:
    """Append parameters to the authorization endpoint, keeping its own query component (RFC 6749 §3.1)."""
    parts = urlsplit(endpoint)
    query = urlencode(list(params))
    if parts.query:
        query = f"{parts.query}&{query}"
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, ""))
