"""ID token claim checks (OIDC Core §3.1.3.7 and §3.3.2.11; C23). The signature is checked by ``core``."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from jarmor.jose import b64url_encode

from .errors import IdTokenValidationError
from .validation import check_audience, check_issuer, check_times, same

_HASHES = {"256": hashlib.sha256, "384": hashlib.sha384, "512": hashlib.sha512}


def half_hash(value: str, alg: str) -> str:
    """OIDC Core §3.3.2.11: base64url of the left half of the hash used by ``alg`` (EdDSA: SHA-512)."""
    digest_name = "512" if alg in ("EdDSA", "Ed25519") else alg[-3:]
    digest = _HASHES[digest_name](value.encode("ascii")).digest()
    return b64url_encode(digest[: len(digest) // 2])


def check_id_token_claims(
    claims: Mapping[str, Any],
    *,
    issuer: str,
    client_id: str,
    nonce: str | None,
    now: int,
    skew: int,
    max_age: int,
    alg: str,
    access_token: str | None = None,
    code: str | None = None,
    state: str | None = None,
    requested_max_age: int | None = None,
    auth_time_required: bool = False,
    acr_values: tuple[str, ...] | None = None,
    trusted_audiences: frozenset[str] = frozenset(),
) -> int:
    """Everything but the signature: ``iss``, ``aud``/``azp``, ``exp``, ``iat`` (present, recent), ``sub``,
    ``nonce`` (when one was sent), ``auth_time`` and ``acr`` when the request asked for them, ``amr``'s form
    and, when present, ``at_hash``/``c_hash``/``s_hash`` (FAPI1 §5.2.2.1). Returns seconds to expiry."""
    err = IdTokenValidationError
    check_issuer(claims, issuer, err)
    check_audience(claims, client_id, err, allow_azp=True, trusted=trusted_audiences)
    remaining = check_times(
        claims, now=now, skew=skew, max_lifetime=86400, error=err, require_iat=True, max_age=max_age
    )
    sub = claims.get("sub")
    if not isinstance(sub, str) or not sub or len(sub) > 255:
        raise err("sub claim is missing or malformed", reason="sub_invalid")
    if nonce is not None:
        got = claims.get("nonce")
        if got is None:
            raise err("nonce claim is missing", reason="nonce_missing")
        if not isinstance(got, str) or not same(got, nonce):
            raise err("nonce claim does not match the flow", reason="nonce_mismatch")
    check_auth_time(
        claims, now=now, skew=skew, max_age=requested_max_age, required=auth_time_required
    )
    check_acr(claims, acr_values)
    check_amr(claims)
    for name, value in (("at_hash", access_token), ("c_hash", code), ("s_hash", state)):
        got = claims.get(name)
        if got is None or value is None:
            continue
        if not isinstance(got, str) or not same(got, half_hash(value, alg)):
            raise err(f"{name} does not match", reason=f"{name}_mismatch")
    return remaining


def check_auth_time(
    claims: Mapping[str, Any], *, now: int, skew: int, max_age: int | None, required: bool
) -> None:
    """OIDC Core §2 and §3.1.3.7-13: with ``max_age`` requested (or ``auth_time`` requested as an essential
    claim) ``auth_time`` is REQUIRED, and with ``max_age`` the end-user must have authenticated within it."""
    err = IdTokenValidationError
    if max_age is None and not required:
        return
    auth_time = claims.get("auth_time")
    if isinstance(auth_time, bool) or not isinstance(auth_time, int) or auth_time < 0:
        if auth_time is None:
            raise err("auth_time is missing although the request asked for it", reason="auth_time_missing")
        raise err("auth_time claim is not a valid NumericDate", reason="auth_time_invalid")
    if auth_time > now + skew:
        raise err("auth_time is in the future", reason="auth_time_invalid")
    if max_age is not None and now - auth_time > max_age + skew:
        raise err("the end-user authenticated longer ago than max_age allows", reason="auth_time_too_old")


def check_acr(claims: Mapping[str, Any], acr_values: tuple[str, ...] | None) -> None:
    """OIDC Core §3.1.3.7-12: "If the acr Claim was requested, the Client SHOULD check that the asserted
    Claim Value is appropriate". The library checks it: a login asserted at another level than one of the
    requested ``acr_values`` (or the essential ``acr`` of the ``claims`` parameter, §5.5.1.1) is refused."""
    if acr_values is None:
        return
    acr = claims.get("acr")
    if acr is None:
        raise IdTokenValidationError("acr claim is missing although acr was requested", reason="acr_missing")
    if not isinstance(acr, str) or acr not in acr_values:
        raise IdTokenValidationError(
            "acr claim is not one of the requested authentication context classes", reason="acr_not_satisfied"
        )


def check_amr(claims: Mapping[str, Any]) -> None:
    """OIDC Core §2 / RFC 8176 §1: ``amr``, when present, is a JSON array of strings (method references such
    as ``pwd``, ``otp``, ``hwk``, ``mfa``); anything else is a malformed ID token, not a method to trust."""
    if "amr" not in claims:
        return
    amr = claims["amr"]
    if (not isinstance(amr, list) or not amr or len(amr) > 32
            or not all(isinstance(a, str) and 0 < len(a) <= 64 for a in amr)):
        raise IdTokenValidationError("amr claim must be a non-empty array of strings", reason="amr_invalid")
