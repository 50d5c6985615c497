"""The state an authorization request is validated in (``authorization``) and the request it yields.

``AuthorizationState`` is what the steps of ``authorization.STEPS`` read and write: typed values that the
decisions read, and the evidence written for flow records (never read back by a decision).
``AuthorizationRequest`` is the validated request (RFC 6749 §4.1.1, RFC 9101, RFC 9126), stored as the PAR
entry of a pushed request.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import orjson

from .client_auth import AuthenticatedClient
from .clients import Client
from .context import Environment
from .errors import RedirectTarget
from .policy import Control, EffectiveTier, PolicyError, Tier
from .request_object import RequestObject
from .vocabulary import PAR_URN_PREFIX


@dataclass(frozen=True, slots=True)
class AuthorizationRequest:
    """A fully validated authorization request: what the server will act on."""

    client_id: str
    redirect_uri: str
    response_type: str
    response_mode: str  # resolved: never bare "jwt"
    scope: tuple[str, ...]
    state: str | None
    nonce: str | None
    code_challenge: str
    code_challenge_method: str
    tier: str
    tier_reasons: tuple[str, ...]
    prompt: tuple[str, ...] = ()
    max_age: int | None = None
    evidence: dict[str, Any] = field(default_factory=dict)
    flow_id: str = ""  # the transaction this request belongs to (flow records); travels in the PAR entry
    # authentication asked for (OIDC Core §3.1.2.1 acr_values, §5.5.1.1 essential acr) and needed (the
    # effective tier's ``authentication`` when it requires authentication_assurance, raised by the request)
    acr_values: tuple[str, ...] = ()
    essential_acr: tuple[str, ...] = ()
    required_acr: str | None = None
    auth_max_age: int | None = None
    tier_assurance: bool = False

    def target(self) -> RedirectTarget:
        return RedirectTarget(self.redirect_uri, self.response_mode, self.state, self.client_id)

    def to_json(self) -> bytes:
        return orjson.dumps(self)  # orjson serializes dataclasses natively (no deep copy, unlike asdict)

    @classmethod
    def from_json(cls, data: bytes) -> AuthorizationRequest:
        raw = orjson.loads(data)
        raw["scope"] = tuple(raw["scope"])
        raw["tier_reasons"] = tuple(raw["tier_reasons"])
        raw["prompt"] = tuple(raw["prompt"])
        for name in ("acr_values", "essential_acr"):
            raw[name] = tuple(raw.get(name) or ())
        return cls(**raw)


class Situation(StrEnum):
    """The situations an authorization request is validated in: the columns of ``STEPS``."""

    BY_VALUE = "by_value"  # at the authorization endpoint: parameters, a request object, a fetched request_uri
    PUSHED_URI = "pushed_uri"  # at the authorization endpoint: request_uri issued by PAR (RFC 9126 §4)
    PAR = "par"  # at the PAR endpoint (RFC 9126 §2.1)


@dataclass(slots=True)
class AuthorizationState:
    env: Environment
    outer: dict[str, str]
    endpoint: str  # "authorization" | "par"
    now: int
    client: Client | None = None
    authenticated: AuthenticatedClient | None = None
    request_object: RequestObject | None = None
    fetched_request: str | None = None  # a request object fetched from a registered request_uri
    pushed: AuthorizationRequest | None = None
    params: dict[str, Any] = field(default_factory=dict)
    redirect_uri: str | None = None
    response_type: str | None = None
    response_mode: str | None = None
    scopes: tuple[str, ...] = ()
    effective: EffectiveTier | None = None
    target: RedirectTarget | None = None
    evidence: dict[str, Any] = field(default_factory=dict)
    flow_id: str = ""  # given by the adapter; a pushed request brings its own (load_pushed_request)
    claimed_scope: str | None = None  # the unverified scope beside a provisional target (response_tier)
    # what is known of the request object (verified here, or at PAR for a pushed request): typed state that
    # decisions read, never the evidence written for flow records
    request_signed: bool = False
    request_alg: str | None = None
    request_encryption: tuple[str, str] | None = None  # (alg, enc) of the outer JWE
    # the authentication the request asks for and needs (check_authentication_request / _assurance)
    acr_values: tuple[str, ...] = ()
    essential_acr: tuple[str, ...] = ()
    required_acr: str | None = None
    auth_max_age: int | None = None
    tier_assurance: bool = False

    @property
    def situation(self) -> Situation:
        """Which column of ``STEPS`` this request runs: pushed at PAR, redeeming a PAR ``request_uri``, or
        an authorization request by value (parameters, ``request``, or a registered ``request_uri``)."""
        if self.endpoint == "par":
            return Situation.PAR
        uri = self.outer.get("request_uri")
        return Situation.PUSHED_URI if uri is not None and uri.startswith(PAR_URN_PREFIX) else Situation.BY_VALUE

    @property
    def tier_required(self) -> EffectiveTier:
        assert self.effective is not None, "resolve_effective_tier must run first"
        return self.effective

    def requires(self, control: Control) -> bool:
        return self.tier_required.tier.requires(control)

    def response_tier(self) -> Tier | None:
        """The tier an error response of this request must satisfy (``responses.error_response``).

        Once ``resolve_effective_tier`` ran, the effective tier. Before, the strictest of the client's tier and
        the tiers of the scopes the request names (verified or not): an error redirected before the scopes
        were checked must not break the rules of the tier the request asked for either (a JARM error signed
        with an algorithm that tier forbids, a redirect to a URI it forbids).
        """
        if self.effective is not None:
            return self.effective.tier
        if self.client is None:
            return None
        scope = self.params.get("scope")
        if not isinstance(scope, str):
            scope = self.claimed_scope or ""
        try:
            return self.env.policy.effective(self.client.risk_tier, scope.split()).tier
        except PolicyError:
            return None

    def missing(self, control: Control, what: str) -> str:
        eff = self.tier_required
        return f"tier {eff.tier.name} requires control {control.value}: {what}"

    def result(self) -> AuthorizationRequest:
        if self.pushed is not None:
            return self.pushed
        assert self.client and self.redirect_uri and self.response_mode and self.effective
        prompt = self.params.get("prompt")
        return AuthorizationRequest(
            client_id=self.client.client_id,
            redirect_uri=self.redirect_uri,
            response_type=str(self.response_type),
            response_mode=self.response_mode,
            scope=self.scopes,
            state=self.params.get("state"),
            nonce=self.params.get("nonce"),
            code_challenge=str(self.params["code_challenge"]),
            code_challenge_method=str(self.params["code_challenge_method"]),
            tier=self.effective.tier.name,
            tier_reasons=tuple(self.effective.reasons()),
            prompt=tuple(prompt.split()) if isinstance(prompt, str) else (),
            max_age=int(self.params["max_age"]) if self.params.get("max_age") is not None else None,
            evidence=dict(self.evidence),
            flow_id=self.flow_id,
            acr_values=self.acr_values,
            essential_acr=self.essential_acr,
            required_acr=self.required_acr,
            auth_max_age=self.auth_max_age,
            tier_assurance=self.tier_assurance,
        )


Step = Callable[[AuthorizationState], Awaitable[None] | None]
