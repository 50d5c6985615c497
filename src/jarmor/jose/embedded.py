"""JWS signed with the public key its own header carries (``jwk``), and RFC 7638 key thumbprints.

Everywhere else jarmor refuses keys named or embedded in a header (RFC 8725 §3.10). A DPoP proof (RFC 9449
§4.2) is the exception: the proof *is* a proof of possession of the key in its ``jwk`` header, and what it
binds is that key's thumbprint, never an identity. So this module verifies such a token against exactly that
key, under the same rules as ``verify_jws`` (compact form, strict header, the caller's algorithm allowlist,
no ``crit``/``b64``/``zip``) plus: the ``jwk`` must be an asymmetric public key accepted by ``import_jwk``
(no private members, RFC 9449 §4.3 check 7; no symmetric key; a known curve, an RSA key of 2048+ bits) and
fit the header's ``alg`` (RFC 8725 §3.1).

A client signs its proofs with one key for a long time, so the imported key is kept (``_import_public``, a
bounded LRU) under the exact JSON of the ``jwk`` member: a later proof with the same ``jwk`` gets the very
``Jwk`` an import of it returns, already validated and with its ``cryptography`` objects and thumbprint
built; any other ``jwk`` (one member, one character different) is imported afresh. Refusals are not kept.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from functools import lru_cache
from typing import Any, Final

import orjson

from .algorithms import SIGNING_ALGS
from .b64 import b64url_decode, b64url_encode
from .errors import BadSignature, KeyNotFound, MalformedToken
from .keys import Jwk, import_jwk
from .strictjson import loads_object
from .tokens import (
    VerifiedJws,
    check_allowlist,
    check_common,
    decode_header,
    dumps,
    reject_alg,
    split_token,
    verify_signature,
)

__all__ = ["MAX_EMBEDDED_TOKEN_LENGTH", "jwk_thumbprint", "sign_jws_embedded_jwk", "verify_jws_embedded_jwk"]

MAX_EMBEDDED_TOKEN_LENGTH: Final = 8192
IMPORTED_KEYS_KEPT: Final = 256


@lru_cache(maxsize=IMPORTED_KEYS_KEPT)
def _import_canonical(canonical: bytes) -> Jwk:
    return import_jwk(orjson.loads(canonical), allow_private=False)


def _import_public(jwk: Mapping[str, Any]) -> Jwk:
    """``import_jwk(jwk, allow_private=False)``, kept per distinct ``jwk`` (keys sorted: member order does
    not change what ``import_jwk`` reads)."""
    try:
        canonical = orjson.dumps(jwk if type(jwk) is dict else dict(jwk), option=orjson.OPT_SORT_KEYS)
    except (orjson.JSONEncodeError, TypeError, ValueError):  # e.g. an integer beyond 64 bits: no caching
        return import_jwk(jwk, allow_private=False)
    return _import_canonical(canonical)


def jwk_thumbprint(jwk: Mapping[str, Any]) -> str:
    """RFC 7638 SHA-256 thumbprint (base64url) of a public JWK; ``InvalidKey`` for anything ``import_jwk``
    refuses as a public key."""
    return _import_public(jwk).thumbprint()


def _embedded_key(header: Mapping[str, Any]) -> Jwk:
    jwk = header.get("jwk")
    if not isinstance(jwk, Mapping):
        raise MalformedToken("jwk header is missing or not a JSON object", reason="missing_jwk")
    return _import_public(jwk)


def verify_jws_embedded_jwk(
    token: object,
    *,
    algorithms: Collection[str],
    max_length: int = MAX_EMBEDDED_TOKEN_LENGTH,
) -> VerifiedJws:
    """Verify a compact JWS with the public key in its own ``jwk`` header; return header, claims and key.

    ``algorithms``: the caller's allowlist (asymmetric algorithms only; ``none`` and ``HS*`` are refused
    whatever it says). The ``typ`` is the caller's to check (DPoP wants it exact). Raises ``InvalidKey``
    (``reason="private_key"`` for private members), ``MalformedToken``, ``AlgorithmNotAllowed``,
    ``KeyNotFound`` (the key does not fit ``alg``) or ``BadSignature``.
    """
    check_allowlist(algorithms, "algorithms")
    parts = split_token(token, max_length=max_length)
    if len(parts) != 3:
        raise MalformedToken("expected a signed JWT (JWS), got an encrypted one", reason="unexpected_jwe")
    header_segment, payload_segment, signature_segment = parts
    header = decode_header(header_segment)
    alg = reject_alg(header.get("alg"), algorithms, SIGNING_ALGS)
    check_common(header)
    if not payload_segment:
        raise MalformedToken("empty payload", reason="empty_payload")
    if not signature_segment:
        raise BadSignature("empty signature", reason="missing_signature")
    payload = b64url_decode(payload_segment)
    signature = b64url_decode(signature_segment)
    key = _embedded_key(header)
    if not key.fits_signing_alg(alg):
        raise KeyNotFound("the jwk header key cannot verify this algorithm", reason="key_mismatch")
    signing_input = f"{header_segment}.{payload_segment}".encode("ascii")
    if not verify_signature(key, alg, signing_input, signature):
        raise BadSignature("signature verification failed")
    return VerifiedJws(header=header, claims=loads_object(payload), key=key)



def sign_jws_embedded_jwk(claims: Mapping[str, Any], key: Jwk, alg: str, *, typ: str) -> str:
    """Sign ``claims`` with ``key`` carrying its *public* JWK in the header (``jwk``) and no ``kid``: a token
    ``verify_jws_embedded_jwk`` accepts (a DPoP proof, RFC 9449 §4.2, with ``typ="dpop+jwt"``)."""
    public = {k: v for k, v in key.public_dict().items() if k not in ("kid", "alg", "use", "key_ops")}
    if not key.is_private or not key.fits_signing_alg(alg) or alg not in SIGNING_ALGS:
        raise KeyNotFound(f"the key cannot sign with {alg}", reason="key_mismatch")
    header = {"typ": typ, "alg": alg, "jwk": public}
    head = b64url_encode(dumps(header))
    body = b64url_encode(dumps(claims))
    ops = key.signature_ops(alg)
    if ops is None or ops.sign is None:
        raise KeyNotFound(f"the key cannot sign with {alg}", reason="key_mismatch")
    signature = ops.sign(f"{head}.{body}".encode("ascii"))
    return f"{head}.{body}.{b64url_encode(signature)}"
