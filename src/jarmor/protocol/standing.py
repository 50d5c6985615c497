"""Whether a client, a grant and a user still stand, re-read at the last step of issuing anything.

Offboarding (``governance.lifecycle.offboard``) first disables the client and *then* revokes its tokens and
grants; revoking a grant first marks the grant and *then* revokes its tokens. So the steps that issue — an
authorization code (RFC 6749 §4.1.2), tokens (§5.1) — check the state from the store *after* they have stored
what they issue, never only before:

* if the check sees the client disabled (the grant revoked, the user disabled), the step takes back what it
  stored and fails, and its flow record says why;
* if the check sees the client still enabled, the offboarding commits after the check, hence after the code or
  tokens were stored, and its revocation that follows covers them (a code's client is refused at the token
  endpoint; tokens are revoked in the store).

Either way nothing issued by a flow that raced the change outlives it, and no flow that *starts* after the
change commits gets a code or tokens, whatever a process's client cache still holds (``server.directory``).
The token endpoint also compares the client's version (``updated_at``) with the one it authenticated the
client with: keys replaced meanwhile fail the request (the assertion may have been verified with a replaced
key). Each check is one read (``ClientStore.standing``: the client's row and its user's, by primary key; ~5 µs
on SQLite, one round trip on PostgreSQL), plus the grant's row for a refresh.

A user with no account record (the subject an ``--auto-approve`` demo server signs in) is taken as standing:
only an account that exists and is disabled is refused.
"""

from __future__ import annotations

from collections.abc import Sequence

from . import errors
from .context import Environment

CLIENT_DISABLED = "client is disabled"
CLIENT_CHANGED = "the client registration changed during the request; try again"
GRANT_REVOKED = "the grant has been revoked"
USER_DISABLED = "the user account is disabled"


async def confirm_code(env: Environment, *, client_id: str, subject: str, code_key: str) -> None:
    """After the code is stored under ``code_key``: withdraw it and fail if the client or user no longer
    stands (the client: ``invalid_client`` on the error page, never a redirect to an offboarded client)."""
    standing = await env.store.clients.standing(client_id, subject)
    if standing is None or standing[1] is not None:
        await env.store.ephemeral.delete("code", code_key)
        raise errors.InvalidClient(CLIENT_DISABLED, status=400)
    if standing[2]:
        await env.store.ephemeral.delete("code", code_key)
        raise errors.AccessDenied(USER_DISABLED)


async def confirm_tokens(
    env: Environment, *, client_id: str, version: int, issued: Sequence[str], grant_id: str | None,
    subject: str | None, check_grant: bool,
) -> None:
    """After the tokens (digests ``issued``) are stored: revoke them and fail if the client, the grant or the
    user no longer stands (RFC 6749 §5.2: ``invalid_client`` for the client, ``invalid_grant`` for the grant
    and user).

    ``version``: the client's ``updated_at`` when the request authenticated it. If the registration changed
    since (keys replaced through RFC 7592 or by an administrator), the credential may have been verified with
    a replaced key: the request fails and what it issued is revoked (a client racing its own key rotation
    tries again; after a refresh it must sign the user in again, its refresh token having rotated).

    ``check_grant``: the grant existed before this request (a refresh). A grant created by this very code
    redemption can only have been revoked by a concurrent replay of the code, which by design leaves this
    redemption successful with its tokens revoked (RFC 6749 §4.1.2, protocol/tokens.py).
    """
    now = env.now()
    standing = await env.store.clients.standing(client_id, subject)
    if standing is None or standing[1] is not None or standing[0] != version:
        for digest in issued:
            await env.store.tokens.revoke(digest, now)
        if standing is None or standing[1] is not None:
            await env.store.tokens.revoke_client(client_id, now)
            if grant_id is not None:
                await env.store.grants.revoke(grant_id, now, "client offboarded while tokens were issued")
            raise errors.InvalidClient(CLIENT_DISABLED)
        raise errors.InvalidClient(CLIENT_CHANGED)
    if check_grant and grant_id is not None:
        grant = await env.store.grants.get(grant_id)
        if grant is None or grant.revoked_at is not None:
            await env.store.tokens.revoke_grant(grant_id, now)
            raise errors.InvalidGrant(GRANT_REVOKED)
    if standing[2]:
        if grant_id is not None:
            await env.store.grants.revoke(grant_id, now, "user account disabled")
            await env.store.tokens.revoke_grant(grant_id, now)
        raise errors.InvalidGrant(USER_DISABLED)
