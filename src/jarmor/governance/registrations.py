"""Judging a stored registration against a policy: every rule it breaks, not only the first.

Registration (``protocol.clients.validate_client_metadata``) stops at the first problem and judges metadata
at the client's own tier only. A stored registration is also used at the tier its *registered scopes* raise
its requests to (the effective tier is the strictest of the client's tier and the scopes' tiers, and it
governs every hop, the token endpoint included): a ``client_secret_basic`` machine client registered for a
scope that becomes ``high`` has every ``client_credentials`` request refused (``invalid_client``: the tier
requires ``private_key_jwt``) without ever having had a flow recorded.

So a registration is judged at its own tier and, when its registered scopes raise it, at the raised tier:

* per control the tier requires, what of the registration contradicts it (``protocol.controls.REGISTRY``:
  the registration side of each control; front-channel controls only for clients of the ``authorization_code``
  grant, as on requests);
* every registered signing algorithm against the tier's allowlist;
* everything else registration checks (unknown scopes, algorithms the server cannot sign with ...), by running
  the registration checks with the tiers' controls and allowlists lifted, so that only tier-independent
  problems remain and none is reported twice.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from ..protocol.clients import ServerCapabilities, validate_client_metadata
from ..protocol.controls import INVALID_CLIENT_METADATA, by_name, required_specs
from ..protocol.errors import OAuthError
from ..protocol.policy import ALL_SIGNING_ALGS, Policy, Tier

INVALID_METADATA = INVALID_CLIENT_METADATA
FRONT_CHANNEL_ALGS = ("request_object_signing_alg", "authorization_signed_response_alg",
                      "id_token_signed_response_alg")
BACK_CHANNEL_ALGS = ("token_endpoint_auth_signing_alg",)


@dataclass(frozen=True, slots=True)
class RegistrationProblem:
    """One rule a stored registration breaks: ``rule`` is a control name, ``signing_algs``, ``risk_tier``,
    ``not_implemented`` or ``registration`` (a tier-independent check); ``error`` the code registration
    would answer with; ``tier`` the tier it was judged at."""

    rule: str
    error: str
    reason: str
    tier: str


def _front_channel(meta: Mapping[str, Any]) -> bool:
    return "authorization_code" in (meta.get("grant_types") or ("authorization_code",))


def _consequence(meta: Mapping[str, Any], control: str) -> str:
    """Which requests the effective tier's check refuses (``private_key_jwt`` is checked at the token endpoint,
    and on the front channel already at the authorization endpoint)."""
    entry = by_name(control)
    if entry is None or not entry.back_channel:
        return "its authorization requests would be refused"
    if _front_channel(meta):
        return "its authorization and token requests would be refused"
    return f"its {', '.join(meta.get('grant_types') or ())} token requests would be refused"


def _judge_tier(meta: Mapping[str, Any], tier: Tier, where: str, policy: Policy) -> list[RegistrationProblem]:
    out: list[RegistrationProblem] = []
    missing = policy.missing_implementation(tier)
    if missing:
        out.append(RegistrationProblem(
            "not_implemented", INVALID_METADATA,
            f"{where} requires {', '.join(sorted(c.value for c in missing))}, which this server does not implement",
            tier.name))
    front = _front_channel(meta)
    for entry in required_specs(tier, front_channel=front):
        issue = entry.registration(meta)
        if issue is not None:
            out.append(RegistrationProblem(
                entry.name, entry.registration_error,
                f"{where} requires control {entry.name}: {issue.report}; {_consequence(meta, entry.name)}",
                tier.name))
    members = (FRONT_CHANNEL_ALGS if front else ()) + BACK_CHANNEL_ALGS
    bad = [(m, str(meta[m])) for m in members if meta.get(m) and not tier.allows_alg(str(meta[m]))]
    if bad:
        listed = ", ".join(f"{m} {a}" for m, a in bad)
        out.append(RegistrationProblem(
            "signing_algs", INVALID_METADATA,
            f"{where} does not allow {listed} (allowed: {', '.join(tier.signing_algs)})", tier.name))
    return out


def _lifted(policy: Policy) -> Policy:
    """The policy with every tier's controls and algorithm allowlist lifted: what registration still refuses
    under it does not depend on the tier."""
    tiers = {n: replace(t, controls=frozenset(), signing_algs=ALL_SIGNING_ALGS) for n, t in policy.tiers.items()}
    return Policy(tiers=tiers, scope_tiers=policy.scope_tiers, default_client_tier=policy.default_client_tier,
                  implemented=policy.implemented)


def registration_problems(
    metadata: Mapping[str, Any], policy: Policy, caps: ServerCapabilities
) -> list[RegistrationProblem]:
    """Every rule ``metadata`` breaks under ``policy``, at its own tier and at the tier its registered scopes
    raise it to (empty: its registration would be accepted and its requests are not refused for it)."""
    own_name = str(metadata.get("risk_tier") or policy.default_client_tier)
    if own_name not in policy.tiers:
        return [RegistrationProblem("risk_tier", INVALID_METADATA, f"client tier {own_name} is not defined", own_name)]
    own = policy.tiers[own_name]
    out = _judge_tier(metadata, own, f"tier {own_name}", policy)
    scope = metadata.get("scope")
    eff = policy.effective(own_name, str(scope).split() if scope else ())
    if eff.raised_by:
        where = f"registered scope(s) {', '.join(eff.raised_by)} raise it to tier {eff.tier.name}, which"
        seen = {p.rule for p in out}
        out += [p for p in _judge_tier(metadata, eff.tier, where, policy) if p.rule not in seen]
    try:
        validate_client_metadata(metadata, policy=_lifted(policy), server=caps)
    except OAuthError as err:
        out.append(RegistrationProblem("registration", err.error, err.description, own_name))
    return out
