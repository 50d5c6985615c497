"""Token introspection (RFC 7662).

Who may ask (§2.1, §4: callers authenticate, and SHOULD be authorized specifically):

* a confidential client, about tokens issued to itself;
* a client registered with ``resource_server: true`` (set by an administrator only, never by dynamic
  registration), about *access* tokens issued to any client — the resource servers that accept them;
* nobody else: no or bad credentials, or a public client (``token_endpoint_auth_method none``), get
  401 ``invalid_client`` — never ``{"active": false}`` (§2.3).

What they learn (§2.2): ``{"active": false}`` and nothing more for a token that is unknown, malformed,
expired, revoked (by the client, a grant revocation, code or refresh-token replay, or offboarding), whose
client is disabled or gone, or that the caller may not see. Otherwise ``active``, ``iss``, ``client_id``,
``scope``, ``token_type`` (``Bearer`` for access tokens, ``refresh_token`` for refresh tokens), ``exp``,
``iat`` and ``sub`` when a user granted it, with ``auth_time``, ``acr`` and ``amr`` (RFC 9470 §6.2). ``token_type_hint`` is accepted and not needed: one lookup
covers every token type (§2.1).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from . import errors
from .client_auth import authenticate_client
from .context import Environment
from .revocation import MAX_TOKEN_LENGTH, _token
from .tokens import authentication_claims, token_hash

INACTIVE: dict[str, Any] = {"active": False}


async def introspect_token(
    env: Environment, form: Mapping[str, str], authorization: str | None
) -> dict[str, Any]:
    auth = await authenticate_client(env, form, authorization, endpoint="introspection")
    if auth.method == "none":
        raise errors.InvalidClient("public clients cannot use the introspection endpoint (RFC 7662 §4)")
    token = _token(form)
    record = await env.store.tokens.get(token_hash(token)) if len(token) <= MAX_TOKEN_LENGTH else None
    now = env.now()
    if record is None or record.revoked_at is not None or record.expires_at <= now:
        return dict(INACTIVE)
    caller = auth.client
    if record.client_id != caller.client_id:
        if not (caller.resource_server and record.kind == "access_token"):
            return dict(INACTIVE)
        owner = await env.clients.get(record.client_id)
        if owner is None or owner.disabled:
            return dict(INACTIVE)
    body: dict[str, Any] = {
        "active": True,
        "iss": env.issuer,
        "client_id": record.client_id,
        "scope": record.scope,
        "token_type": "Bearer" if record.kind == "access_token" else "refresh_token",
        "exp": record.expires_at,
        "iat": record.created_at,
    }
    if record.subject:
        body["sub"] = record.subject
        # how the user authenticated, for a resource server deciding on step-up (RFC 9470 §6.2; OIDC Core §2)
        body.update(authentication_claims(record.extra))
    return body
