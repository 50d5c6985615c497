"""Algorithm vocabulary and the key types each algorithm may be used with (RFC 8725 §3.1, RFC 7518 §3-§5).

These are the algorithms jarmor can use at all. Every verify/decrypt call still passes its own, usually
smaller, allowlist. ``none``, ``HS*`` (no shared secrets for signatures), ``RSA1_5``, ``PBES2-*``, ``dir``,
``A*KW`` and ``zip`` are absent on purpose: they cannot be enabled by configuration.
"""

from __future__ import annotations

from typing import Final

# JWS algorithm -> (kty, crv or None for RSA)
SIGNING_ALGS: Final[dict[str, tuple[str, str | None]]] = {
    "ES256": ("EC", "P-256"),
    "ES384": ("EC", "P-384"),
    "ES512": ("EC", "P-521"),
    "PS256": ("RSA", None),
    "PS384": ("RSA", None),
    "PS512": ("RSA", None),
    "RS256": ("RSA", None),
    "EdDSA": ("OKP", "Ed25519"),
    "Ed25519": ("OKP", "Ed25519"),
}

# JWE key-management algorithm -> allowed (kty, crv) pairs
KEY_MANAGEMENT_ALGS: Final[dict[str, frozenset[tuple[str, str | None]]]] = {
    "ECDH-ES": frozenset({("EC", "P-256"), ("EC", "P-384"), ("EC", "P-521"), ("OKP", "X25519")}),
    "ECDH-ES+A128KW": frozenset({("EC", "P-256"), ("EC", "P-384"), ("EC", "P-521"), ("OKP", "X25519")}),
    "ECDH-ES+A256KW": frozenset({("EC", "P-256"), ("EC", "P-384"), ("EC", "P-521"), ("OKP", "X25519")}),
    "RSA-OAEP-256": frozenset({("RSA", None)}),
    "RSA-OAEP": frozenset({("RSA", None)}),
}

CONTENT_ENCRYPTION_ALGS: Final[frozenset[str]] = frozenset(
    {"A128GCM", "A192GCM", "A256GCM", "A128CBC-HS256", "A192CBC-HS384", "A256CBC-HS512"}
)

# Never accepted, whatever a caller's allowlist says (defence in depth against a misconfigured list).
FORBIDDEN: Final[frozenset[str]] = frozenset(
    {"none", "RSA1_5", "dir", "A128KW", "A192KW", "A256KW", "HS256", "HS384", "HS512"}
    | {"PBES2-HS256+A128KW", "PBES2-HS384+A192KW", "PBES2-HS512+A256KW"}
    | {"A128GCMKW", "A192GCMKW", "A256GCMKW"}
)

MIN_RSA_BITS: Final = 2048
MAX_RSA_BITS: Final = 8192
ALLOWED_CURVES: Final = frozenset({"P-256", "P-384", "P-521", "Ed25519", "X25519"})
