"""Pushed authorization requests (RFC 9126)."""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from . import errors
from .authorization import (
    PAR_ENDPOINT,
    AuthorizationRequest,
    AuthorizationState,
    pushed_request_key,
    run_checks,
)
from .client_auth import authenticate_client
from .clients import Client
from .context import Environment
from .dpop import DPoPProof
from .mtls import ClientCertificate
from .policy import PolicyError, Tier
from .sender import Presented, claim_proof, next_nonce, verify_presented_proof
from .vocabulary import PAR_URN_PREFIX

_CLIENT_AUTH_PARAMETERS = frozenset({"client_assertion", "client_assertion_type", "client_secret"})
MIN_PAR_LIFETIME = 5


@dataclass(frozen=True, slots=True)
class PushedRequest:
    body: dict[str, Any]
    request: AuthorizationRequest
    dpop_nonce: str | None = None  # RFC 9449 §8.2: the next nonce, sent in ``DPoP-Nonce``


def _client_tier(env: Environment, client: Client) -> Tier | None:
    try:
        return env.policy.tier(client.risk_tier)
    except PolicyError:
        return None  # the checks refuse the request (check_tier_available)


async def _bind_proof(
    env: Environment, presented: Presented, st: AuthorizationState, tiers: tuple[Tier | None, Tier],
    proof: DPoPProof | None,
) -> str | None:
    """RFC 9449 §10.1: the proof sent to PAR, held to the request's effective tier (its algorithms, its nonce
    rule) once the checks have established it; its ``jti`` is then used up. Returns the next nonce."""
    client_tier, tier = tiers
    if presented.dpop and (client_tier is None or client_tier.name != tier.name):  # a scope raised the tier
        proof = verify_presented_proof(env, presented, url=presented.url(env, "par"), tier=tier, now=st.now)
    if proof is None:
        return None
    await claim_proof(env, proof)
    return next_nonce(env, tier, proof, st.now)


async def push_authorization_request(
    env: Environment,
    form: Mapping[str, str],
    authorization: str | None,
    *,
    state: AuthorizationState | None = None,
    certificate: ClientCertificate | None = None,
    dpop: Sequence[str] = (),
    client_certificate_thumbprint: str | None = None,
    authority: str | None = None,
) -> PushedRequest:
    """RFC 9126 §2: authenticate the client, validate the request fully, store it, return a request URI.

    §2.2: the URI holds 256 random bits and lives ``par_lifetime`` seconds (never beyond the request
    object's own ``exp``, attack catalog A48); it is bound to the pushing client and used once.

    RFC 9449 §10.1: a DPoP proof (``dpop``: every ``DPoP`` header) binds the code to its key. It is verified
    under the client's tier before the request's checks (a refused proof, or a nonce retry, then uses up no
    request object ``jti``), and under the effective tier after them. ``authority``: the request's ``Host``
    (a proof's ``htu`` names the mTLS alias when the request was sent there, RFC 8705 §5).
    """
    auth = await authenticate_client(env, form, authorization, endpoint="par", certificate=certificate)
    thumbprint = client_certificate_thumbprint or (certificate.thumbprint if certificate else None)
    presented = Presented(tuple(dpop), thumbprint, authority)
    outer = {k: v for k, v in form.items() if k not in _CLIENT_AUTH_PARAMETERS}
    st = state or AuthorizationState(env=env, outer=outer, endpoint="par", now=env.now())
    st.outer, st.client, st.authenticated = outer, auth.client, auth
    st.evidence["client_auth"] = auth.evidence
    client_tier = _client_tier(env, auth.client)
    proof = None
    if client_tier is not None:
        proof = verify_presented_proof(env, presented, url=presented.url(env, "par"), tier=client_tier, now=st.now)
        st.dpop_proof_jkt = proof.jkt if proof is not None else None
    request = await run_checks(PAR_ENDPOINT, st)
    tier = env.policy.tier(request.tier)
    nonce = await _bind_proof(env, presented, st, (client_tier, tier), proof)
    ttl = max(tier.par_lifetime, MIN_PAR_LIFETIME)
    if st.request_object is not None:
        # never beyond the object's exp, even by the minimum: the object accepted within the clock skew
        # of its exp would otherwise yield a request_uri usable after it expired
        ttl = min(ttl, int(st.request_object.claims["exp"]) - st.now)
        if ttl < 1:
            raise errors.InvalidRequestObject("the request object expires before its request_uri could be used")
    ref = secrets.token_urlsafe(32)
    await env.store.ephemeral.put("par", pushed_request_key(auth.client.client_id, ref), request.to_json(), ttl)
    return PushedRequest(body={"request_uri": PAR_URN_PREFIX + ref, "expires_in": ttl}, request=request,
                         dpop_nonce=nonce)
