"""Compact JWS/JWE: sign, verify, encrypt, decrypt — each with an explicit allowlist and size limits.

Before joserfc sees a token, its header is decoded here with strict base64url and strict JSON, and refused
when it names an algorithm outside the caller's allowlist, carries ``crit``, ``b64`` or ``zip``
(RFC 7515 §4.1.11, RFC 7797, RFC 7516 §4.1.3), or an unexpected ``typ`` (RFC 8725 §3.11).
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from joserfc import jwe as _jwe
from joserfc import jws as _jws
from joserfc.errors import JoseError as _LibError

from .algorithms import CONTENT_ENCRYPTION_ALGS, FORBIDDEN, KEY_MANAGEMENT_ALGS, SIGNING_ALGS
from .errors import (
    AlgorithmNotAllowed,
    BadSignature,
    DecryptionFailed,
    JoseError,
    KeyNotFound,
    MalformedToken,
    TokenTooLarge,
    UnsupportedHeader,
)
from .keys import Jwk, JwkSet
from .strictjson import loads_object

MAX_TOKEN_LENGTH = 64 * 1024
MAX_HEADER_LENGTH = 4096
_B64URL = re.compile(rb"^[A-Za-z0-9_-]*$")

# Header members that must never influence processing. They are ignored for key selection; ``crit``,
# ``b64`` and ``zip`` are refused outright because honouring them changes what is verified.
_REFUSED_MEMBERS = ("crit", "b64", "zip")


@dataclass(frozen=True, slots=True)
class VerifiedJws:
    header: dict[str, Any]
    claims: dict[str, Any]
    key: Jwk


@dataclass(frozen=True, slots=True)
class DecryptedJwe:
    header: dict[str, Any]
    plaintext: bytes
    key: Jwk


def b64url_decode(segment: str | bytes) -> bytes:
    """Strict base64url without padding (RFC 7515 §2): other alphabets, padding and stray bits are refused."""
    raw = segment.encode("ascii") if isinstance(segment, str) else segment
    if not _B64URL.match(raw) or len(raw) % 4 == 1:
        raise MalformedToken("invalid base64url segment")
    try:
        decoded = base64.urlsafe_b64decode(raw + b"=" * (-len(raw) % 4))
    except (binascii.Error, ValueError) as exc:
        raise MalformedToken("invalid base64url segment") from exc
    if base64.urlsafe_b64encode(decoded).rstrip(b"=") != raw:
        raise MalformedToken("non-canonical base64url segment")
    return decoded


def b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def split_token(token: object, *, max_length: int = MAX_TOKEN_LENGTH) -> list[str]:
    if not isinstance(token, str):
        raise MalformedToken("token must be a string")
    if len(token) > max_length:
        raise TokenTooLarge(f"token longer than {max_length} characters")
    if not token.isascii():
        raise MalformedToken("token contains non-ASCII characters")
    parts = token.split(".")
    if len(parts) not in (3, 5):
        raise MalformedToken("token is neither a compact JWS (3 parts) nor a compact JWE (5 parts)")
    return parts


def is_jwe(token: str) -> bool:
    return token.count(".") == 4


def _header(segment: str) -> dict[str, Any]:
    if not segment:
        raise MalformedToken("empty protected header")
    if len(segment) > MAX_HEADER_LENGTH:
        raise TokenTooLarge("protected header too large")
    return loads_object(b64url_decode(segment), max_depth=4)


def peek_header(token: object, *, max_length: int = MAX_TOKEN_LENGTH) -> dict[str, Any]:
    """The protected header of a compact JWS or JWE, parsed strictly but NOT verified."""
    return _header(split_token(token, max_length=max_length)[0])


def peek_claims(token: object, *, max_length: int = MAX_TOKEN_LENGTH) -> dict[str, Any]:
    """The payload of a compact JWS, parsed strictly but NOT verified (for choosing an error channel only)."""
    parts = split_token(token, max_length=max_length)
    if len(parts) != 3:
        raise MalformedToken("not a JWS")
    return loads_object(b64url_decode(parts[1]))


def _check_common(header: Mapping[str, Any]) -> None:
    for member in _REFUSED_MEMBERS:
        if member in header:
            raise UnsupportedHeader(f"header parameter {member!r} is not accepted", reason=f"header_{member}")


def _check_typ(header: Mapping[str, Any], typ: Collection[str] | None, typ_required: bool) -> None:
    if typ is None:
        return
    value = header.get("typ")
    if value is None:
        if typ_required:
            raise UnsupportedHeader("typ header is required", reason="typ")
        return
    if not isinstance(value, str):
        raise UnsupportedHeader("typ header must be a string", reason="typ")
    normalized = value.lower()
    if normalized.startswith("application/"):
        normalized = normalized[len("application/") :]
    if normalized not in {t.lower() for t in typ}:
        raise UnsupportedHeader(f"unexpected typ {value!r}", reason="typ")


def _reject_alg(alg: object, allowed: Collection[str], known: Collection[str]) -> str:
    if not isinstance(alg, str):
        raise AlgorithmNotAllowed("alg header missing or not a string")
    if alg in FORBIDDEN or alg.lower() == "none" or alg not in allowed or alg not in known:
        raise AlgorithmNotAllowed(f"algorithm {alg!r} is not allowed here")
    return alg


def verify_jws(
    token: object,
    keys: JwkSet,
    *,
    algorithms: Collection[str],
    typ: Collection[str] | None = None,
    typ_required: bool = False,
    max_length: int = MAX_TOKEN_LENGTH,
) -> VerifiedJws:
    """Verify a compact JWS with one key of ``keys`` chosen by ``kid``/``alg``; return header and claims.

    ``typ``: the accepted ``typ`` values (case-insensitive, ``application/`` prefix optional, RFC 8725 §3.11);
    a token with another ``typ`` is refused. ``None`` skips the check.
    """
    parts = split_token(token, max_length=max_length)
    if len(parts) != 3:
        raise MalformedToken("expected a signed JWT (JWS), got an encrypted one", reason="unexpected_jwe")
    if not parts[2]:
        raise BadSignature("empty signature")
    header = _header(parts[0])
    alg = _reject_alg(header.get("alg"), algorithms, SIGNING_ALGS)
    _check_common(header)
    _check_typ(header, typ, typ_required)
    key = keys.select_verification_key(alg, header.get("kid"))
    try:
        result = _jws.deserialize_compact(str(token), key.key, algorithms=[alg])
    except _LibError as exc:
        if "signature" in str(exc).lower() or exc.__class__.__name__ == "BadSignatureError":
            raise BadSignature("signature verification failed") from exc
        raise MalformedToken(f"token refused: {exc.__class__.__name__}") from exc
    except (ValueError, TypeError) as exc:
        raise MalformedToken("token refused") from exc
    claims = loads_object(result.payload)
    return VerifiedJws(header=header, claims=claims, key=key)


def sign_jws(
    claims: Mapping[str, Any],
    key: Jwk,
    alg: str,
    *,
    typ: str | None = None,
    extra_header: Mapping[str, Any] | None = None,
) -> str:
    """Sign ``claims`` as a compact JWS; the header always names the key (``kid``)."""
    if alg not in SIGNING_ALGS or alg in FORBIDDEN:
        raise AlgorithmNotAllowed(f"cannot sign with {alg!r}")
    if not key.fits_signing_alg(alg) or not key.is_private:
        raise KeyNotFound(f"key {key.kid!r} cannot sign with {alg}")
    header: dict[str, Any] = {"alg": alg, "kid": key.kid}
    if typ:
        header["typ"] = typ
    if extra_header:
        header.update(extra_header)
    return str(_jws.serialize_compact(header, orjson.dumps(dict(claims)), key.key, algorithms=[alg]))


def encrypt_jwe(
    plaintext: bytes | str,
    key: Jwk,
    alg: str,
    enc: str,
    *,
    cty: str | None = None,
) -> str:
    """Encrypt to the recipient's public key; the header names it (``kid``) so the recipient can pick it."""
    if alg not in KEY_MANAGEMENT_ALGS or enc not in CONTENT_ENCRYPTION_ALGS or alg in FORBIDDEN:
        raise AlgorithmNotAllowed(f"cannot encrypt with {alg}/{enc}")
    if not key.fits_encryption_alg(alg):
        raise KeyNotFound(f"key {key.kid!r} cannot be used with {alg}")
    header: dict[str, Any] = {"alg": alg, "enc": enc, "kid": key.kid}
    if cty:
        header["cty"] = cty
    return str(_jwe.encrypt_compact(header, plaintext, key.key, algorithms=[alg, enc]))


def decrypt_jwe(
    token: object,
    keys: JwkSet,
    *,
    algorithms: Collection[str],
    encryptions: Collection[str],
    max_length: int = MAX_TOKEN_LENGTH,
) -> DecryptedJwe:
    """Decrypt a compact JWE with the private key its header names; refuse ``zip`` and foreign algorithms."""
    parts = split_token(token, max_length=max_length)
    if len(parts) != 5:
        raise MalformedToken("expected an encrypted JWT (JWE)", reason="not_jwe")
    header = _header(parts[0])
    alg = _reject_alg(header.get("alg"), algorithms, KEY_MANAGEMENT_ALGS)
    enc = header.get("enc")
    if not isinstance(enc, str) or enc not in encryptions or enc not in CONTENT_ENCRYPTION_ALGS:
        raise AlgorithmNotAllowed(f"content encryption {enc!r} is not allowed here")
    _check_common(header)
    key = keys.select_decryption_key(alg, header.get("kid"))
    epk = header.get("epk")
    if alg.startswith("ECDH-ES"):
        if not isinstance(epk, Mapping) or epk.get("kty") != key.kty or epk.get("crv") != key.crv:
            raise DecryptionFailed("ephemeral key missing or on another curve", reason="bad_epk")
        if any(m in epk for m in ("d", "p", "q")):
            raise DecryptionFailed("ephemeral key carries private material", reason="bad_epk")
    try:
        result = _jwe.decrypt_compact(str(token), key.key, algorithms=[alg, enc])
    except JoseError:
        raise
    except (_LibError, ValueError, TypeError, KeyError, OverflowError) as exc:
        raise DecryptionFailed("decryption failed") from exc
    return DecryptedJwe(header=header, plaintext=result.plaintext or b"", key=key)
