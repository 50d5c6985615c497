"""Judging a stored registration against a policy: every rule it breaks, not only the first.

Registration (``protocol.clients.validate_client_metadata``) stops at the first problem and judges metadata
at the client's own tier only. A stored registration is also used at the tier its *registered scopes* raise
its requests to (the effective tier is the strictest of the client's tier and the scopes' tiers, and it
governs every hop, the token endpoint included): a ``client_secret_basic`` machine client registered for a
scope that becomes ``high`` has every ``client_credentials`` request refused (``invalid_client``: the tier
requires ``private_key_jwt``) without ever having had a flow recorded.

So a registration is judged at its own tier and, when its registered scopes raise it, at the raised tier:

* per control the tier requires, what of the registration contradicts it (``REGISTRATION_RULES``: the
  registration side of each control; front-channel controls only for clients of the ``authorization_code``
  grant, as on requests);
* every registered signing algorithm against the tier's allowlist;
* everything else registration checks (unknown scopes, algorithms the server cannot sign with ...), by running
  the registration checks with the tiers' controls and allowlists lifted, so that only tier-independent
  problems remain and none is reported twice.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from ..protocol.clients import ServerCapabilities, check_redirect_uri_value, validate_client_metadata
from ..protocol.errors import OAuthError
from ..protocol.policy import ALL_SIGNING_ALGS, ALWAYS, Control, Policy, Tier
from ..protocol.vocabulary import JARM_MODES, PLAIN_MODES
from .flows import BACK_CHANNEL_CONTROLS, ordered

INVALID_METADATA = "invalid_client_metadata"
INVALID_REDIRECT = "invalid_redirect_uri"
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


def _has_keys(meta: Mapping[str, Any]) -> bool:
    return bool(meta.get("jwks") or meta.get("jwks_uri"))


def _private_key_jwt(meta: Mapping[str, Any]) -> str | None:
    method = meta.get("token_endpoint_auth_method")
    if method == "private_key_jwt":
        return None
    keys = "" if _has_keys(meta) else ", and no jwks or jwks_uri is registered"
    return f"it authenticates with {method}{keys}"


def _signed_request_object(meta: Mapping[str, Any]) -> str | None:
    return None if _has_keys(meta) else "no jwks or jwks_uri is registered to verify its request objects"


def _par(meta: Mapping[str, Any]) -> str | None:
    return "request_uris are registered, but requests must be pushed (RFC 9126 §6)" if meta.get("request_uris") else None


def _jarm(meta: Mapping[str, Any]) -> str | None:
    modes = meta.get("response_modes")
    if modes is None:
        return None  # every mode, JARM ones included
    plain = [m for m in modes if m in PLAIN_MODES]
    if not plain:
        return None
    none = "" if any(m in JARM_MODES for m in modes) else " and no JARM mode"
    return f"plain response mode(s) {', '.join(plain)}{none} are registered"


def _encrypted_jarm(meta: Mapping[str, Any]) -> str | None:
    return None if meta.get("authorization_encrypted_response_alg") else "no authorization_encrypted_response_alg is registered"


def _encrypted_request_object(meta: Mapping[str, Any]) -> str | None:
    return None if meta.get("request_object_encryption_alg") else "no request_object_encryption_alg is registered"


def _https_redirect_uris(meta: Mapping[str, Any]) -> str | None:
    """What registration refuses under the control (``check_redirect_uri_value``, whose rule this mirrors
    rather than restates: it admits http on a loopback host, RFC 8252 §7.3)."""
    refused: list[str] = []
    for uri in meta.get("redirect_uris") or ():
        try:
            check_redirect_uri_value(str(uri), https_only=True)
        except OAuthError:
            refused.append(str(uri))
    return f"redirect URI(s) {' '.join(refused)} are not https" if refused else None


# The registration side of each control: what in stored metadata contradicts it (None: nothing).
REGISTRATION_RULES: Mapping[Control, Callable[[Mapping[str, Any]], str | None]] = {
    Control.PRIVATE_KEY_JWT: _private_key_jwt,
    Control.SIGNED_REQUEST_OBJECT: _signed_request_object,
    Control.PAR: _par,
    Control.JARM: _jarm,
    Control.ENCRYPTED_JARM: _encrypted_jarm,
    Control.ENCRYPTED_REQUEST_OBJECT: _encrypted_request_object,
    Control.HTTPS_REDIRECT_URIS: _https_redirect_uris,
}


def _front_channel(meta: Mapping[str, Any]) -> bool:
    return "authorization_code" in (meta.get("grant_types") or ("authorization_code",))


def _consequence(meta: Mapping[str, Any], control: str) -> str:
    """Which requests the effective tier's check refuses (``private_key_jwt`` is checked at the token endpoint,
    and on the front channel already at the authorization endpoint)."""
    if control not in BACK_CHANNEL_CONTROLS:
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
    required = {c.value for c in tier.controls | ALWAYS}
    for name in ordered(required if front else required & BACK_CHANNEL_CONTROLS):
        judge = REGISTRATION_RULES.get(Control(name))
        what = judge(meta) if judge is not None else None
        if what is not None:
            error = INVALID_REDIRECT if name == Control.HTTPS_REDIRECT_URIS.value else INVALID_METADATA
            out.append(RegistrationProblem(
                name, error, f"{where} requires control {name}: {what}; {_consequence(meta, name)}", tier.name))
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
