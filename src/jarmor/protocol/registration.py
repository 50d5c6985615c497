"""Dynamic client registration (RFC 7591) behind an initial access token, and CLI registration."""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from ..jose import JoseError, JwkSet, loads_object
from ..store.base import AdminEvent, AlreadyExists, ClientRecord
from . import errors
from .clients import (
    client_kind_by_rule,
    governance_labels,
    hash_secret,
    uses_secret,
    validate_client_metadata,
)
from .context import Environment
from .tokens import new_token, token_hash

MAX_REGISTRATION_BODY = 64 * 1024


def new_client_id() -> str:
    """128 random bits, base64url; never starting with ``-``, so the id can be passed to command-line tools
    (``jarmor clients show ID``) without being read as an option."""
    while True:
        cid = secrets.token_urlsafe(16)
        if not cid.startswith("-"):
            return cid


def new_client_record(
    env: Environment, metadata: Mapping[str, Any], *, client_id: str | None = None
) -> tuple[ClientRecord, dict[str, Any]]:
    """Validate ``metadata`` and build the record to store plus the RFC 7591 §3.2.1 response body."""
    normalized = validate_client_metadata(metadata, policy=env.policy, server=env.capabilities())
    if client_id is not None and (not client_id or len(client_id) > 128 or not client_id.isprintable()):
        raise errors.InvalidClientMetadata("client_id must be 1-128 printable characters")
    cid = client_id or new_client_id()
    now = env.now()
    secret = new_token() if uses_secret(normalized) else None
    registration_token = new_token()
    record = ClientRecord(
        client_id=cid,
        metadata=normalized,
        created_at=now,
        updated_at=now,
        secret_hash=hash_secret(secret) if secret else None,
        registration_token_hash=token_hash(registration_token),
    )
    body: dict[str, Any] = {"client_id": cid, "client_id_issued_at": now, **normalized}
    if secret:
        body["client_secret"] = secret
        body["client_secret_expires_at"] = 0
    body["registration_access_token"] = registration_token
    body["registration_client_uri"] = registration_client_uri(env, cid)
    return record, body


def registration_client_uri(env: Environment, client_id: str) -> str:
    """RFC 7592 §3: the client configuration endpoint, ``{registration endpoint}/{client_id}``."""
    return f"{env.endpoints.registration}/{quote(client_id, safe='')}"


# Members that govern a client rather than describe it: only an administrator sets them (``jarmor clients
# add``); dynamic registration may not grant them, and RFC 7592 updates keep them as they are.
# (``client_kind`` too, beyond what the rule gives: see ``check_self_service_kind``.)
ADMINISTRATIVE_MEMBERS = ("resource_server",)


def check_self_service_kind(metadata: Mapping[str, Any]) -> None:
    """Dynamic registration (RFC 7591) is self-service: a client may state the kind the rule gives it
    (``client_kind_by_rule``) but not choose another — ``first-party`` or ``machine`` would take it out of
    the report's third-party exposure list. Only an administrator decides otherwise."""
    kind = metadata.get("client_kind")
    if kind is None:
        return
    grant_types = metadata.get("grant_types") or ["authorization_code"]
    if not isinstance(grant_types, list) or kind != client_kind_by_rule(grant_types):
        raise errors.InvalidClientMetadata("client_kind can only be set by an administrator")


def label_changes(old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """``{label: {"old": ..., "new": ...}}`` for every governance label that differs (all of them when
    ``old`` is ``None``: a new registration), for the audit log."""
    before = governance_labels(old) if old is not None else dict.fromkeys(governance_labels(new))
    after = governance_labels(new)
    return {k: {"old": before[k], "new": after[k]} for k in after if before[k] != after[k]}


async def register(
    env: Environment,
    metadata: Mapping[str, Any],
    *,
    client_id: str | None = None,
    actor: str = "admin",
    dynamic: bool = False,
) -> dict[str, Any]:
    """Register a client. ``dynamic``: the request came from the registration endpoint (RFC 7591), so it
    may not set administrative members. ``actor`` is recorded in the audit log."""
    if dynamic:
        for name in ADMINISTRATIVE_MEMBERS:
            if metadata.get(name) not in (None, False):
                raise errors.InvalidClientMetadata(f"{name} can only be set by an administrator")
        check_self_service_kind(metadata)
    record, body = new_client_record(env, metadata, client_id=client_id)
    try:
        await env.store.clients.create(record)
    except AlreadyExists as exc:
        raise errors.InvalidClientMetadata("this client_id is already registered") from exc
    await observe_client_keys(env, record.client_id, record.metadata, record.created_at)
    await env.store.audit.append(
        AdminEvent(
            at=record.created_at,
            actor=actor,
            action="client.register",
            target=f"client:{record.client_id}",
            details={
                "risk_tier": record.metadata.get("risk_tier"),
                "scope": record.metadata.get("scope"),
                "labels": label_changes(None, record.metadata),
                "client_kind_by": actor if metadata.get("client_kind") is not None and not dynamic else "rule",
            },
        )
    )
    return body


def client_key_ids(metadata: Mapping[str, Any]) -> list[tuple[str, str]]:
    """``(RFC 7638 thumbprint, kid)`` of each key registered by value (none for ``jwks_uri`` clients)."""
    if not metadata.get("jwks"):
        return []
    return [(key.thumbprint(), key.kid) for key in JwkSet.from_dict(metadata["jwks"])]


async def observe_client_keys(env: Environment, client_id: str, metadata: Mapping[str, Any], now: int) -> None:
    """Remember when each registered key was first seen, so the inventory can show key ages."""
    await env.store.client_key_history.observe(client_id, client_key_ids(metadata), now)


def check_initial_access_token(authorization: str | None, expected: str | None) -> None:
    """RFC 7591 §3: registration is open only to holders of the initial access token."""
    if not expected:
        raise errors.AccessDenied("dynamic client registration is disabled on this server")
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), expected.encode()):
        err = errors.InvalidToken("a valid initial access token is required")
        err.www_authenticate = 'Bearer error="invalid_token"'
        raise err


def parse_metadata(body: bytes) -> dict[str, Any]:
    if len(body) > MAX_REGISTRATION_BODY:
        raise errors.InvalidClientMetadata("registration request too large")
    try:
        return loads_object(body)
    except JoseError as exc:
        raise errors.InvalidClientMetadata(f"client metadata must be a JSON object: {exc}") from exc
