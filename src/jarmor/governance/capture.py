"""Turning what the protocol core reports (its ``evidence`` and errors) into ``FlowEvent`` s.

The protocol core (ports and adapters: it awaits the ports it is given) never writes flow records: it only
*returns* evidence (``AuthorizationState.evidence``, ``render``'s response evidence, the token endpoint's
evidence) and hands each recorded interaction transition to its ``record`` port. The server adapter calls
these functions with it and hands the events to the recorder. Only known members are copied, with bounded strings: a record never holds request
data beyond the identifiers and algorithm names the checks already validated.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from ..protocol.authorization import AuthorizationRequest, AuthorizationState
from ..protocol.clients import Client
from ..protocol.controls import REGISTRY
from ..protocol.errors import OAuthError
from ..protocol.policy import Policy, PolicyError
from .records import (
    AUTHORIZE,
    CODE,
    CODE_ISSUED,
    MAX_ID,
    TOKEN,
    TOKENS_ISSUED,
    FlowEvent,
    clip,
    new_flow_id,
    node_name,
    policy_fingerprint,
    required_controls,
)

_RO_MEMBERS = ("signed", "alg", "kid", "encrypted", "enc_alg", "enc", "nbf", "lifetime")
_JARM_MEMBERS = ("signed", "alg", "kid", "encrypted", "enc_alg", "enc")
_AUTH_MEMBERS = ("method", "alg", "kid", "aud")
_ID_TOKEN_MEMBERS = ("alg", "kid")
_LIFETIME_MEMBERS = ("access_token", "refresh_token")


def _pick(value: Any, members: tuple[str, ...]) -> dict[str, Any] | None:
    if not isinstance(value, Mapping):
        return None
    out: dict[str, Any] = {}
    for name in members:
        v = value.get(name)
        if isinstance(v, bool | int) or v is None:
            if v is not None:
                out[name] = v
        else:
            out[name] = clip(str(v), MAX_ID)
    return out


def front_controls(evidence: Mapping[str, Any]) -> dict[str, Any]:
    """The front-channel evidence of an authorization request (``AuthorizationState.evidence``)."""
    out: dict[str, Any] = {}
    ro = _pick(evidence.get("request_object"), _RO_MEMBERS)
    if ro is not None:
        out["request_object"] = ro
    if "par" in evidence:
        out["par"] = bool(evidence["par"])
    for name in ("response_mode", "pkce", "request_uri", "jarm_alg", "id_token_alg"):
        if isinstance(evidence.get(name), str):
            out[name] = clip(evidence[name], MAX_ID)
    if evidence.get("https_redirect_uri") is True:
        out["https_redirect_uri"] = True
    auth = _pick(evidence.get("client_auth"), _AUTH_MEMBERS)
    if auth is not None:
        out["client_auth"] = auth
    for spec in REGISTRY.values():  # what each control's entry declares its records keep
        out.update(spec.recorded(evidence))
    return out


def response_controls(evidence: Mapping[str, Any] | None) -> dict[str, Any]:
    """What ``responses.render`` applied: the JARM JWT (signed, encrypted) and how RFC 9207 ``iss`` went."""
    if not evidence:
        return {}
    out: dict[str, Any] = {}
    jarm = _pick(evidence.get("jarm"), _JARM_MEMBERS)
    if jarm is not None:
        out["jarm"] = jarm
    if isinstance(evidence.get("iss_emitted"), str):
        out["iss"] = evidence["iss_emitted"]
    return out


@dataclass(frozen=True, slots=True)
class Capture:
    """What every event written by one server shares: its policy (and fingerprint) and its node name."""

    policy: Policy
    policy_id: str
    node: str

    @classmethod
    def for_policy(cls, policy: Policy) -> Capture:
        return cls(policy=policy, policy_id=policy_fingerprint(policy), node=node_name())

    def required(self, tier: str | None) -> tuple[str, ...]:
        if tier is None:
            return ()
        try:
            return required_controls(self.policy.tier(tier))
        except PolicyError:
            return ()

    def _event(self, **kw: Any) -> FlowEvent:
        return FlowEvent(node=self.node, policy=self.policy_id, **kw)

    # -- PAR and authorization endpoint ------------------------------------------------------------------

    def from_state(
        self,
        st: AuthorizationState,
        *,
        stage: str,
        outcome: str,
        error: OAuthError | None = None,
        channel: str | None = None,
        expires_at: int | None = None,
        claimed: str | None = None,
    ) -> FlowEvent:
        """An event for a request that ran (part of) the checks pipeline: what they established so far."""
        eff = st.effective
        client = st.client
        return self._event(
            flow_id=st.flow_id or new_flow_id(),
            stage=stage,
            outcome=outcome,
            at=st.now,
            client_id=client.client_id if client else None,
            client_claimed=None if client else (claimed or st.outer.get("client_id")),
            scopes=st.scopes,
            grant_type="authorization_code",
            client_tier=client.risk_tier if client else None,
            tier=eff.tier.name if eff else None,
            tier_reasons=tuple(eff.reasons()) if eff else (),
            required=required_controls(eff.tier) if eff else (),
            controls=front_controls(st.evidence),
            error_description=error.description if error else None,
            channel=channel,
            expires_at=expires_at,
        )

    def from_request(
        self,
        req: AuthorizationRequest,
        client: Client | None,
        *,
        stage: str,
        outcome: str,
        at: int,
        subject: str | None = None,
        error: OAuthError | None = None,
        expires_at: int | None = None,
        response: Mapping[str, Any] | None = None,
    ) -> FlowEvent:
        """An event for a validated request later in its life (sign-in, consent, code issuance)."""
        controls = front_controls(req.evidence)
        controls["redirect_uri"] = clip(req.redirect_uri, MAX_ID)
        controls.update(response_controls(response))
        return self._event(
            flow_id=req.flow_id or new_flow_id(),
            stage=stage,
            outcome=outcome,
            at=at,
            client_id=req.client_id,
            subject=subject,
            scopes=req.scope,
            grant_type="authorization_code",
            client_tier=client.risk_tier if client else None,
            tier=req.tier,
            tier_reasons=req.tier_reasons,
            required=self.required(req.tier),
            controls=controls,
            error_description=error.description if error else None,
            channel="redirect" if error is not None and response is not None else ("page" if error else None),
            expires_at=expires_at,
        )

    def code_issued(
        self, req: AuthorizationRequest, client: Client, *, subject: str, at: int, response: Mapping[str, Any]
    ) -> FlowEvent:
        lifetime = self.policy.tier(req.tier).code_lifetime if req.tier in self.policy.tiers else 0
        return self.from_request(
            req, client, stage=CODE, outcome=CODE_ISSUED, at=at, subject=subject, expires_at=at + lifetime,
            response=response,
        )

    @staticmethod
    def delivered(event: FlowEvent, response: Mapping[str, Any] | None) -> FlowEvent:
        """``event`` (an authorization error) as it was delivered: redirected (with its JARM/iss evidence)
        when it had a verified target, else shown on the error page."""
        if response is None:
            return replace(event, channel="page")
        return replace(event, channel="redirect", controls={**event.controls, **response_controls(response)})

    # -- token endpoint ----------------------------------------------------------------------------------

    def token(
        self,
        evidence: Mapping[str, Any],
        *,
        at: int,
        result_evidence: Mapping[str, Any] | None = None,
        id_token: bool = False,
        error: OAuthError | None = None,
        claimed: str | None = None,
    ) -> FlowEvent:
        """A token endpoint request: ``evidence`` is what ``token_endpoint`` filled in as it went."""
        ev = {**evidence, **(result_evidence or {})}
        tier = ev.get("tier") if isinstance(ev.get("tier"), str) else None
        controls: dict[str, Any] = {}
        auth = _pick(ev.get("client_auth"), _AUTH_MEMBERS)
        if auth is not None:
            controls["client_auth"] = auth
        if isinstance(ev.get("code_redeemed_at"), int):
            controls["code_redeemed_at"] = ev["code_redeemed_at"]
        signed = _pick(ev.get("id_token"), _ID_TOKEN_MEMBERS)
        if signed is not None:
            controls["id_token"] = signed
        lifetimes = _pick(ev.get("lifetimes"), _LIFETIME_MEMBERS)
        if lifetimes:
            controls["lifetimes"] = lifetimes
        if error is None:
            tokens = [str(t) for t in ev.get("tokens") or ()]
            controls["tokens"] = [*tokens, "id_token"] if id_token else tokens
            if ev.get("grant_type") == "authorization_code":
                controls["pkce_verified"] = "S256"
        if ev.get("replay"):
            controls["code_replayed"] = True
        scope = ev.get("scope")
        client_id = ev.get("client_id") if isinstance(ev.get("client_id"), str) else None
        grant = ev.get("grant_type")
        scopes = tuple(scope.split()) if isinstance(scope, str) else ()
        client_tier = ev.get("client_tier") if isinstance(ev.get("client_tier"), str) else None
        # why the token endpoint ran under ``tier``: the code's or grant's recorded tier, or (client
        # credentials) the tier of the requested scopes, as ``tokens.grant_tier`` decided
        given = ev.get("tier_reasons")
        reasons = tuple(clip(str(r), MAX_ID) or "" for r in given[:8]) if isinstance(given, list) else ()
        if not reasons and grant == "client_credentials" and client_tier and tier:
            try:  # the effective tier is decided here, not at an authorization request
                reasons = tuple(self.policy.effective(client_tier, scopes).reasons())
            except PolicyError:
                reasons = ()
        return self._event(
            flow_id=str(ev.get("flow_id") or new_flow_id()),
            stage=TOKEN,
            outcome=error.error if error else TOKENS_ISSUED,
            at=at,
            client_id=client_id,
            client_claimed=None if client_id else claimed,
            subject=ev.get("subject") if isinstance(ev.get("subject"), str) else None,
            scopes=scopes,
            grant_type=clip(grant, 64) if isinstance(grant, str) else None,
            client_tier=client_tier,
            tier=tier,
            tier_reasons=reasons,
            required=self.required(tier),
            controls=controls,
            error_description=error.description if error else None,
            channel="json" if error else None,
        )


__all__ = ["AUTHORIZE", "Capture", "front_controls", "response_controls"]
