"""PKCE and the random values bound to one authorization request (RFC 7636, C21; C22)."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, field

from jarmor.jose import b64url_encode


@dataclass(frozen=True, slots=True)
class Pkce:
    verifier: str = field(repr=False)
    challenge: str
    method: str = "S256"


def s256_challenge(verifier: str) -> str:
    """RFC 7636 §4.2: BASE64URL(SHA256(ASCII(code_verifier))), no padding."""
    return b64url_encode(hashlib.sha256(verifier.encode("ascii")).digest())


def new_pkce() -> Pkce:
    """RFC 7636 §4.1/§7.1: 32 random octets → a 43-character verifier (256 bits); always S256."""
    verifier = b64url_encode(secrets.token_bytes(32))
    return Pkce(verifier=verifier, challenge=s256_challenge(verifier))


def new_state() -> str:
    """256 bits, URL-safe (RFC 6749 §10.12)."""
    return secrets.token_urlsafe(32)


def new_nonce() -> str:
    """256 bits in 43 characters (FAPI2 5.3.3.2-7: nonce should not exceed 64 characters)."""
    return secrets.token_urlsafe(32)


def new_jti() -> str:
    """A JWT ID with 192 bits of entropy (≥128 required: FAPI2 §5.4.1-4, C15/C20)."""
    return secrets.token_urlsafe(24)
