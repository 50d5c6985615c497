"""Claim checks shared by JARM responses (JARM §2.4) and ID tokens (OIDC Core §3.1.3.7).

Each function checks one thing and raises ``error(message, reason=...)`` — the caller picks the exception
class (``JarmValidationError`` or ``IdTokenValidationError``) so the reason codes stay the same across both.
"""

from __future__ import annotations

import hmac
import math
from collections.abc import Mapping, Sequence
from typing import Any

from .errors import ClientError

ErrorClass = type[ClientError]
MAX_NUMERIC_DATE = 2**53  # RFC 7519 §2 NumericDate as an interoperable JSON number


def same(a: str, b: str) -> bool:
    """Exact, constant-time string equality on UTF-8 bytes (no case, slash or Unicode normalisation)."""
    return hmac.compare_digest(a.encode("utf-8"), b.encode("utf-8"))


def check_issuer(claims: Mapping[str, Any], expected: str, error: ErrorClass) -> None:
    """``iss`` must be present and identical to the issuer the flow was started with (JARM §2.4 step 2,
    JARM §5 mix-up, RFC 3986 §6.2.1 simple comparison). Checked before any key is fetched."""
    iss = claims.get("iss")
    if iss is None:
        raise error("iss claim is missing", reason="iss_missing")
    if not isinstance(iss, str) or iss != expected:
        raise error("iss claim is not the expected issuer", reason="iss_mismatch")


def check_audience(
    claims: Mapping[str, Any],
    client_id: str,
    error: ErrorClass,
    *,
    allow_azp: bool,
    trusted: frozenset[str] = frozenset(),
) -> None:
    """``aud`` must be the client_id, or an array containing it (JARM §2.4 step 3; OIDC Core §3.1.3.7-3/4/5).

    Any other audience is refused unless ``allow_azp`` (ID tokens), it is one of the ``trusted`` audiences
    the application configured (OIDC Core §3.1.3.7-3: the token "MUST be rejected if it contains additional
    audiences not trusted by the Client"), and ``azp`` names the client (§3.1.3.7-4/5).
    """
    aud = claims.get("aud")
    if aud is None:
        raise error("aud claim is missing", reason="aud_missing")
    if isinstance(aud, str):
        audiences: Sequence[object] = [aud]
    elif isinstance(aud, list) and aud:
        audiences = aud
    else:
        raise error("aud claim is malformed", reason="aud_mismatch")
    if not all(isinstance(a, str) for a in audiences) or client_id not in audiences:
        raise error("aud claim does not contain the client_id", reason="aud_mismatch")
    azp = claims.get("azp")
    others = [a for a in audiences if a != client_id]
    if others:
        if not allow_azp:
            raise error("aud claim names other audiences than the client_id", reason="aud_mismatch")
        if not all(a in trusted for a in others):
            raise error(
                "aud claim names an audience that is not in ClientConfig.trusted_audiences",
                reason="aud_untrusted",
            )
        if azp != client_id:
            raise error("aud claim names several audiences but azp is not the client_id", reason="aud_mismatch")
    if allow_azp and azp is not None and azp != client_id:
        raise error("azp claim is not the client_id", reason="azp_mismatch")


def numeric_date(claims: Mapping[str, Any], name: str, error: ErrorClass) -> int | None:
    value = claims.get(name)
    if value is None:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or not 0 <= value < MAX_NUMERIC_DATE
    ):
        raise error(f"{name} claim is not a valid NumericDate", reason=f"{name}_invalid")
    return int(value)


def check_times(
    claims: Mapping[str, Any],
    *,
    now: int,
    skew: int,
    max_lifetime: int,
    error: ErrorClass,
    require_iat: bool = False,
    max_age: int | None = None,
) -> int:
    """``exp`` required and not passed; ``iat``/``nbf`` not in the future; ``exp`` not implausibly far
    (JARM §2.4 step 4, OIDC Core §3.1.3.7-9/10, attack catalog A75). Returns the seconds left."""
    exp = numeric_date(claims, "exp", error)
    iat = numeric_date(claims, "iat", error)
    nbf = numeric_date(claims, "nbf", error)
    if exp is None:
        raise error("exp claim is missing", reason="exp_missing")
    if now > exp + skew:
        raise error("token has expired", reason="expired")
    if exp > now + max_lifetime + skew:
        raise error("exp claim is implausibly far in the future", reason="exp_too_far")
    if iat is None:
        if require_iat:
            raise error("iat claim is missing", reason="iat_missing")
    else:
        if iat > now + skew:
            raise error("iat claim is in the future", reason="iat_in_future")
        if max_age is not None and now - iat > max_age + skew:
            raise error("iat claim is too old", reason="iat_too_old")
    if nbf is not None and nbf > now + skew:
        raise error("token is not yet valid (nbf)", reason="not_yet_valid")
    return exp - now


def check_signing_alg(
    header: Mapping[str, Any],
    expected: str,
    advertised: Sequence[str],
    error: ErrorClass,
    *,
    setting: str = "ClientConfig algorithm",
) -> str:
    """The JWS ``alg`` must equal the client's registered algorithm and be advertised by the server
    (JARM §2.4 step 5, suite ``ValidateJARMSigningAlg``; OIDC Core §3.1.3.7-7). This refuses ``none``
    and ``HS*`` before any key is looked at."""
    alg = header.get("alg")
    if not isinstance(alg, str) or alg != expected:
        raise error(
            f"alg {str(alg)[:16]!r} is not the registered {expected} (set the {setting} the client registered, "
            "or build the configuration with ClientConfig.from_registration)",
            reason="alg_mismatch",
        )
    if alg not in advertised:
        raise error(f"alg {alg} is not advertised by the server", reason="alg_not_advertised")
    return alg
