"""What a protected resource answers when it refuses a request: status, error code and ``WWW-Authenticate``.

RFC 6750 §3 (the ``Bearer`` challenge and its ``error`` codes: ``invalid_request`` 400, ``invalid_token`` 401,
``insufficient_scope`` 403, ``scope``), RFC 9449 §7.1 (the ``DPoP`` challenge, ``algs``, and
``invalid_dpop_proof``), §9 (``use_dpop_nonce`` with a ``DPoP-Nonce`` header) and RFC 9470 §3
(``insufficient_user_authentication`` with ``acr_values`` and ``max_age``).

Challenge parameters are quoted strings (RFC 9110 §11.2) built only from values the resource server itself
chose (its realm, scopes, algorithms, acr values) or from fixed descriptions passed through
``protocol.errors.safe_description``; nothing the caller sent is ever echoed. The challenges are written
here rather than by an HTTP library because none of the allowed libraries builds ``WWW-Authenticate``
values; the grammar used is the small subset above (``auth-scheme 1*SP #auth-param``, quoted values).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final, Literal

from ..protocol.errors import safe_description

__all__ = [
    "INSUFFICIENT_SCOPE",
    "INSUFFICIENT_USER_AUTHENTICATION",
    "INVALID_DPOP_PROOF",
    "INVALID_REQUEST",
    "INVALID_TOKEN",
    "USE_DPOP_NONCE",
    "Challenge",
    "ResourceError",
    "VerifierUnavailable",
]

INVALID_REQUEST: Final = "invalid_request"
INVALID_TOKEN: Final = "invalid_token"
INSUFFICIENT_SCOPE: Final = "insufficient_scope"
INVALID_DPOP_PROOF: Final = "invalid_dpop_proof"
USE_DPOP_NONCE: Final = "use_dpop_nonce"
INSUFFICIENT_USER_AUTHENTICATION: Final = "insufficient_user_authentication"

_STATUS: Final = {
    INVALID_REQUEST: 400,
    INVALID_TOKEN: 401,
    INSUFFICIENT_SCOPE: 403,
    INVALID_DPOP_PROOF: 401,
    USE_DPOP_NONCE: 401,
    INSUFFICIENT_USER_AUTHENTICATION: 401,
}
# RFC 6750 §3: scope-token / realm characters (%x21 / %x23-5B / %x5D-7E) and a space between tokens
_PARAM_VALUE: Final = re.compile(r"[\x20\x21\x23-\x5b\x5d-\x7e]*")

Scheme = Literal["Bearer", "DPoP"]


def _quoted(value: str) -> str:
    if _PARAM_VALUE.fullmatch(value) is None:
        raise ValueError("challenge parameter outside the RFC 6750 character set")
    return f'"{value}"'


@dataclass(frozen=True, slots=True)
class Challenge:
    """One ``WWW-Authenticate`` challenge: the scheme and its parameters, in order."""

    scheme: Scheme
    params: tuple[tuple[str, str], ...] = ()

    def render(self) -> str:
        if not self.params:
            return self.scheme
        parts = []
        for name, value in self.params:
            # RFC 9470 §3: max_age is a number; every other parameter a quoted string
            parts.append(f"{name}={value}" if name == "max_age" else f"{name}={_quoted(value)}")
        return f"{self.scheme} {', '.join(parts)}"


@dataclass(eq=False)
class ResourceError(Exception):
    """A refused request: ``error`` (None when no credentials were sent, RFC 6750 §3.1), HTTP ``status``,
    the challenges to send (``www_authenticate``) and extra headers (``DPoP-Nonce``)."""

    error: str | None
    description: str
    challenges: tuple[Challenge, ...]
    status: int = 401
    nonce: str | None = None
    extra: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__init__(self.description)
        self.description = safe_description(self.description)

    @property
    def www_authenticate(self) -> str:
        """The ``WWW-Authenticate`` value; several challenges are comma-separated (RFC 9110 §11.6.1)."""
        return ", ".join(c.render() for c in self.challenges)

    @property
    def headers(self) -> dict[str, str]:
        out = {"WWW-Authenticate": self.www_authenticate, "Cache-Control": "no-store"}
        if self.nonce is not None:
            out["DPoP-Nonce"] = self.nonce  # RFC 9449 §9
        out.update(self.extra)
        return out

    def body(self) -> dict[str, str]:
        """A JSON body for APIs that want one (RFC 6750 does not require it)."""
        if self.error is None:
            return {}
        return {"error": self.error, "error_description": self.description}


class VerifierUnavailable(Exception):
    """The token could not be checked (the introspection endpoint or the JWKS could not be reached, or
    refused the resource server's own credentials). Not the caller's fault: answer 503, never "inactive"."""


def refuse(
    error: str | None,
    description: str,
    *,
    scheme: Scheme | None,
    realm: str | None,
    dpop_algs: Sequence[str],
    offer_bearer: bool,
    scope: Sequence[str] = (),
    nonce: str | None = None,
    acr_values: Sequence[str] = (),
    max_age: int | None = None,
) -> ResourceError:
    """The error for ``error`` in the scheme the caller used (RFC 9449 §7.1: the challenge names the scheme
    of the presented token; a ``Bearer`` refusal also advertises ``DPoP``, §7.2); with no credentials
    (``scheme`` None), one challenge per scheme the resource accepts and no error code (RFC 6750 §3.1)."""
    status = _STATUS.get(error, 401) if error is not None else 401
    details: list[tuple[str, str]] = []
    if error is not None:
        details.append(("error", error))
        details.append(("error_description", safe_description(description)))
    if scope:
        details.append(("scope", " ".join(scope)))
    if acr_values:
        details.append(("acr_values", " ".join(acr_values)))
    if max_age is not None:
        details.append(("max_age", str(int(max_age))))
    head = (("realm", realm),) if realm else ()
    algs = (("algs", " ".join(dpop_algs)),)
    challenges: list[Challenge] = []
    if scheme is None:  # RFC 6750 §3.1 / RFC 9449 §7.2: no credentials, no error code
        if offer_bearer:
            challenges.append(Challenge("Bearer", head))
        challenges.append(Challenge("DPoP", (*head, *algs)))
    elif scheme == "Bearer":
        challenges.append(Challenge("Bearer", (*head, *details)))
        challenges.append(Challenge("DPoP", (*head, *algs)))
    else:
        challenges.append(Challenge("DPoP", (*head, *details, *algs)))
    return ResourceError(error, description, tuple(challenges), status=status, nonce=nonce)
