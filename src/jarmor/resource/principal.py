"""What a verified request carries (``Principal``) and what a route demands of it (``Requirement``).

The principal is built from verified claims only: an introspection response with ``"active": true``
(RFC 7662 §2.2) or a validated JWT access token (RFC 9068 §2.2). ``acr`` and ``auth_time`` are the
authentication the token's grant recorded (RFC 9068 §2.2.1), which is what the step-up check of RFC 9470
compares against.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..protocol.binding import TokenBinding, binding_from_cnf

__all__ = ["Principal", "Requirement", "TokenClaims"]


@dataclass(frozen=True, slots=True)
class TokenClaims:
    """The verified facts about an access token, whichever way it was verified."""

    subject: str | None
    client_id: str | None
    scopes: frozenset[str]
    expires_at: int | None
    issued_at: int | None = None
    acr: str | None = None
    auth_time: int | None = None
    cnf: Mapping[str, Any] | None = None
    token_type: str | None = None
    audience: tuple[str, ...] = ()
    claims: Mapping[str, Any] = field(default_factory=dict)

    @property
    def binding(self) -> TokenBinding | None:
        return binding_from_cnf(self.cnf)

    @classmethod
    def from_claims(cls, claims: Mapping[str, Any]) -> TokenClaims:
        """Read the RFC 7662 §2.2 / RFC 9068 §2.2 members; a member of the wrong type counts as absent,
        except ``exp`` and ``cnf``, whose wrong type the caller refuses (``valid_shape``)."""
        scope = claims.get("scope")
        aud = claims.get("aud")
        audience = (aud,) if isinstance(aud, str) else tuple(a for a in aud if isinstance(a, str)) \
            if isinstance(aud, list) else ()
        cnf = claims.get("cnf")
        return cls(
            subject=_text(claims.get("sub")),
            client_id=_text(claims.get("client_id")),
            scopes=frozenset(scope.split()) if isinstance(scope, str) else frozenset(),
            expires_at=_number(claims.get("exp")),
            issued_at=_number(claims.get("iat")),
            acr=_text(claims.get("acr")),
            auth_time=_number(claims.get("auth_time")),
            cnf=dict(cnf) if isinstance(cnf, Mapping) else None,
            token_type=_text(claims.get("token_type")),
            audience=audience,
            claims=dict(claims),
        )


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _number(value: object) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return int(value)


def valid_shape(claims: Mapping[str, Any]) -> bool:
    """``exp`` (when present) a number and ``cnf`` (when present) an object: a token whose binding or expiry
    cannot be read is refused rather than treated as unbound or eternal."""
    if "exp" in claims and _number(claims["exp"]) is None:
        return False
    return "cnf" not in claims or isinstance(claims["cnf"], Mapping)


@dataclass(frozen=True, slots=True)
class Principal:
    """The verified caller of one request."""

    subject: str | None
    client_id: str | None
    scopes: frozenset[str]
    acr: str | None
    auth_time: int | None
    binding: TokenBinding | None
    expires_at: int | None
    claims: Mapping[str, Any]

    @classmethod
    def from_token(cls, token: TokenClaims) -> Principal:
        return cls(
            subject=token.subject,
            client_id=token.client_id,
            scopes=token.scopes,
            acr=token.acr,
            auth_time=token.auth_time,
            binding=token.binding,
            expires_at=token.expires_at,
            claims=token.claims,
        )


@dataclass(frozen=True, slots=True)
class Requirement:
    """What a route needs: every scope in ``scopes`` (RFC 6750 §3.1 ``insufficient_scope``), and — for the
    step-up of RFC 9470 — an ``acr`` among ``acr_values`` and an authentication no older than ``max_age``
    seconds."""

    scopes: Sequence[str] = ()
    acr_values: Sequence[str] = ()
    max_age: int | None = None

    def __post_init__(self) -> None:
        for name in ("scopes", "acr_values"):
            if isinstance(getattr(self, name), str):
                raise TypeError(f"{name} must be a sequence of strings, not a string")
        if self.max_age is not None and (isinstance(self.max_age, bool) or self.max_age < 0):
            raise ValueError("max_age must be a non-negative number of seconds")
