"""Building what the client sends: signed (optionally encrypted) request objects, ``private_key_jwt``
assertions and the authorization URL (RFC 9101, RFC 9126, RFC 7523; C14-C17, C20).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

import orjson

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
        "dpop_jkt",
    }
)
# Parameters whose answer the library checks in the ID token: they are arguments of start_authorization.
CHECKED_REQUEST_PARAMS: frozenset[str] = frozenset({"max_age", "acr_values", "claims"})


def check_extra_params(extra: Mapping[str, object]) -> dict[str, object]:
    """Other authorization parameters (``prompt``, ``login_hint``, ``authorization_details`` ...)."""
    clean: dict[str, object] = {}
    for name, value in extra.items():
        if not isinstance(name, str) or not name:
            raise ConfigurationError("authorization parameter names must be non-empty strings")
        if name in RESERVED_REQUEST_PARAMS:
            raise ConfigurationError(
                f"authorization parameter {name!r} is set by the library and cannot be given"
            )
        if name in CHECKED_REQUEST_PARAMS:
            raise ConfigurationError(
                f"pass {name}= to start_authorization: the library then checks the answer in the ID token"
            )
        if value is None:
            continue
        clean[name] = value
    return clean


def check_max_age(value: object) -> int | None:
    """OIDC Core §3.1.2.1 ``max_age``: a non-negative integer, a JSON number in the request object."""
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ConfigurationError("max_age must be a non-negative JSON number (RFC 9101 §4)")
    return value


def check_acr_values(value: object) -> tuple[str, ...] | None:
    """OIDC Core §3.1.2.1 ``acr_values``: space-separated strings, given as a sequence or one string."""
    if value is None:
        return None
    items = value.split(" ") if isinstance(value, str) else value
    if not isinstance(items, list | tuple) or not items:
        raise ConfigurationError("acr_values must be a non-empty list of strings")
    for item in items:
        if not isinstance(item, str) or not item or any(c in item for c in ' "\\') or not item.isprintable():
            raise ConfigurationError("each acr value must be a non-empty printable string without spaces")
    return tuple(items)


def essential_acr_and_auth_time(claims: object) -> tuple[tuple[str, ...] | None, bool]:
    """Read what the ``claims`` request parameter (OIDC Core §5.5) asks of the ID token that the client must
    check: an essential ``acr`` with ``value``/``values`` (§5.5.1.1) and an essential ``auth_time`` (§2)."""
    if claims is None:
        return None, False
    if not isinstance(claims, Mapping) or not all(isinstance(k, str) for k in claims):
        raise ConfigurationError("claims must be a JSON object (OIDC Core §5.5)")
    for member, requested in claims.items():
        if requested is not None and not isinstance(requested, Mapping):
            raise ConfigurationError(f"claims member {member!r} must be a JSON object")
        for name, spec in (requested or {}).items():
            if spec is not None and not isinstance(spec, Mapping):
                raise ConfigurationError(f"claims request for {name!r} must be null or a JSON object")
    id_token = claims.get("id_token") or {}
    acr_spec = id_token.get("acr") or {}
    acr: tuple[str, ...] | None = None
    if acr_spec.get("essential") is True:
        values = acr_spec.get("values", [acr_spec["value"]] if "value" in acr_spec else None)
        if values is not None:
            acr = check_acr_values(list(values) if isinstance(values, list | tuple) else values)
    auth_time_spec = id_token.get("auth_time") or {}
    return acr, auth_time_spec.get("essential") is True


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


def plain_parameters(params: Mapping[str, object]) -> list[tuple[str, str]]:
    """Authorization parameters as form/query fields, for a client that signs no request object (RFC 6749
    §4.1.1, RFC 9126 §2.1): numbers in decimal, the ``claims`` object and other structures as JSON
    (OIDC Core §5.5)."""
    pairs: list[tuple[str, str]] = []
    for name, value in params.items():
        if isinstance(value, str):
            pairs.append((name, value))
        elif isinstance(value, int) and not isinstance(value, bool):
            pairs.append((name, str(value)))
        else:
            try:
                pairs.append((name, orjson.dumps(value).decode("utf-8")))
            except TypeError as exc:
                raise ConfigurationError(f"authorization parameter {name!r} is not JSON") from exc
    return pairs
