"""DPoP proofs (RFC 9449): the twelve checks of §4.3, ``ath``, ``htu`` normalisation and server nonces (§8).

Pure: no I/O. The caller supplies the request's method and URL (the server's configured external URL, never
the ``Host`` header), ``now``, the algorithm allowlist, and — when it uses server-provided nonces — a
predicate over the proof's ``nonce``. ``jti`` replay (check 11's companion, §11.1) needs the shared store:
``protocol/dpop_replay.py``.

The JWS itself (compact form, strict JSON, allowlist, signature with the embedded ``jwk``, no private key)
is verified by ``jarmor.jose.verify_jws_embedded_jwk``. ``NonceService`` MACs a time window with the
server's secret (the keyring's ``secret`` key, shared by every node through the key store and rotated with
it) using the standard library's HMAC: a nonce is then valid on every node without any shared write, and
unpredictable without the secret (§8: "Nonce values MUST be unpredictable").

Error descriptions never quote the proof (they name the check that failed).
"""

from __future__ import annotations

import hashlib
import hmac
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlsplit, urlunsplit

from ..jose import InvalidKey, JoseError, b64url_encode, verify_jws_embedded_jwk
from .errors import OAuthError

__all__ = [
    "DPOP_TYP",
    "DPoPError",
    "DPoPProof",
    "NonceService",
    "access_token_hash",
    "normalise_htu",
    "single_header",
    "verify_proof",
]

DPOP_TYP: Final = "dpop+jwt"
MAX_PROOF_LENGTH: Final = 8192
MAX_JTI_LENGTH: Final = 256
MAX_NONCE_LENGTH: Final = 256
# RFC 9449 §8.1: nonce = 1*NQCHAR (%x21 / %x23-5B / %x5D-7E)
_NQCHAR: Final = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+")
_DEFAULT_PORTS: Final = {"http": 80, "https": 443}
_PCT: Final = re.compile(r"%[0-9a-fA-F]{2}")
INVALID_DPOP_PROOF: Final = "invalid_dpop_proof"
USE_DPOP_NONCE: Final = "use_dpop_nonce"


class DPoPError(OAuthError):
    """A refused proof. ``error`` is ``invalid_dpop_proof`` or ``use_dpop_nonce`` (RFC 9449 §5, §8); HTTP 400
    at the token and PAR endpoints (a resource server answers 401, §7.1/§9). ``description`` never quotes
    the proof."""

    error = INVALID_DPOP_PROOF

    def __init__(self, description: str, *, error: str = INVALID_DPOP_PROOF, status: int | None = None) -> None:
        super().__init__(description, status=status)
        self.error = error
        self.nonce: str | None = None  # the fresh nonce to send in ``DPoP-Nonce`` (set by the endpoint)


@dataclass(frozen=True, slots=True)
class DPoPProof:
    """A verified proof: the RFC 7638 thumbprint of its key (``jkt``) and the claims the server acts on."""

    jkt: str
    jti: str
    iat: int
    htm: str
    htu: str
    nonce: str | None
    alg: str
    ath: str | None


def access_token_hash(token: str) -> str:
    """RFC 9449 §4.2 ``ath``: base64url(SHA-256(ASCII(access token)))."""
    return b64url_encode(hashlib.sha256(token.encode("ascii", "replace")).digest())


def single_header(values: Sequence[str]) -> str | None:
    """RFC 9449 §4.3 check 1: "there is not more than one DPoP HTTP request header field". ``values``: every
    ``DPoP`` header of the request (names compared case-insensitively by the HTTP layer). None when absent."""
    if not values:
        return None
    if len(values) > 1:
        raise DPoPError("more than one DPoP header")
    return values[0]


def _upper_pct(match: re.Match[str]) -> str:
    return match.group(0).upper()


def normalise_htu(url: str) -> str:
    """RFC 9449 §4.3 check 9: the URI without query and fragment, after RFC 3986 §6.2.2/§6.2.3 normalisation
    (scheme and host in lower case, the scheme's default port dropped, percent-encodings in upper case, an
    empty path as ``/``). ``ValueError`` for anything that is not an absolute http(s) URI."""
    if not isinstance(url, str) or not url.isascii() or any(ord(c) <= 0x20 or ord(c) == 0x7F for c in url):
        raise ValueError("not an absolute http(s) URI")
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname or parts.username is not None or parts.password is not None:
        raise ValueError("not an absolute http(s) URI")
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    port = parts.port  # ValueError for a port out of range or not a number
    netloc = host if port is None or port == _DEFAULT_PORTS[scheme] else f"{host}:{port}"
    path = _PCT.sub(_upper_pct, parts.path) or "/"
    return urlunsplit((scheme, netloc, path, "", ""))


def _claim_str(claims: dict[str, Any], name: str, limit: int = 8192) -> str:
    value = claims.get(name)
    if not isinstance(value, str) or not value:
        raise DPoPError(f"the proof lacks a valid {name} claim")
    if len(value) > limit:
        raise DPoPError(f"the proof's {name} claim is too long")
    return value


def _claim_iat(claims: dict[str, Any]) -> int:
    value = claims.get("iat")
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise DPoPError("the proof lacks a valid iat claim")
    return int(value)


def _verified(proof: str, allowed_algs: Sequence[str]) -> tuple[dict[str, Any], dict[str, Any], str]:
    """Checks 2 and 4-7: a well-formed JWS, ``typ`` ``dpop+jwt``, an allowed asymmetric ``alg``, a public
    ``jwk`` that verifies the signature. Returns (header, claims, jkt)."""
    try:
        verified = verify_jws_embedded_jwk(proof, algorithms=tuple(allowed_algs), max_length=MAX_PROOF_LENGTH)
    except InvalidKey as exc:
        if exc.reason == "private_key":
            raise DPoPError("the proof's jwk header contains a private key") from exc
        raise DPoPError("the proof's jwk header is not an acceptable public key") from exc
    except JoseError as exc:
        raise DPoPError(f"the proof is not a valid signed JWT ({exc.reason})") from exc
    if verified.header.get("typ") != DPOP_TYP:  # §11.5: exact, as the conformance suite checks
        raise DPoPError("the proof's typ header must be dpop+jwt")
    return verified.header, verified.claims, verified.key.thumbprint()


def _check_htu(claimed: str, url: str) -> None:
    try:
        same = normalise_htu(claimed) == normalise_htu(url)
    except ValueError as exc:
        raise DPoPError("the proof's htu claim is not an absolute http(s) URI") from exc
    if not same:
        raise DPoPError("the proof's htu claim does not match the request URI")


def verify_proof(
    proof: str,
    *,
    method: str,
    url: str,
    now: int,
    allowed_algs: Sequence[str],
    access_token: str | None = None,
    nonce_ok: Callable[[str | None], bool] | None = None,
    max_age: int = 300,
    future_skew: int = 60,
) -> DPoPProof:
    """RFC 9449 §4.3: verify one proof (check 1, a single header, is ``single_header``'s).

    ``access_token``: at a resource server, the token the proof must carry ``ath`` for (check 12; the key
    match against ``cnf.jkt`` is the caller's, with the returned ``jkt``). ``nonce_ok``: when the server
    issues nonces, whether the proof's ``nonce`` (None when absent) is one it issued recently (check 10;
    refused as ``use_dpop_nonce``, after every other check). ``iat`` is accepted from ``now - max_age`` to
    ``now + future_skew`` (check 11; the conformance suite requires ±10 s to succeed).
    """
    header, claims, jkt = _verified(proof, allowed_algs)
    jti = _claim_str(claims, "jti", MAX_JTI_LENGTH)
    htm = _claim_str(claims, "htm", 16)
    htu = _claim_str(claims, "htu")
    iat = _claim_iat(claims)
    if htm != method:  # check 8: exact
        raise DPoPError("the proof's htm claim does not match the request method")
    _check_htu(htu, url)
    if iat < now - max_age or iat > now + future_skew:
        raise DPoPError("the proof's iat is outside the accepted time window")
    ath = claims.get("ath")
    if ath is not None and not isinstance(ath, str):
        raise DPoPError("the proof's ath claim is not a string")
    if access_token is not None:
        if ath is None:
            raise DPoPError("the proof lacks the ath claim")
        if not hmac.compare_digest(ath.encode("ascii", "replace"), access_token_hash(access_token).encode()):
            raise DPoPError("the proof's ath claim does not match the access token")
    nonce = claims.get("nonce")
    if nonce is not None and (not isinstance(nonce, str) or len(nonce) > MAX_NONCE_LENGTH):
        raise DPoPError("the proof's nonce claim is not a valid nonce")
    if nonce_ok is not None and not nonce_ok(nonce):
        raise DPoPError("a fresh DPoP nonce is required", error=USE_DPOP_NONCE)
    return DPoPProof(jkt=jkt, jti=jti, iat=iat, htm=htm, htu=htu, nonce=nonce, alg=str(header["alg"]), ath=ath)


class NonceService:
    """Server-provided nonces (RFC 9449 §8): HMAC-SHA256 of a time window under a secret every node shares.

    ``secrets``: current first, then older ones still accepted (the keyring's ``secrets()``), so a nonce
    survives secret rotation. A nonce is valid in the window it was issued in and the next one (between
    ``window`` and ``2 * window`` seconds). ``label`` keeps the nonces of different servers (an AS and a
    resource server sharing a secret) apart (§8: nonces are specific to the server that issued them).
    """

    def __init__(self, secrets: Sequence[bytes], *, window: int = 300, label: str = "as") -> None:
        if not secrets:
            raise ValueError("NonceService needs at least one secret")
        if window < 1:
            raise ValueError("window must be at least one second")
        self._secrets = tuple(secrets)
        self._window = window
        self._label = label.encode()

    def _mac(self, secret: bytes, index: int) -> str:
        message = b"jarmor-dpop-nonce\x00" + self._label + b"\x00" + str(index).encode()
        return b64url_encode(hmac.new(secret, message, hashlib.sha256).digest())

    def issue(self, now: int) -> str:
        """The nonce to hand out now (``DPoP-Nonce``); 43 base64url characters, within ``1*NQCHAR``."""
        return self._mac(self._secrets[0], now // self._window)

    def check(self, nonce: str | None, now: int) -> bool:
        """Whether ``nonce`` is one this service issued in the current or the previous window."""
        if not isinstance(nonce, str) or _NQCHAR.fullmatch(nonce) is None or len(nonce) > MAX_NONCE_LENGTH:
            return False
        index = now // self._window
        given = nonce.encode("ascii")
        ok = False
        for secret in self._secrets:
            for i in (index, index - 1):
                ok |= hmac.compare_digest(given, self._mac(secret, i).encode("ascii"))
        return ok

    def checker(self, now: int) -> Callable[[str | None], bool]:
        """``verify_proof(nonce_ok=...)`` for a request handled at ``now``."""
        return lambda nonce: self.check(nonce, now)
