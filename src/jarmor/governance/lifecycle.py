"""Ending access: offboarding a client and revoking a single grant, each recorded in the audit log.

Both work on the store alone, so the command line (``jarmor clients offboard``, ``jarmor review revoke``),
the admin dashboard and the RFC 7592 ``DELETE`` share them. Running servers see a disabled client at once in
the process that disabled it (the caller invalidates its ``ClientDirectory`` entry) and within the
directory's cache lifetime (2 s) elsewhere; tokens are revoked in the store, so introspection reports them
inactive immediately everywhere.

Offboarding disables rather than deletes: the ``client_id`` is never issued again (OIDC Registration §3.2),
and the record keeps who disabled it, when and why.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..store.base import AdminEvent, GrantRecord, Store

MAX_REASON = 1000


class GovernanceError(Exception):
    """A governance action cannot be carried out (unknown record, missing reason)."""


@dataclass(frozen=True, slots=True)
class Offboarding:
    client_id: str
    disabled: bool  # False: the client was already disabled (tokens and grants were revoked again anyway)
    tokens_revoked: int
    grants_revoked: int


@dataclass(frozen=True, slots=True)
class GrantRevocation:
    grant: GrantRecord
    revoked: bool  # False: the grant was already revoked
    tokens_revoked: int


def _reason(reason: str) -> str:
    reason = reason.strip()
    if not reason:
        raise GovernanceError("a reason is required")
    if len(reason) > MAX_REASON or not reason.isprintable():
        raise GovernanceError(f"the reason must be at most {MAX_REASON} printable characters")
    return reason


def _actor(by: str) -> str:
    by = by.strip()
    if not by or len(by) > 200 or not by.isprintable():
        raise GovernanceError("the actor must be 1-200 printable characters")
    return by


async def offboard(store: Store, client_id: str, *, reason: str, by: str, now: int) -> Offboarding:
    """Disable the client, revoke all its tokens and grants, and record who did it and why.

    The client is disabled first, so no new token is minted once the revocation has run (servers that
    cached the client as enabled refuse it within the directory's cache lifetime, and introspection answers
    ``active: false`` for a disabled client's tokens whatever their state).
    """
    reason, by = _reason(reason), _actor(by)
    if await store.clients.get(client_id) is None:
        raise GovernanceError("no client with this client_id")
    disabled = await store.clients.disable(client_id, at=now, reason=reason, by=by)
    tokens = await store.tokens.revoke_client(client_id, now)
    grants = 0
    for grant in await store.grants.list_for_client(client_id):
        if grant.revoked_at is None and await store.grants.revoke(grant.grant_id, now, f"client offboarded: {reason}"):
            grants += 1
    await store.audit.append(
        AdminEvent(
            at=now,
            actor=by,
            action="client.offboard",
            target=f"client:{client_id}",
            reason=reason,
            details={"already_disabled": not disabled, "tokens_revoked": tokens, "grants_revoked": grants},
        )
    )
    return Offboarding(client_id, disabled, tokens, grants)


async def revoke_grant(store: Store, grant_id: str, *, reason: str, by: str, now: int) -> GrantRevocation:
    """Revoke one grant (what a user authorized a client to do) and every token issued under it."""
    reason, by = _reason(reason), _actor(by)
    grant = await store.grants.get(grant_id)
    if grant is None:
        raise GovernanceError("no grant with this id")
    revoked = await store.grants.revoke(grant_id, now, reason)
    tokens = await store.tokens.revoke_grant(grant_id, now)
    await store.audit.append(
        AdminEvent(
            at=now,
            actor=by,
            action="grant.revoke",
            target=f"client:{grant.client_id}",
            reason=reason,
            details={"grant_id": grant_id, "subject": grant.subject, "scope": grant.scope,
                     "already_revoked": not revoked, "tokens_revoked": tokens},
        )
    )
    return GrantRevocation(await store.grants.get(grant_id) or grant, revoked, tokens)
