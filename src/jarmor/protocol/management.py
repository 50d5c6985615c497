"""The client configuration endpoint (RFC 7592; OIDC Registration §4): read, update and delete a registration.

A client calls ``registration_client_uri`` (``{registration endpoint}/{client_id}``) with its registration
access token as a Bearer token (RFC 7592 §2, RFC 6750 §2.1).

* **Rotation on every use.** Each successful call returns a new ``registration_access_token`` and the
  presented one stops working at once (RFC 7592 §2.1/§3 allow new values in any response; the client MUST
  then discard the old one). A stolen token is thus good for one call, and its use locks the rightful client
  out — which is noticed. Only the SHA-256 digest is stored; it is compared in constant time, and the swap is
  one conditional store write, so of two concurrent calls with one token exactly one succeeds.
  (The Brazil DCR conformance tests expect no rotation on GET; checklist S71 notes that profile choice.)
* **Errors.** No, unknown, used or another client's token, or an unknown client: 401 with
  ``WWW-Authenticate: Bearer`` (never 404, OIDC Registration §4.3). A client an administrator disabled: 403
  (RFC 7592 §2.1 "does not have permission"). Bad metadata: 400 ``invalid_client_metadata`` /
  ``invalid_redirect_uri`` (RFC 7591 §3.2.2); a malformed update request: 400 ``invalid_request``.
* **Update replaces** the registration (RFC 7592 §2.2): members left out are gone or back to their defaults,
  everything is validated again as at registration, under the client's own tier. The governance labels
  (``risk_tier``, ``client_kind``, ``owner``, ``resource_server``; ``clients.GOVERNANCE_LABELS``) are
  kept exactly as stored: sending a different value is refused, and no rule re-derives them from the new
  metadata (a third-party client that drops its front channel stays ``third-party``). New ``jwks`` take
  effect for the next request object or assertion.
* **Delete** consumes the token here; the server then offboards the client (``governance.lifecycle``):
  disabled rather than erased, so its ``client_id`` is never issued again and the audit trail stays.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from typing import Any

from ..store.base import AdminEvent, ClientRecord
from . import errors
from .clients import GOVERNANCE_LABELS, governance_labels, hash_secret, uses_secret, validate_client_metadata
from .context import Environment
from .registration import observe_client_keys, registration_client_uri
from .tokens import new_token, token_hash

# RFC 7592 §2.2: the update request MUST NOT carry these
FORBIDDEN_IN_UPDATE = (
    "registration_access_token",
    "registration_client_uri",
    "client_secret_expires_at",
    "client_id_issued_at",
)
# set at registration (by an administrator or by rule); an update keeps them and cannot change them
RETAINED_ON_UPDATE = GOVERNANCE_LABELS
MAX_TOKEN_LENGTH = 256
_NO_MATCH = token_hash("jarmor: no registration access token")


def _unauthorized(description: str, *, missing: bool = False) -> errors.OAuthError:
    err = errors.InvalidToken(description)
    # RFC 6750 §3.1: no error code when the request carried no credentials at all
    err.www_authenticate = 'Bearer realm="jarmor"' if missing else 'Bearer realm="jarmor", error="invalid_token"'
    return err


async def authorize_registration(
    env: Environment, client_id: str, authorization: str | None
) -> tuple[ClientRecord, str]:
    """RFC 7592 §2: the client and the digest of the token it presented, or 401 / 403."""
    if not authorization:
        raise _unauthorized("a registration access token is required", missing=True)
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or len(token) > MAX_TOKEN_LENGTH:
        raise _unauthorized("the registration access token is invalid")
    record = await env.store.clients.get(client_id) if 0 < len(client_id) <= 256 else None
    presented = token_hash(token)
    expected = record.registration_token_hash if record is not None else None
    matches = hmac.compare_digest(presented.encode(), (expected or _NO_MATCH).encode())
    if record is None or expected is None or not matches:
        raise _unauthorized("the registration access token is invalid, used or revoked")
    if record.disabled_at is not None:
        raise errors.AccessDenied("this client has been disabled by an administrator")
    return record, presented


def client_information(env: Environment, record: ClientRecord, registration_token: str) -> dict[str, Any]:
    """RFC 7592 §3 / RFC 7591 §3.2.1: every registered member plus the (new) management credentials.

    The client secret is stored only as a digest, so it appears only in the response that issued it.
    """
    return {
        "client_id": record.client_id,
        "client_id_issued_at": record.created_at,
        **record.metadata,
        "registration_access_token": registration_token,
        "registration_client_uri": registration_client_uri(env, record.client_id),
    }


async def _swap(env: Environment, record: ClientRecord, presented: str) -> str:
    """Store ``record`` with a fresh registration access token, if ``presented`` is still the current one."""
    token = new_token()
    record.registration_token_hash = token_hash(token)
    if not await env.store.clients.replace_registration(record, presented):
        raise _unauthorized("the registration access token has already been used")
    return token


async def read_client(env: Environment, client_id: str, authorization: str | None) -> dict[str, Any]:
    """RFC 7592 §2.1 (GET): the current registration, with a new registration access token."""
    record, presented = await authorize_registration(env, client_id, authorization)
    token = await _swap(env, record, presented)
    return client_information(env, record, token)


def update_request_metadata(record: ClientRecord, body: Mapping[str, Any]) -> dict[str, Any]:
    """RFC 7592 §2.2 request rules; returns the metadata to validate (administrative members carried over)."""
    for name in FORBIDDEN_IN_UPDATE:
        if name in body:
            raise errors.InvalidRequest(f"{name} must not be sent in an update (RFC 7592 §2.2)")
    if body.get("client_id") != record.client_id:
        raise errors.InvalidRequest("client_id must be present and equal to the client's identifier")
    secret = body.get("client_secret")
    if secret is not None and (
        not isinstance(secret, str)
        or record.secret_hash is None
        or not hmac.compare_digest(hash_secret(secret).encode(), record.secret_hash.encode())
    ):
        raise errors.InvalidRequest("client_secret does not match the current client secret")
    metadata = {k: v for k, v in body.items() if k not in ("client_id", "client_secret")}
    current = governance_labels(record.metadata)
    for name in RETAINED_ON_UPDATE:
        if name in metadata and governance_labels({name: metadata[name]})[name] != current[name]:
            raise errors.InvalidClientMetadata(f"{name} can only be changed by an administrator")
    return keep_governance_labels(record.metadata, metadata)


def keep_governance_labels(stored: Mapping[str, Any], metadata: Mapping[str, Any]) -> dict[str, Any]:
    """``metadata`` with the governance labels exactly as ``stored`` (absent where they were absent), so
    that neither the update nor a rule applied while validating it can relabel the client."""
    out = {k: v for k, v in metadata.items() if k not in RETAINED_ON_UPDATE}
    out.update({k: stored[k] for k in RETAINED_ON_UPDATE if k in stored})
    return out


async def update_client(
    env: Environment, client_id: str, authorization: str | None, body: Mapping[str, Any]
) -> dict[str, Any]:
    """RFC 7592 §2.2 (PUT): replace the registration; the response shows the whole new registration."""
    record, presented = await authorize_registration(env, client_id, authorization)
    metadata = update_request_metadata(record, body)
    normalized = keep_governance_labels(
        record.metadata, validate_client_metadata(metadata, policy=env.policy, server=env.capabilities())
    )
    secret: str | None = None
    if not uses_secret(normalized):
        record.secret_hash = None
    elif record.secret_hash is None:  # moved to a secret-based method: issue one now
        secret = new_token()
        record.secret_hash = hash_secret(secret)
    now = env.now()
    changed = sorted(k for k in {*normalized, *record.metadata} if normalized.get(k) != record.metadata.get(k))
    record.metadata = normalized
    record.updated_at = now
    token = await _swap(env, record, presented)
    await observe_client_keys(env, client_id, normalized, now)
    await env.store.audit.append(
        AdminEvent(
            at=now,
            actor=f"client:{client_id}",
            action="client.update",
            target=f"client:{client_id}",
            details={"changed": changed, "scope": normalized.get("scope")},
        )
    )
    response = client_information(env, record, token)
    if secret is not None:
        response["client_secret"] = secret
        response["client_secret_expires_at"] = 0
    return response


async def consume_for_delete(env: Environment, client_id: str, authorization: str | None) -> ClientRecord:
    """RFC 7592 §2.3 (DELETE): authenticate and invalidate the registration access token.

    The caller then offboards the client (disable, revoke tokens and grants, audit) and answers 204.
    """
    record, presented = await authorize_registration(env, client_id, authorization)
    record.registration_token_hash = None
    if not await env.store.clients.replace_registration(record, presented):
        raise _unauthorized("the registration access token has already been used")
    return record
