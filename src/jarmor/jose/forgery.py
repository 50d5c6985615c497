"""Deliberately invalid JOSE tokens, for probing a server from the outside (``jarmor audit``) and for tests.

These bypass every check of ``tokens`` on purpose: ``segment`` encodes anything as one base64url segment (an
``alg: none`` token is two segments and an empty signature) and ``hmac_raw`` computes an HS* token keyed with
any bytes — the classic key-confusion forgery, keyed with someone's *public* key — and
``encrypt_compressed`` a JWE with ``zip: DEF`` (RFC 7516 §4.1.3), which ``tokens.decrypt_jwe`` refuses
(attack catalog A14) and an auditor sends to see whether a server does too. Nothing in the server or the
client library imports this module; only the auditor and the test suites do.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from typing import Any

from joserfc import jwe as _jwe
from joserfc.errors import JoseError as _LibError

from .b64 import b64url_encode
from .keys import Jwk

__all__ = ["encrypt_compressed", "hmac_raw", "segment"]


def segment(value: Mapping[str, Any] | list[Any] | bytes | str) -> str:
    """One base64url segment: a mapping or list as compact JSON, ``str`` as UTF-8, ``bytes`` as is."""
    if isinstance(value, bytes):
        return b64url_encode(value)
    if isinstance(value, str):
        return b64url_encode(value.encode("utf-8"))
    return b64url_encode(json.dumps(value, separators=(",", ":")).encode("utf-8"))


def hmac_raw(
    header: Mapping[str, Any] | bytes | str,
    payload: Mapping[str, Any] | bytes | str,
    secret: bytes,
    alg: str = "HS256",
) -> str:
    """A compact HS256/384/512 JWS keyed with ``secret`` (e.g. the bytes of someone's public key)."""
    digest = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}[alg]
    head, body = segment(header), segment(payload)
    mac = hmac.new(secret, f"{head}.{body}".encode("ascii"), digest).digest()
    return f"{head}.{body}.{b64url_encode(mac)}"


def encrypt_compressed(plaintext: bytes | str, key: Jwk, alg: str, enc: str) -> str:
    """A compact JWE to ``key`` whose plaintext is DEFLATE-compressed (``zip: DEF``). Only the auditor's
    probe uses it, with a small plaintext: it checks the server refuses compression, it never sends a bomb."""
    registry = _jwe.JWERegistry(algorithms=[alg, enc, "DEF"], strict_check_header=False)
    header = {"alg": alg, "enc": enc, "zip": "DEF", **({"kid": key.kid} if key.kid else {})}
    try:
        return str(_jwe.encrypt_compact(header, plaintext, key.key, registry=registry))
    except _LibError as exc:
        raise ValueError(f"cannot encrypt to the key: {exc.__class__.__name__}") from exc
