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
) -> int:
    """Everything but the signature: ``iss``, ``aud``/``azp``, ``exp``, ``iat`` (present, recent), ``sub``,
    ``nonce`` (when one was sent) and, when present, ``at_hash``/``c_hash``/``s_hash`` (FAPI1 §5.2.2.1).
    Returns seconds to expiry."""
    err = IdTokenValidationError
    check_issuer(claims, issuer, err)
    check_audience(claims, client_id, err, allow_azp=True)
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
    if requested_max_age is not None:
        # OIDC Core §3.1.3.7 (13): with max_age requested, auth_time is required and must be recent enough
        auth_time = claims.get("auth_time")
        if isinstance(auth_time, bool) or not isinstance(auth_time, int):
            raise err("auth_time is missing although max_age was requested", reason="auth_time_missing")
        if now - auth_time > requested_max_age + skew:
            raise err("the end-user authenticated longer ago than max_age allows", reason="auth_time_too_old")
    for name, value in (("at_hash", access_token), ("c_hash", code), ("s_hash", state)):
        got = claims.get(name)
        if got is None or value is None:
            continue
        if not isinstance(got, str) or not same(got, half_hash(value, alg)):
            raise err(f"{name} does not match", reason=f"{name}_mismatch")
    return remaining
