"""Typed failures of the client library. Each carries a stable, machine-readable ``reason``.

The hierarchy is shaped for the ``except`` clauses an application writes (README "Client library")::

    ClientError                       anything this library raises
    ├── ConfigurationError            the configuration or a call's arguments are unusable; nothing was sent
    ├── TransportError                the HTTP exchange failed (connection, timeout, oversized body)
    ├── DiscoveryError                metadata or the server's JWKS unusable (C13)
    ├── ServerResponseError           a back-channel endpoint refused the request (``error`` known)
    │   ├── ParError                  the PAR endpoint (RFC 9126 §2.3)
    │   ├── TokenError                the token endpoint (RFC 6749 §5.2)
    │   └── StepUpRequired            a resource server asks for a stronger/fresher login (RFC 9470 §3)
    └── AuthorizationResponseError    the login did not complete: redeem nothing, show a failure page
        ├── AuthorizationServerError  the server's *verified* error answer (JARM-signed ``error``, C9)
        ├── UnverifiedErrorResponse   a bare ``error=`` whose origin is unknown (RFC 9207 §2.4, C1)
        ├── JarmValidationError       the JARM response failed JARM §2.4 (C1-C8)
        └── IdTokenValidationError    the ID token failed OIDC Core §3.1.3.7 (C23)

Any failure while handling an authorization response means: abort, redeem nothing, call no other endpoint
(JARM §2.4: "The client MUST NOT process the grant type specific authorization response parameters before
all checks succeed").

``str(exc)`` says what was checked and, for an answer from the authorization server itself (a verified JARM
error, a PAR or token endpoint error over TLS), what it answered: its ``error`` and ``error_description``,
reduced to the RFC 6749 §5.2 character set. The text of an *unverified* error is kept on the exception only:
anyone can send it, so it is never put into messages an application may log or show.
"""

from __future__ import annotations

import re
from typing import TypedDict

_ERROR_CODE = re.compile(r"[\x20-\x21\x23-\x5b\x5d-\x7e]{1,64}")  # RFC 6749 §4.1.2.1 error charset
_OUTSIDE_CHARSET = re.compile(r"[^\x20-\x21\x23-\x5b\x5d-\x7e]")
MAX_UNTRUSTED_TEXT = 512
MAX_TEXT_IN_MESSAGE = 200


def _clean_code(value: object) -> str:
    return value if isinstance(value, str) and _ERROR_CODE.fullmatch(value) else "invalid_error_code"


def _clean_text(value: object) -> str | None:
    return value[:MAX_UNTRUSTED_TEXT] if isinstance(value, str) else None


def describe(error: str | None, description: str | None) -> str:
    """``error: 'description'`` for a message: the description restricted to RFC 6749's charset (every
    other character, line breaks included, becomes ``?``) and shortened, so it cannot forge log lines."""
    if error is None:
        return "no error code"
    if not description:
        return error
    text = _OUTSIDE_CHARSET.sub("?", description)
    if len(text) > MAX_TEXT_IN_MESSAGE:
        text = text[:MAX_TEXT_IN_MESSAGE] + "..."
    return f"{error}: '{text}'"


class ClientError(Exception):
    """Base class of every client failure."""

    reason = "error"
    checked = ""  # what was being checked, prefixed to the message ("JARM response (JARM §2.4)" ...)

    def __init__(self, message: str, *, reason: str | None = None) -> None:
        super().__init__(f"{self.checked} refused: {message}" if self.checked else message)
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


class ServerResponseError(ClientError):
    """A back-channel endpoint of the authorization server refused the request or answered unusably.

    ``status`` is the HTTP status; ``error`` (reduced to the RFC 6749 charset) and ``description`` are what
    the server answered, and both are in ``str(exc)``.
    """

    reason = "server_error"

    def __init__(
        self,
        message: str,
        *,
        reason: str | None = None,
        status: int | None = None,
        error: object = None,
        description: object = None,
    ) -> None:
        self.status = status
        self.error = _clean_code(error) if error is not None else None
        self.description = _clean_text(description)
        if self.error is not None:
            message = f"{message}: {describe(self.error, self.description)}"
        super().__init__(message, reason=reason)


class ParError(ServerResponseError):
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
        super().__init__(message, reason=reason, status=status, error=error, description=description)
        self.retry_after = retry_after


class TokenError(ServerResponseError):
    """The token endpoint refused the request or answered with something unusable (RFC 6749 §5.2)."""

    reason = "token_failed"


class StepUpKwargs(TypedDict, total=False):
    """The ``start_authorization`` arguments a step-up challenge asks for (RFC 9470 §4)."""

    acr_values: tuple[str, ...]
    max_age: int


class StepUpRequired(ServerResponseError):
    """A protected resource answered 401 ``insufficient_user_authentication`` (RFC 9470 §3): the token's
    authentication is too weak (``acr``) or too old (``auth_time``). ``acr_values`` and ``max_age`` are the
    challenge's auth-params (empty / ``None`` when absent); ``authorization_kwargs()`` turns them into the
    arguments of a new ``start_authorization`` (RFC 9470 §4)."""

    reason = "step_up_required"

    def __init__(self, *, acr_values: tuple[str, ...], max_age: int | None, description: object = None) -> None:
        self.acr_values = acr_values
        self.max_age = max_age
        wanted = [f"acr_values={' '.join(acr_values)!r}"] if acr_values else []
        wanted += [f"max_age={max_age}"] if max_age is not None else []
        super().__init__(
            f"the resource server requires a new authentication ({', '.join(wanted) or 'no parameters'})",
            status=401,
            error="insufficient_user_authentication",
            description=description,
        )

    def authorization_kwargs(self) -> StepUpKwargs:
        """``acr_values`` and ``max_age`` for ``start_authorization(scope=..., **err.authorization_kwargs())``;
        only the parameters the challenge carried."""
        kwargs: StepUpKwargs = {}
        if self.acr_values:
            kwargs["acr_values"] = self.acr_values
        if self.max_age is not None:
            kwargs["max_age"] = self.max_age
        return kwargs


class AuthorizationResponseError(ClientError):
    """The authorization did not complete: the callback was refused, the server answered with an error, or
    the ID token of the login was invalid. No code was redeemed, or its tokens were discarded."""

    reason = "invalid_response"
    checked = "authorization response (RFC 6749 §4.1.2, RFC 9207)"


class JarmValidationError(AuthorizationResponseError):
    """A JARM response failed one of the JARM §2.4 checks (C1-C8)."""

    checked = "JARM response (JARM §2.4)"


class IdTokenValidationError(AuthorizationResponseError):
    """An ID token failed OIDC Core §3.1.3.7 validation (C23)."""

    reason = "invalid_id_token"
    checked = "ID token (OIDC Core §3.1.3.7)"


class UnverifiedErrorResponse(AuthorizationResponseError):
    """A bare ``error=`` arrived without a signed response: anyone can forge it (RFC 9207 §2.4, C1).

    ``error`` is reduced to the RFC 6749 charset; ``description``, ``uri`` and ``state`` are untrusted:
    they are not part of ``str(exc)`` and must not be rendered as HTML or followed.
    """

    reason = "unverified_error"
    checked = ""

    def __init__(self, *, error: object, description: object, uri: object, state: object) -> None:
        self.error = _clean_code(error)
        self.description = _clean_text(description)
        self.uri = _clean_text(uri)
        self.state = _clean_text(state)
        super().__init__(
            f"unauthenticated error response {self.error!r} (origin not verified: the signed response "
            "the client requested did not arrive; its error_description is withheld)"
        )


class AuthorizationServerError(AuthorizationResponseError):
    """A *verified* error response: the signed JARM response carried ``error`` (JARM §2.4, C9).

    The authorization server is authenticated, so its ``error`` and ``error_description`` are in
    ``str(exc)``; they are still free text: escape before display, never follow ``uri`` automatically.
    """

    reason = "authorization_error"
    checked = ""

    def __init__(self, *, error: object, description: object, uri: object, state: str | None) -> None:
        self.error = _clean_code(error)
        self.description = _clean_text(description)
        self.uri = _clean_text(uri)
        self.state = state
        super().__init__(
            "the authorization server answered with a verified error "
            f"{describe(self.error, self.description)} (JARM signature, iss, aud, exp and state checked)"
        )


__all__ = [
    "AuthorizationResponseError",
    "AuthorizationServerError",
    "ClientError",
    "ConfigurationError",
    "DiscoveryError",
    "IdTokenValidationError",
    "JarmValidationError",
    "ParError",
    "ServerResponseError",
    "StepUpRequired",
    "TokenError",
    "TransportError",
    "UnverifiedErrorResponse",
]
