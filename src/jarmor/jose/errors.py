"""Errors raised by the JOSE layer. Each carries a short machine-readable ``reason``."""

from __future__ import annotations


class JoseError(Exception):
    """Base class: the token or key was refused. ``reason`` is stable and safe to log."""

    reason = "invalid"

    def __init__(self, message: str, *, reason: str | None = None) -> None:
        super().__init__(message)
        if reason is not None:
            self.reason = reason


class MalformedToken(JoseError):
    reason = "malformed"


class TokenTooLarge(JoseError):
    reason = "too_large"


class AlgorithmNotAllowed(JoseError):
    reason = "alg_not_allowed"


class UnsupportedHeader(JoseError):
    reason = "unsupported_header"


class KeyNotFound(JoseError):
    reason = "key_not_found"


class BadSignature(JoseError):
    reason = "bad_signature"


class DecryptionFailed(JoseError):
    reason = "decryption_failed"


class InvalidKey(JoseError):
    reason = "invalid_key"
