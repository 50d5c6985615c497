"""Plain values handed to and returned by the client: the stored flow, and what each step produces."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class FlowState:
    """Per-authorization-request context, saved when the request is sent (JARM §2.4 "Assumption", C12).

    The callback is judged against this record only: the issuer, client and keys come from here, never
    from the response.
    """

    issuer: str
    client_id: str
    state: str
    nonce: str | None
    code_verifier: str = field(repr=False)
    redirect_uri: str
    response_mode: str
    scope: str
    created_at: int
    expires_at: int
    max_age: int | None = None  # sent in the request: the ID token must then carry a recent auth_time
    acr_values: tuple[str, ...] | None = None  # requested: the ID token's acr must be one of them
    auth_time_required: bool = False  # auth_time requested as an essential claim (OIDC Core §5.5)
    dpop_jkt: str | None = None  # the DPoP key the code is bound to (RFC 9449 §10): redeem with that key

    @property
    def openid(self) -> bool:
        return "openid" in self.scope.split()


@dataclass(frozen=True, slots=True)
class AuthorizationStart:
    """Where to send the user agent. ``state`` lets the application bind the flow to its session."""

    url: str
    state: str
    expires_at: int
    request_uri: str | None = None


@dataclass(frozen=True, slots=True)
class AuthorizationResult:
    """A validated authorization response: the code may now be redeemed at the flow's token endpoint."""

    code: str = field(repr=False)
    flow: FlowState
    response_mode: str
    claims: Mapping[str, Any] = field(default_factory=dict, repr=False)


@dataclass(frozen=True, slots=True)
class TokenResponse:
    """A token endpoint response (RFC 6749 §5.1). ``token_type`` is normalised to ``Bearer`` (C24) or
    ``DPoP`` (RFC 9449 §5: a DPoP-bound token, sent with a proof by ``OAuthClient.request``)."""

    access_token: str = field(repr=False)
    token_type: str
    expires_in: int | None
    expires_at: int | None
    scope: str | None
    refresh_token: str | None = field(default=None, repr=False)
    id_token: str | None = field(default=None, repr=False)
    id_token_claims: Mapping[str, Any] | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False)


@dataclass(frozen=True, slots=True)
class CompletedAuthorization:
    """A completed, validated authorization: the callback passed every check, the code was redeemed with
    PKCE, and — when ``openid`` was requested — the ID token was validated against the request (``nonce``,
    ``max_age``/``auth_time``, ``acr``). ``claims`` are the validated ID token claims (empty without
    ``openid``)."""

    tokens: TokenResponse
    claims: Mapping[str, Any]
    flow: FlowState

    @property
    def subject(self) -> str | None:
        """The end-user's ``sub`` from the validated ID token (``None`` when ``openid`` was not requested)."""
        sub = self.claims.get("sub")
        return sub if isinstance(sub, str) else None
