"""Compact JWS/JWE: sign, verify, encrypt, decrypt — each with an explicit allowlist and size limits.

A token is refused before any cryptography unless it is a ``str`` of the compact form (RFC 7515 §7.1,
RFC 7516 §7.1: 3 or 5 dot-separated canonical base64url segments, JSON serializations never), its protected
header decodes with strict base64url and strict JSON, names an algorithm in the caller's allowlist, and
carries no ``crit``, ``b64`` or ``zip`` (RFC 7515 §4.1.11, RFC 7797, RFC 7516 §4.1.3, RFC 8725 §3.6) and the
expected ``typ`` (RFC 8725 §3.11). Header members this layer does not understand are ignored (RFC 7515 §4);
keys named or embedded in a header (``jwk``, ``jku``, ``x5u``, ``x5c``) are never used (RFC 8725 §3.10).

JWS signatures are checked here (``verify_signature``) over the exact bytes received, so the claims returned
are parsed from exactly the bytes that were verified; the signature operation itself is ``cryptography``'s,
with the key objects prepared once per key (``signatures``, ``Jwk.signature_ops``: the JOSE library's key
checks, run once, and the same calls it makes). JWE decryption is delegated to the JOSE library after every
segment, length and the ``epk`` have been checked.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any, Final

import orjson
from joserfc import jwe as _jwe
from joserfc.errors import JoseError as _LibError

from .algorithms import CONTENT_ENCRYPTION_ALGS, FORBIDDEN, KEY_MANAGEMENT_ALGS, SIGNING_ALGS
from .b64 import ALPHABET, b64url_decode, b64url_encode
from .errors import (
    AlgorithmNotAllowed,
    BadSignature,
    DecryptionFailed,
    InvalidKey,
    JoseError,
    KeyNotFound,
    MalformedToken,
    TokenTooLarge,
    UnsupportedHeader,
)
from .keys import Jwk, JwkSet, import_jwk, valid_kid, x25519_agreement_ok
from .signatures import SIGNERS
from .strictjson import loads_object

__all__ = [
    "MAX_HEADER_LENGTH",
    "MAX_TOKEN_LENGTH",
    "SIGNERS",
    "DecryptedJwe",
    "VerifiedJws",
    "b64url_decode",
    "b64url_encode",
    "decrypt_jwe",
    "encrypt_jwe",
    "is_jwe",
    "peek_claims",
    "peek_header",
    "sign_jws",
    "split_token",
    "verify_jws",
    "verify_signature",
]

MAX_TOKEN_LENGTH: Final = 64 * 1024
MAX_HEADER_LENGTH: Final = 4096
_COMPACT_ALPHABET: Final = ALPHABET + b"."
_PLAIN_COLLECTIONS: Final = frozenset({list, tuple, set, frozenset})

# Header members refused outright because honouring them changes what is verified or decrypted.
_REFUSED_MEMBERS: Final = ("crit", "b64", "zip")
# Members a caller may not set through ``sign_jws(extra_header=...)``: the layer sets them or refuses them.
_RESERVED_SIGN_MEMBERS: Final = frozenset({"alg", "kid", "typ", "crit", "b64", "zip", "enc"})

# Content encryption: (IV bytes, tag bytes, CEK bytes) per RFC 7518 §5.2.3-§5.2.5 and §5.3.
ENC_SIZES: Final[dict[str, tuple[int, int, int]]] = {
    "A128GCM": (12, 16, 16),
    "A192GCM": (12, 16, 24),
    "A256GCM": (12, 16, 32),
    "A128CBC-HS256": (16, 16, 32),
    "A192CBC-HS384": (16, 24, 48),
    "A256CBC-HS512": (16, 32, 64),
}
_KW_OVERHEAD: Final = 8  # RFC 3394: the wrapped key is 8 bytes longer than the key


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


def check_allowlist(names: Collection[str], what: str) -> None:
    """An allowlist is a collection of names; a bare string would make ``in`` a substring test."""
    if type(names) in _PLAIN_COLLECTIONS:
        return
    if isinstance(names, str | bytes) or not isinstance(names, Collection):
        raise TypeError(f"{what} must be a collection of algorithm names, not {type(names).__name__}")


def split_token(token: object, *, max_length: int = MAX_TOKEN_LENGTH) -> list[str]:
    """Split a compact JWS (3 parts) or JWE (5 parts); refuse anything else before decoding a byte."""
    if not isinstance(token, str):
        raise MalformedToken("token must be a string")
    if len(token) > max_length:
        raise TokenTooLarge(f"token longer than {max_length} characters")
    dots = token.count(".")
    if (dots != 2 and dots != 4) or not token.isascii() or token.encode("ascii").translate(None, _COMPACT_ALPHABET):
        raise MalformedToken(
            "token is neither a compact JWS (3 parts) nor a compact JWE (5 parts) of base64url segments"
        )
    return token.split(".")


def is_jwe(token: object) -> bool:
    """True for something shaped like a compact JWE (5 segments); says nothing about validity."""
    return isinstance(token, str) and token.count(".") == 4


def decode_header(segment: str) -> dict[str, Any]:
    if not segment:
        raise MalformedToken("empty protected header")
    if len(segment) > MAX_HEADER_LENGTH:
        raise TokenTooLarge("protected header too large")
    return loads_object(b64url_decode(segment), max_depth=4)


def peek_header(token: object, *, max_length: int = MAX_TOKEN_LENGTH) -> dict[str, Any]:
    """The protected header of a compact JWS or JWE, parsed strictly but NOT verified."""
    return decode_header(split_token(token, max_length=max_length)[0])


def peek_claims(token: object, *, max_length: int = MAX_TOKEN_LENGTH) -> dict[str, Any]:
    """The payload of a compact JWS, parsed strictly but NOT verified (for choosing an error channel only)."""
    parts = split_token(token, max_length=max_length)
    if len(parts) != 3:
        raise MalformedToken("not a JWS", reason="unexpected_jwe")
    return loads_object(b64url_decode(parts[1]))


def check_common(header: Mapping[str, Any]) -> None:
    for member in _REFUSED_MEMBERS:
        if member in header:
            raise UnsupportedHeader(f"header parameter {member} is not accepted", reason=f"header_{member}")
    if "kid" in header and not valid_kid(header["kid"]):
        raise MalformedToken("kid must be a non-empty string of at most 256 characters", reason="bad_kid")


def _check_typ(header: Mapping[str, Any], typ: Collection[str] | None, typ_required: bool) -> None:
    if typ is None:
        return
    if isinstance(typ, str):
        raise TypeError("typ must be a collection of accepted values, not a string")
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
    if normalized not in {t.lower().removeprefix("application/") for t in typ}:
        raise UnsupportedHeader("unexpected typ", reason="typ")


def reject_alg(alg: object, allowed: Collection[str], known: Collection[str]) -> str:
    if not isinstance(alg, str):
        raise AlgorithmNotAllowed("alg header missing or not a string")
    if alg in FORBIDDEN or alg.strip().lower() == "none" or alg not in allowed or alg not in known:
        raise AlgorithmNotAllowed("algorithm (alg) is not allowed here")
    return alg


def verify_signature(key: Jwk, alg: str, signing_input: bytes, signature: bytes) -> bool:
    """Verify a raw JWS signature (RFC 7515 §5.2 step 8) with one key; the primitive under ``verify_jws``.

    ``signature`` is the decoded third segment: R‖S of the curve's fixed width for ES* (RFC 7518 §3.4; a DER
    encoding or any other length is refused), the modulus width for RS*/PS*, 64 bytes for EdDSA. Returns
    ``False`` for a bad signature; raises ``AlgorithmNotAllowed`` for an algorithm jarmor never accepts and
    ``KeyNotFound`` (``key_mismatch``) when the key is not bound to ``alg`` (RFC 8725 §3.1).
    """
    if alg not in SIGNING_ALGS or alg in FORBIDDEN:
        raise AlgorithmNotAllowed("algorithm (alg) is not allowed here")
    if not key.fits_signing_alg(alg):
        raise KeyNotFound(f"the key cannot verify {alg}", reason="key_mismatch")
    ops = key.signature_ops(alg)
    if ops is None or ops.verify is None or not isinstance(signature, bytes) or len(signature) != ops.length:
        return False
    try:
        return ops.verify(bytes(signing_input), signature)
    except (ValueError, TypeError, OverflowError):
        return False


def _verify_compact(
    token: object,
    keys: JwkSet,
    *,
    algorithms: Collection[str],
    typ: Collection[str] | None = None,
    typ_required: bool = False,
    max_length: int = MAX_TOKEN_LENGTH,
) -> tuple[dict[str, Any], bytes, Jwk]:
    """Verify a compact JWS and return (header, payload bytes, key) without interpreting the payload."""
    check_allowlist(algorithms, "algorithms")
    parts = split_token(token, max_length=max_length)
    if len(parts) != 3:
        raise MalformedToken("expected a signed JWT (JWS), got an encrypted one", reason="unexpected_jwe")
    header_segment, payload_segment, signature_segment = parts
    header = decode_header(header_segment)
    alg = reject_alg(header.get("alg"), algorithms, SIGNING_ALGS)
    check_common(header)
    _check_typ(header, typ, typ_required)
    if not payload_segment:
        raise MalformedToken("empty payload (detached content is not supported)", reason="empty_payload")
    if not signature_segment:
        raise BadSignature("empty signature", reason="missing_signature")
    payload = b64url_decode(payload_segment)
    signature = b64url_decode(signature_segment)
    key = keys.select_verification_key(alg, header.get("kid"))
    signing_input = f"{header_segment}.{payload_segment}".encode("ascii")
    if not verify_signature(key, alg, signing_input, signature):
        raise BadSignature("signature verification failed")
    return header, payload, key


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

    ``algorithms``: the caller's allowlist (never derived from the token). ``typ``: the accepted ``typ``
    values (case-insensitive, ``application/`` prefix optional, RFC 8725 §3.11); a token with another
    ``typ`` is refused. ``None`` skips the check. The claims must be a strict JSON object.
    """
    header, payload, key = _verify_compact(
        token, keys, algorithms=algorithms, typ=typ, typ_required=typ_required, max_length=max_length
    )
    return VerifiedJws(header=header, claims=loads_object(payload), key=key)


def _check_finite(value: Any) -> None:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, float) and not math.isfinite(item):
            raise MalformedToken("cannot encode a non-finite number", reason="unserializable")
        if isinstance(item, Mapping):
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)


def dumps(value: Mapping[str, Any]) -> bytes:
    """JSON for a header or claims set: refuse what strict parsing would refuse (NaN, huge integers).

    orjson writes a non-finite float as ``null``, so the value is searched for one only when the output
    holds ``null`` (or cannot be written at all, where the non-finite number is the error reported first).
    """
    try:
        out = orjson.dumps(value if type(value) is dict else dict(value))
    except (orjson.JSONEncodeError, TypeError, ValueError) as exc:
        _check_finite(value)
        raise MalformedToken(f"cannot encode as JSON: {exc}", reason="unserializable") from exc
    if b"null" in out:
        _check_finite(value)
    return out


def sign_jws(
    claims: Mapping[str, Any],
    key: Jwk,
    alg: str,
    *,
    typ: str | None = None,
    extra_header: Mapping[str, Any] | None = None,
) -> str:
    """Sign ``claims`` as a compact JWS; the header always names the key (``kid``).

    ``extra_header`` may add members but not set ``alg``, ``kid``, ``typ``, ``crit``, ``b64``, ``zip`` or
    ``enc``: a token this layer signs is one it would accept.
    """
    if alg not in SIGNING_ALGS or alg in FORBIDDEN:
        raise AlgorithmNotAllowed(f"cannot sign with {alg!r}")
    if not key.fits_signing_alg(alg) or not key.is_private:
        raise KeyNotFound(f"the key cannot sign with {alg}", reason="key_mismatch")
    header: dict[str, Any] = {"alg": alg, "kid": key.kid}
    if typ:
        header["typ"] = typ
    if extra_header:
        reserved = _RESERVED_SIGN_MEMBERS & set(extra_header)
        if reserved:
            raise UnsupportedHeader(f"extra_header may not set {sorted(reserved)}", reason="reserved_header")
        header.update(extra_header)
    header_segment = b64url_encode(dumps(header))
    if len(header_segment) > MAX_HEADER_LENGTH:
        raise TokenTooLarge("protected header too large")
    payload_segment = b64url_encode(dumps(claims))
    signing_input = f"{header_segment}.{payload_segment}".encode("ascii")
    ops = key.signature_ops(alg)
    if ops is None or ops.sign is None:  # the JOSE library's key checks refuse it (its use, alg or key_ops)
        raise KeyNotFound(f"the key cannot sign with {alg}", reason="key_mismatch")
    try:
        signature = ops.sign(signing_input)
    except (ValueError, TypeError) as exc:  # pragma: no cover - fits_signing_alg checked above
        raise KeyNotFound(f"the key cannot sign with {alg}", reason="key_mismatch") from exc
    token = f"{header_segment}.{payload_segment}.{b64url_encode(signature)}"
    if len(token) > MAX_TOKEN_LENGTH:
        raise TokenTooLarge(f"signed token longer than {MAX_TOKEN_LENGTH} characters")
    return token


def _jwe_registry(alg: str, enc: str) -> _jwe.JWERegistry:
    """A registry allowing exactly ``alg`` and ``enc``, with jarmor's size limits (not the library's)."""
    registry = _jwe.JWERegistry(algorithms=[alg, enc], strict_check_header=False)
    registry.max_protected_header_length = MAX_HEADER_LENGTH
    registry.max_encrypted_key_length = 2048  # base64url of an 8192-bit RSA-OAEP encrypted key is 1366
    registry.max_ciphertext_length = MAX_TOKEN_LENGTH
    return registry


def encrypt_jwe(
    plaintext: bytes | str,
    key: Jwk,
    alg: str,
    enc: str,
    *,
    cty: str | None = None,
) -> str:
    """Encrypt to the recipient's public key; the header names it (``kid``) so the recipient can pick it.

    An empty plaintext is refused: ``decrypt_jwe`` refuses an empty ciphertext.
    """
    if alg not in KEY_MANAGEMENT_ALGS or enc not in CONTENT_ENCRYPTION_ALGS or alg in FORBIDDEN:
        raise AlgorithmNotAllowed(f"cannot encrypt with {alg}/{enc}")
    if not key.fits_encryption_alg(alg):
        raise KeyNotFound(f"the key cannot be used with {alg}", reason="key_mismatch")
    if not plaintext:
        raise MalformedToken("nothing to encrypt", reason="empty_plaintext")
    header: dict[str, Any] = {"alg": alg, "enc": enc, "kid": key.kid}
    if cty:
        header["cty"] = cty
    try:
        token = str(_jwe.encrypt_compact(header, plaintext, key.key, registry=_jwe_registry(alg, enc)))
    except (_LibError, ValueError, TypeError) as exc:  # pragma: no cover - inputs checked above
        raise InvalidKey(f"cannot encrypt to the key: {exc.__class__.__name__}") from exc
    if len(token) > MAX_TOKEN_LENGTH:
        raise TokenTooLarge(f"encrypted token longer than {MAX_TOKEN_LENGTH} characters")
    return token


def _bad_epk() -> DecryptionFailed:
    return DecryptionFailed("ephemeral public key refused", reason="bad_epk")


def _check_epk(epk: object, key: Jwk) -> None:
    """RFC 7518 §4.6, RFC 8725 §3.4: the ``epk`` is a valid public key on the recipient key's curve.

    The point is validated on import (off-curve points, coordinates of the wrong width, another curve and
    any private member are refused); an X25519 ``epk`` whose shared secret would be all zero (a low-order
    point) is refused too. Every failure is the same ``DecryptionFailed(reason="bad_epk")``.
    """
    if not isinstance(epk, Mapping) or epk.get("kty") != key.kty or epk.get("crv") != key.crv:
        raise _bad_epk()
    try:
        ephemeral = import_jwk(
            {k: v for k, v in epk.items() if k not in ("kid", "use", "alg", "key_ops")}, allow_private=False
        )
    except JoseError as exc:
        raise _bad_epk() from exc
    if key.crv == "X25519" and not x25519_agreement_ok(key, ephemeral):
        raise _bad_epk()


def _check_jwe_lengths(
    alg: str, enc: str, key: Jwk, ek: bytes, iv: bytes, ciphertext: bytes, tag: bytes
) -> None:
    iv_len, tag_len, cek_len = ENC_SIZES[enc]
    if len(iv) != iv_len:
        raise DecryptionFailed("initialization vector has the wrong length", reason="bad_iv")
    if len(tag) != tag_len:
        raise DecryptionFailed("authentication tag has the wrong length", reason="bad_tag")
    if not ciphertext or ("CBC" in enc and len(ciphertext) % 16):
        raise DecryptionFailed("ciphertext is empty or not whole blocks", reason="bad_ciphertext")
    if alg == "ECDH-ES":
        want = 0
    elif alg.startswith("ECDH-ES+"):
        want = cek_len + _KW_OVERHEAD
    else:
        want = key.modulus_bytes
    if len(ek) != want:
        raise DecryptionFailed("encrypted key has the wrong length", reason="bad_encrypted_key")


def decrypt_jwe(
    token: object,
    keys: JwkSet,
    *,
    algorithms: Collection[str],
    encryptions: Collection[str],
    max_length: int = MAX_TOKEN_LENGTH,
) -> DecryptedJwe:
    """Decrypt a compact JWE with the private key its header names; refuse ``zip`` and foreign algorithms.

    The plaintext is returned as is: whether it must be a nested JWS (RFC 9101 §5, JARM §2.3) is the
    caller's decision, and a successful decryption never authenticates the sender.
    """
    check_allowlist(algorithms, "algorithms")
    check_allowlist(encryptions, "encryptions")
    parts = split_token(token, max_length=max_length)
    if len(parts) != 5:
        raise MalformedToken("expected an encrypted JWT (JWE)", reason="not_jwe")
    header = decode_header(parts[0])
    alg = reject_alg(header.get("alg"), algorithms, KEY_MANAGEMENT_ALGS)
    enc = header.get("enc")
    if not isinstance(enc, str) or enc not in encryptions or enc not in CONTENT_ENCRYPTION_ALGS:
        raise AlgorithmNotAllowed("content encryption (enc) is not allowed here")
    check_common(header)
    ek, iv, ciphertext, tag = (b64url_decode(p) for p in parts[1:])
    key = keys.select_decryption_key(alg, header.get("kid"))
    _check_jwe_lengths(alg, enc, key, ek, iv, ciphertext, tag)
    if alg.startswith("ECDH-ES"):
        _check_epk(header.get("epk"), key)
    try:
        result = _jwe.decrypt_compact(str(token), key.key, registry=_jwe_registry(alg, enc))
    except (_LibError, ValueError, TypeError, KeyError, OverflowError, AssertionError) as exc:
        raise DecryptionFailed("decryption failed") from exc
    return DecryptedJwe(header=header, plaintext=result.plaintext or b"", key=key)
