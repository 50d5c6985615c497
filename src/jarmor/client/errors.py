"""Typed failures of the client library. Each carries a stable, machine-readable ``reason``.

Any failure while handling an authorization response means: abort, redeem nothing, call no other endpoint
(JARM §2.4: "The client MUST NOT process the grant type specific authorization response parameters before
all checks succeed").

Text that came from the network (``error_description``, ``error_uri``) is kept on the exception as an
attribute and marked untrusted; it never appears in ``str(exc)``.
"""

from __future__ import annotations

import re

_ERROR_CODE = re.compile(r"[\x20-\x21\x23-\x5b\x5d-\x7e]{1,64}")  # RFC 6749 §4.1.2.1 error charset
MAX_UNTRUSTED_TEXT = 512


def _clean_code(value: object) -> str:
    return value if isinstance(value, str) and _ERROR_CODE.fullmatch(value) else "invalid_error_code"


def _clean_text(value: object) -> str | None:
    return value[:MAX_UNTRUSTED_TEXT] if isinstance(value, str) else None


class ClientError(Exception):
    """Base class of every client failure."""

    reason = "error"

    def __init__(self, message: str, *, reason: str | None = None) -> None:
        super().__init__(message)
        if reason is not None:
            self.reason = reason

    def __repr__(self) -> str:
        return f"{type(self).__name__}(reason={self.reason!r}, {self.args[0] if self.args else ''!r})"


class ConfigurationError(ClientError):
    """The client configuration or a call's arguments are unusable (nothing was sent)."""

    reason = "invalid_configuration"


class TransportError(ClientError):
    """The HTTP exchange at ``hop`` failed (connection, timeout, oversized body)."""

    reason = "transport"

    def __init__(self, message: str, *, hop: str, reason: str | None = None) -> None:
        super().__init__(message, reason=reason)
        self.hop = hop


class DiscoveryError(ClientError):
    """Authorization-server metadata or its JWKS could not be obtained or failed validation (C13)."""

    reason = "invalid_metadata"


class ParError(ClientError):
    """The pushed authorization request failed (RFC 9126 §2.2/§2.3, C19)."""

    reason = "par_failed"

    def __init__(
        self,
        message: str,
        *,
        reason: str | None = None,
        status: int | None = None,
        error: object = None,
        description: object = None,
        retry_after: str | None = None,
    ) -> None:
        super().__init__(message, reason=reason)
        self.status = status
        self.error = _clean_code(error) if error is not None else None
        self.description = _clean_text(description)  # untrusted
        self.retry_after = retry_after


class TokenError(ClientError):
    """The token endpoint refused the request or answered with something unusable (RFC 6749 §5.2)."""

    reason = "token_failed"

    def __init__(
        self,
        message: str,
        *,
        reason: str | None = None,
        status: int | None = None,
        error: object = None,
        description: object = None,
    ) -> None:
        super().__init__(message, reason=reason)
        self.status = status
        self.error = _clean_code(error) if error is not None else None
        self.description = _clean_text(description)  # untrusted


class AuthorizationResponseError(ClientError):
    """The authorization response (the callback) was rejected. The code was not redeemed."""

    reason = "invalid_response"


class JarmValidationError(AuthorizationResponseError):
    """A JARM response failed one of the JARM §2.4 checks (C1-C8)."""


class IdTokenValidationError(ClientError):
    """An ID token failed OIDC Core §3.1.3.7 validation (C23)."""

    reason = "invalid_id_token"


class UnverifiedErrorResponse(AuthorizationResponseError):
    """A bare ``error=`` arrived without a signed response: anyone can forge it (RFC 9207 §2.4, C1).

    ``error`` is reduced to the RFC 6749 charset; ``description``, ``uri`` and ``state`` are untrusted
    and must not be rendered as HTML or followed.
    """

    reason = "unverified_error"

    def __init__(self, *, error: object, description: object, uri: object, state: object) -> None:
        self.error = _clean_code(error)
        self.description = _clean_text(description)
        self.uri = _clean_text(uri)
        self.state = _clean_text(state)
        super().__init__(f"unauthenticated error response {self.error!r} (origin not verified)")


class AuthorizationServerError(ClientError):
    """A *verified* error response: the signed JARM response carried ``error`` (JARM §2.4, C9).

    The authorization server is authenticated, but ``description`` and ``uri`` are still free text from the
    network: escape before display, never follow ``uri`` automatically.
    """

    reason = "authorization_error"

    def __init__(self, *, error: object, description: object, uri: object, state: str | None) -> None:
        self.error = _clean_code(error)
        self.description = _clean_text(description)
        self.uri = _clean_text(uri)
        self.state = state
        super().__init__(f"authorization server returned error {self.error!r}")


__all__ = [
    "AuthorizationResponseError",
    "AuthorizationServerError",
    "ClientError",
    "ConfigurationError",
    "DiscoveryError",
    "IdTokenValidationError",
    "JarmValidationError",
    "ParError",
    "TokenError",
    "TransportError",
    "UnverifiedErrorResponse",
]
