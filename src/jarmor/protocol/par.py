"""Pushed authorization requests (RFC 9126)."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
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
from .context import Environment
from .mtls import ClientCertificate
from .vocabulary import PAR_URN_PREFIX

_CLIENT_AUTH_PARAMETERS = frozenset({"client_assertion", "client_assertion_type", "client_secret"})
MIN_PAR_LIFETIME = 5


@dataclass(frozen=True, slots=True)
class PushedRequest:
    body: dict[str, Any]
    request: AuthorizationRequest


async def push_authorization_request(
    env: Environment,
    form: Mapping[str, str],
    authorization: str | None,
    *,
    state: AuthorizationState | None = None,
    certificate: ClientCertificate | None = None,
) -> PushedRequest:
    """RFC 9126 §2: authenticate the client, validate the request fully, store it, return a request URI.

    §2.2: the URI holds 256 random bits and lives ``par_lifetime`` seconds (never beyond the request
    object's own ``exp``, attack catalog A48); it is bound to the pushing client and used once.
    """
    auth = await authenticate_client(env, form, authorization, endpoint="par", certificate=certificate)
    outer = {k: v for k, v in form.items() if k not in _CLIENT_AUTH_PARAMETERS}
    st = state or AuthorizationState(env=env, outer=outer, endpoint="par", now=env.now())
    st.outer, st.client, st.authenticated = outer, auth.client, auth
    st.evidence["client_auth"] = auth.evidence
    request = await run_checks(PAR_ENDPOINT, st)
    tier = env.policy.tier(request.tier)
    ttl = max(tier.par_lifetime, MIN_PAR_LIFETIME)
    if st.request_object is not None:
        # never beyond the object's exp, even by the minimum: the object accepted within the clock skew
        # of its exp would otherwise yield a request_uri usable after it expired
        ttl = min(ttl, int(st.request_object.claims["exp"]) - st.now)
        if ttl < 1:
            raise errors.InvalidRequestObject("the request object expires before its request_uri could be used")
    ref = secrets.token_urlsafe(32)
    await env.store.ephemeral.put("par", pushed_request_key(auth.client.client_id, ref), request.to_json(), ttl)
    return PushedRequest(body={"request_uri": PAR_URN_PREFIX + ref, "expires_in": ttl}, request=request)
