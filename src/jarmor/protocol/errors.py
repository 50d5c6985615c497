"""OAuth errors that know their code, description, HTTP status and channel.

Where an error goes (RFC 6749 §4.1.2.1, RFC 9101 §6, RFC 9126 §2.3):

* ``redirect`` — only once the ``redirect_uri`` has been verified against the client's registration; the
  error then travels in the response mode the request asked for (inside a JARM JWT when that mode is a JWT
  mode, JARM §2.1).
* ``page`` — the authorization endpoint answers the user agent itself (HTML, 400), never redirecting.
* ``json`` — back-channel endpoints (PAR, token, registration, revocation, introspection).

What an error says (RFC 6749 §4.1.2.1, §5.2; RFC 7591 §3.2.2): ``error_description`` is limited to the
characters %x20-21 / %x23-5B / %x5D-7E. Messages describe the problem and never repeat a request value;
``safe_description`` is the boundary that guarantees the character set and a length bound for every
description, whichever channel it leaves by (JSON, redirect, form_post, JARM, the error page, flow records).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MAX_DESCRIPTION = 256
_ALLOWED = frozenset(chr(c) for c in (0x20, 0x21, *range(0x23, 0x5C), *range(0x5D, 0x7F)))
_ALL_ALLOWED = re.compile(r"[\x20\x21\x23-\x5b\x5d-\x7e]*")  # the same set: the common case in one C call
# readable stand-ins for the few characters messages legitimately contain; anything else becomes "?"
_SPELLED = {'"': "'", "\\": "/", "\u00a7": "section ", "\u2014": "-", "\u2013": "-", "\t": " ", "\n": " ", "\r": " "}


def safe_description(text: str, limit: int = MAX_DESCRIPTION) -> str:
    """``text`` within RFC 6749's ``error_description`` character set and at most ``limit`` characters.

    Defence in depth: a message that (wrongly) carried a request value still cannot inject quotes,
    backslashes, line breaks, NUL, bidirectional overrides or other non-ASCII text into a response, and its
    cost is bounded (only the first ``limit`` characters are looked at).
    """
    if len(text) <= limit and _ALL_ALLOWED.fullmatch(text):
        return text
    out: list[str] = []
    size = 0
    for ch in text[: limit + 1]:
        piece = ch if ch in _ALLOWED else _SPELLED.get(ch, "?")
        out.append(piece)
        size += len(piece)
        if size > limit:
            break
    result = "".join(out)
    if len(result) > limit or len(text) > limit:
        result = result[: limit - 3].rstrip() + "..."
    return result


@dataclass(frozen=True, slots=True)
class RedirectTarget:
    """A verified place to send an authorization response: the URI, how to encode it, and the state."""

    redirect_uri: str
    response_mode: str
    state: str | None
    client_id: str


class OAuthError(Exception):
    error = "invalid_request"
    status = 400

    def __init__(self, description: str = "", *, status: int | None = None) -> None:
        self.description = description
        super().__init__(self.description or self.error)
        if status is not None:
            self.status = status
        self.target: RedirectTarget | None = None
        self.www_authenticate: str | None = None

    @property
    def description(self) -> str:
        """The ``error_description``, always within RFC 6749's character set and length bound."""
        return self._description

    @description.setter
    def description(self, text: str) -> None:
        self._description = safe_description(text)

    def with_target(self, target: RedirectTarget | None) -> OAuthError:
        if self.target is None:
            self.target = target
        return self

    def as_dict(self) -> dict[str, str]:
        body = {"error": self.error}
        if self.description:
            body["error_description"] = self.description
        return body

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.description!r})"


def _make(name: str, code: str, status: int = 400, doc: str = "") -> type[OAuthError]:
    return type(name, (OAuthError,), {"error": code, "status": status, "__doc__": doc})


InvalidRequest = _make("InvalidRequest", "invalid_request", doc="RFC 6749 §4.1.2.1 / §5.2")
InvalidRequestObject = _make("InvalidRequestObject", "invalid_request_object", doc="RFC 9101 §6.2")
InvalidRequestUri = _make("InvalidRequestUri", "invalid_request_uri", doc="RFC 9101 §7")
RequestNotSupported = _make("RequestNotSupported", "request_not_supported", doc="RFC 9101 §7")
RequestUriNotSupported = _make("RequestUriNotSupported", "request_uri_not_supported", doc="RFC 9101 §7")
UnauthorizedClient = _make("UnauthorizedClient", "unauthorized_client", doc="RFC 6749 §4.1.2.1")
AccessDenied = _make("AccessDenied", "access_denied", 403, doc="RFC 6749 §4.1.2.1")
UnsupportedResponseType = _make("UnsupportedResponseType", "unsupported_response_type")
InvalidScope = _make("InvalidScope", "invalid_scope")
InvalidClient = _make("InvalidClient", "invalid_client", 401, doc="RFC 6749 §5.2")
InvalidGrant = _make("InvalidGrant", "invalid_grant", doc="RFC 6749 §5.2")
UnsupportedGrantType = _make("UnsupportedGrantType", "unsupported_grant_type")
InvalidClientMetadata = _make("InvalidClientMetadata", "invalid_client_metadata", doc="RFC 7591 §3.2.2")
InvalidRedirectUri = _make("InvalidRedirectUri", "invalid_redirect_uri", doc="RFC 7591 §3.2.2")
InvalidToken = _make("InvalidToken", "invalid_token", 401, doc="RFC 6750 §3.1")
UnsupportedTokenType = _make("UnsupportedTokenType", "unsupported_token_type", doc="RFC 7009 §2.2.1")
LoginRequired = _make("LoginRequired", "login_required")
ConsentRequired = _make("ConsentRequired", "consent_required")
InteractionRequired = _make("InteractionRequired", "interaction_required")
UnmetAuthenticationRequirements = _make(
    "UnmetAuthenticationRequirements", "unmet_authentication_requirements", 403,
    doc="OpenID Connect Core Error Code unmet_authentication_requirements 1.0 §2: an essential acr cannot be met",
)
MethodNotAllowed = _make("MethodNotAllowed", "invalid_request", 405)
PayloadTooLarge = _make("PayloadTooLarge", "invalid_request", 413)
TemporarilyUnavailable = _make(
    "TemporarilyUnavailable", "temporarily_unavailable", 503,
    doc="RFC 6749 §4.1.2.1: a temporary overloading or maintenance (here: a store cannot be reached)",
)
