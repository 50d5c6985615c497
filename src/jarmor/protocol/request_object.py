"""Request objects (RFC 9101): decrypt (§6.1), verify (§6.2), and check claims (§4, §5, §10.8; FAPI).

Decoding and claim checks are separate steps: the signature is verified with the algorithms the client may
use at all, then — once the requested scopes are known — the effective risk tier decides which algorithms
and lifetimes are acceptable (see ``check_request_object_alg`` and ``check_request_object_times``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..jose import (
    JoseError,
    JwkSet,
    decrypt_jwe,
    is_jwe,
    verify_jws,
)
from . import errors
from .clients import Client
from .policy import Tier
from .vocabulary import (
    ARRAY_PARAMETERS,
    JWE_ALGS_SUPPORTED,
    JWE_ENCS_SUPPORTED,
    JWT_CLAIMS,
    NUMERIC_PARAMETERS,
    OBJECT_PARAMETERS,
    REQUEST_OBJECT_TYP,
    STRING_PARAMETERS,
)

# typ values that name another kind of JWT: accepting them would allow cross-JWT confusion (RFC 8725 §3.11)
_ACCEPTED_TYP = (REQUEST_OBJECT_TYP,)


@dataclass(frozen=True, slots=True)
class RequestObject:
    claims: dict[str, Any]
    alg: str
    kid: str
    encrypted: tuple[str, str] | None = None  # (alg, enc) of the outer JWE
    header: dict[str, Any] = field(default_factory=dict)

    def evidence(self) -> dict[str, Any]:
        out: dict[str, Any] = {"signed": True, "alg": self.alg, "kid": self.kid, "encrypted": False}
        out["nbf"] = "nbf" in self.claims
        start, exp = self.claims.get("nbf", self.claims.get("iat")), self.claims.get("exp")
        if isinstance(start, int | float) and isinstance(exp, int | float) and not isinstance(start, bool):
            out["lifetime"] = int(exp - start)
        if self.encrypted:
            out.update(encrypted=True, enc_alg=self.encrypted[0], enc=self.encrypted[1])
        return out


def _refuse(message: str, exc: Exception | None = None) -> errors.OAuthError:
    err = errors.InvalidRequestObject(message)
    if exc is not None:
        err.__cause__ = exc
    return err


def decode_request_object(
    token: str,
    client: Client,
    client_keys: JwkSet,
    *,
    server_decryption_keys: JwkSet,
    signing_algs: tuple[str, ...],
    require_typ: bool = False,
) -> RequestObject:
    """Decrypt (when a JWE) and verify a request object with the client's own registered keys.

    RFC 9101 §6.1: a decryption failure is ``invalid_request_object``; the plaintext must be a signed JWS
    (a JWE around a bare claims set is refused, §5). §6.2: the signature is checked only with keys
    registered for this client, and ``alg`` must equal ``request_object_signing_alg`` when registered
    (OIDC Registration §2); ``none`` is never accepted.
    """
    encrypted: tuple[str, str] | None = None
    try:
        if is_jwe(token):
            jwe = decrypt_jwe(
                token,
                server_decryption_keys,
                algorithms=JWE_ALGS_SUPPORTED,
                encryptions=JWE_ENCS_SUPPORTED,
            )
            encrypted = (str(jwe.header["alg"]), str(jwe.header["enc"]))
            try:
                token = jwe.plaintext.decode("ascii")
            except UnicodeDecodeError as exc:
                raise _refuse("the encrypted request object does not contain a signed JWT", exc) from exc
            if token.count(".") != 2:
                raise _refuse("the encrypted request object does not contain a signed JWT")
        allowed = (client.request_object_signing_alg,) if client.request_object_signing_alg else signing_algs
        verified = verify_jws(
            token,
            client_keys,
            algorithms=allowed,
            typ=_ACCEPTED_TYP,
            typ_required=require_typ,
        )
    except JoseError as exc:
        raise _refuse(f"request object refused: {exc}", exc) from exc
    return RequestObject(
        claims=verified.claims,
        alg=str(verified.header["alg"]),
        kid=verified.key.kid,
        encrypted=encrypted,
        header=verified.header,
    )


def _numeric(claims: Mapping[str, Any], name: str) -> int | None:
    value = claims.get(name)
    if value is None:
        if name in claims:
            raise _refuse(f"{name} must be a number, not null")
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value:  # NaN guard
        raise _refuse(f"{name} must be a JSON number")
    if not -(2**53) < value < 2**53:
        raise _refuse(f"{name} is out of range")
    return int(value)


def check_request_object_claims(ro: RequestObject, *, client_id: str, issuer: str) -> None:
    """RFC 9101 §4/§5 and FAPI 1.0 Adv. §5.2.2: claim presence, types, iss/aud/client_id binding."""
    claims = ro.claims
    if "request" in claims or "request_uri" in claims:
        raise _refuse("a request object must not contain request or request_uri (RFC 9101 §4)")
    iss = claims.get("iss")
    if iss is None:
        raise _refuse("request object iss is missing")
    if iss != client_id:
        raise _refuse("request object iss must be the client_id")
    aud = claims.get("aud")
    if isinstance(aud, str):
        ok = aud == issuer
    elif isinstance(aud, list):
        ok = len(aud) <= 10 and issuer in aud and all(isinstance(a, str) for a in aud)
    else:
        ok = False
    if not ok:
        raise _refuse("request object aud must be the authorization server's issuer identifier")
    if claims.get("client_id") != client_id:
        raise _refuse("request object client_id claim must equal the client_id parameter")
    if claims.get("sub") == client_id:
        raise _refuse("request object sub must not be the client_id (RFC 9101 §10.8)")
    jti = claims.get("jti")
    if jti is not None and (not isinstance(jti, str) or not jti or len(jti) > 256):
        raise _refuse("request object jti must be a non-empty string")
    for name in ("exp", "nbf", "iat"):
        _numeric(claims, name)
    for name, value in claims.items():
        if name in JWT_CLAIMS:
            continue
        if name in STRING_PARAMETERS and not isinstance(value, str):
            raise _refuse(f"{name} must be a JSON string")
        if name in NUMERIC_PARAMETERS:
            _numeric(claims, name)
            if int(value) < 0:
                raise _refuse(f"{name} must not be negative")
        if name in OBJECT_PARAMETERS and not isinstance(value, dict):
            raise _refuse(f"{name} must be a JSON object")
        if name in ARRAY_PARAMETERS and not isinstance(value, list):
            raise _refuse(f"{name} must be a JSON array")


def check_request_object_times(
    ro: RequestObject,
    tier: Tier,
    *,
    now: int,
    future_skew: int,
    max_age: int,
    require_nbf: bool,
) -> None:
    """Lifetimes: ``exp`` required and not passed; ``nbf``/``iat`` not in the future; bounded lifetime.

    FAPI 1.0 Adv. §5.2.2-13/-17 and FAPI 2.0 MS: ``exp`` at most 60 minutes after ``nbf``, ``nbf`` at most
    60 minutes in the past; FAPI 2.0 §5.3.2.1: accept 10 s of clock skew into the future.
    """
    exp = _numeric(ro.claims, "exp")
    nbf = _numeric(ro.claims, "nbf")
    iat = _numeric(ro.claims, "iat")
    if exp is None:
        raise _refuse("request object exp is missing")
    if now > exp + future_skew:
        raise _refuse("request object has expired")
    lifetime = tier.request_object_max_lifetime
    start = nbf if nbf is not None else iat if iat is not None else now
    if exp - start > lifetime or exp - now > lifetime + future_skew:
        raise _refuse(f"request object lifetime exceeds {lifetime} s allowed for tier {tier.name}")
    if require_nbf and nbf is None:
        raise _refuse(f"tier {tier.name} requires an nbf claim in the request object")
    if nbf is not None:
        if nbf > now + future_skew:
            raise _refuse("request object nbf is in the future")
        if now - nbf > lifetime:
            raise _refuse(f"request object nbf is more than {lifetime} s in the past")
    if iat is not None:
        if iat > now + future_skew:
            raise _refuse("request object iat is in the future")
        if now - iat > max_age:
            raise _refuse("request object iat is too old")


def check_request_object_alg(ro: RequestObject, tier: Tier) -> None:
    if not tier.allows_alg(ro.alg):
        raise _refuse(f"tier {tier.name} does not allow request objects signed with {ro.alg}")


def authorization_parameters(ro: RequestObject) -> dict[str, Any]:
    """RFC 9101 §6.3: the authorization request is made of the request object's parameters only."""
    return {k: v for k, v in ro.claims.items() if k not in JWT_CLAIMS}
