"""End-user and administrator accounts over their lifetime: disable, enable, reset a password, unlock, remove.

Every change is appended to the audit log with who made it and when (``actor`` is ``--by`` or
``cli:<login name>`` on the command line). Shared by the command line (``jarmor users ...``,
``jarmor admins ...``); the operations work on the store alone, beside running servers (a disabled or
removed account is refused at its next sign-in, and an administrator's open sessions end at their next
request, which re-reads the account).

Removing an account keeps a tombstone instead of deleting the row: the username is the ``sub`` of every
token and ID token issued to the user, and OIDC Core §2 requires that a subject is "never reassigned"; an
administrator's name appears in the audit log as an actor, which must keep naming one person. A removed
account never signs in again (its password hash is gone) and its name cannot be added again.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from ..protocol.context import Settings
from ..store.base import AdminEvent, AdminRecord, AlreadyExists, Store, UserRecord
from . import signin
from .accounts import MIN_PASSWORD, hash_password
from .accounts import add_user as create_user
from .admin.accounts import add_admin as create_admin

REMOVED = "!removed"  # the password hash of a removed account: no Argon2 hash looks like this, none verifies
PASSKEY_ONLY = "!passkey-only"  # an account that signs in with passkeys only (``users add --passkey-only``)


class AccountError(Exception):
    """An account operation cannot be carried out (unknown or removed account, bad password)."""


def is_removed(record: UserRecord | AdminRecord) -> bool:
    return record.password_hash == REMOVED


def user_state(record: UserRecord, *, locked: bool = False) -> str:
    if is_removed(record):
        return "removed"
    if record.disabled:
        return "disabled"
    return "locked" if locked else "active"


@dataclass(frozen=True, slots=True)
class AccessRevoked:
    grants: int
    tokens: int


# -- end users -----------------------------------------------------------------------------------------------


async def _user(store: Store, username: str, *, removed_ok: bool = False) -> UserRecord:
    record = await store.users.get(username)
    if record is None:
        raise AccountError(f"no user {username!r}")
    if is_removed(record) and not removed_ok:
        raise AccountError(f"user {username!r} was removed")
    return record


async def revoke_user_access(store: Store, username: str, *, now: int) -> AccessRevoked:
    """Revoke every grant the user gave any client and every token issued under them (refresh tokens
    included), so a disabled or removed account keeps no access anywhere (RFC 7009 §2.1: revoking a grant
    ends its tokens)."""
    grants = tokens = 0
    for client in await store.clients.list():
        for grant in await store.grants.list_for_client(client.client_id):
            if grant.subject != username:
                continue
            tokens += await store.tokens.revoke_grant(grant.grant_id, now)
            if grant.revoked_at is None and await store.grants.revoke(grant.grant_id, now, "user account ended"):
                grants += 1
    return AccessRevoked(grants, tokens)


async def _log(store: Store, *, by: str, action: str, target: str, now: int, **details: object) -> None:
    await store.audit.append(AdminEvent(at=now, actor=by, action=action, target=target, details=dict(details)))


async def add_user(store: Store, username: str, password: str, *, by: str, now: int | None = None) -> UserRecord:
    now = int(time.time()) if now is None else now
    existing = await store.users.get(username)
    if existing is not None:
        if is_removed(existing):
            raise AccountError(f"user {username} was removed; a username is never given to someone else")
        raise AccountError(f"user {username} already exists")
    try:
        record = await create_user(store.users, username, password)
    except ValueError as exc:
        raise AccountError(str(exc)) from exc
    except AlreadyExists as exc:  # added by someone else meanwhile
        raise AccountError(f"user {username} already exists") from exc
    await _log(store, by=by, action="user.add", target=f"user:{username}", now=now)
    return record


async def add_passkey_only_user(store: Store, username: str, *, by: str, now: int | None = None) -> UserRecord:
    """Add an account without a password: it signs in with the passkey enrolled through a one-time link."""
    now = int(time.time()) if now is None else now
    if not username or len(username) > 128 or not username.isprintable():
        raise AccountError("username must be 1-128 printable characters")
    existing = await store.users.get(username)
    if existing is not None:
        if is_removed(existing):
            raise AccountError(f"user {username} was removed; a username is never given to someone else")
        raise AccountError(f"user {username} already exists")
    record = UserRecord(username=username, password_hash=PASSKEY_ONLY, created_at=now)
    try:
        await store.users.create(record)
    except AlreadyExists as exc:
        raise AccountError(f"user {username} already exists") from exc
    await _log(store, by=by, action="user.add", target=f"user:{username}", now=now, passkey_only=True)
    return record


async def set_user_disabled(store: Store, username: str, disabled: bool, *, by: str, now: int) -> AccessRevoked:
    """Disable (no sign-in; every grant and token revoked) or enable (sign-in again; nothing restored)."""
    record = await _user(store, username)
    revoked = AccessRevoked(0, 0)
    record.disabled = disabled
    await store.users.update(record)
    if disabled:
        revoked = await revoke_user_access(store, username, now=now)
    await _log(
        store, by=by, action="user.disable" if disabled else "user.enable", target=f"user:{username}", now=now,
        grants_revoked=revoked.grants, tokens_revoked=revoked.tokens,
    )
    return revoked


async def reset_user_password(store: Store, username: str, password: str, *, by: str, now: int) -> None:
    record = await _user(store, username)
    if len(password) < MIN_PASSWORD:
        raise AccountError(f"password must be at least {MIN_PASSWORD} characters")
    record.password_hash = hash_password(password)
    await store.users.update(record)
    await _log(store, by=by, action="user.reset_password", target=f"user:{username}", now=now)


async def remove_user(store: Store, username: str, *, by: str, now: int) -> AccessRevoked:
    """Revoke the user's grants and tokens, and keep a tombstone: the name is never reassigned."""
    record = await _user(store, username)
    record.disabled, record.password_hash = True, REMOVED
    await store.users.update(record)
    revoked = await revoke_user_access(store, username, now=now)
    await _log(
        store, by=by, action="user.remove", target=f"user:{username}", now=now,
        grants_revoked=revoked.grants, tokens_revoked=revoked.tokens,
    )
    return revoked


async def _locked(store: Store, limit: signin.AttemptLimit, name: str) -> bool:
    """Whether the next sign-in attempt for ``name`` would be refused by ``limit`` (``signin.reserve``
    refuses the attempt that takes the count past ``max_attempts``)."""
    if limit.max_attempts <= 0:
        return False
    raw = await store.ephemeral.get(limit.namespace, limit.key(name))
    try:
        return raw is not None and int(raw) >= limit.max_attempts
    except ValueError:
        return False


async def user_locked(store: Store, username: str, settings: Settings | None = None) -> bool:
    """Whether ``username`` is locked out of sign-in now (``login_max_failures`` within the window)."""
    return await _locked(store, signin.UserLimits.from_settings(settings or Settings()).account, username)


async def clear_user_lockout(store: Store, username: str) -> bool:
    """Clear the failed sign-in count of ``username``; ``True`` if there was one."""
    return await signin.unlock_user(store.ephemeral, username)


async def unlock_user(
    store: Store, username: str, *, by: str, now: int, settings: Settings | None = None
) -> bool:
    """Clear the user's sign-in lockout; ``True`` if the account was locked (a count below the limit is
    cleared too)."""
    await _user(store, username)
    was_locked = await user_locked(store, username, settings)
    await clear_user_lockout(store, username)
    await _log(store, by=by, action="user.unlock", target=f"user:{username}", now=now, was_locked=was_locked)
    return was_locked


# -- administrators ------------------------------------------------------------------------------------------


async def _admin(store: Store, name: str) -> AdminRecord:
    record = await store.admins.get(name)
    if record is None:
        raise AccountError(f"no administrator {name!r}")
    if is_removed(record):
        raise AccountError(f"administrator {name!r} was removed")
    return record


def admin_state(record: AdminRecord, *, locked: bool) -> str:
    if is_removed(record):
        return "removed"
    if record.disabled:
        return "disabled"
    return "locked" if locked else "active"


async def admin_locked(store: Store, name: str) -> bool:
    """Whether sign-in to the dashboard for ``name`` is locked by too many attempts."""
    return await _locked(store, signin.ADMIN_ACCOUNT, name)


async def add_admin(store: Store, name: str, password: str, *, by: str, now: int) -> AdminRecord:
    existing = await store.admins.get(name)
    if existing is not None:
        if is_removed(existing):
            raise AccountError(f"administrator {name} was removed; the audit log keeps naming them, so the "
                               "name is never given to someone else")
        raise AccountError(f"administrator {name} already exists")
    try:
        record = await create_admin(store.admins, name, password, now=now)
    except ValueError as exc:
        raise AccountError(str(exc)) from exc
    except AlreadyExists as exc:
        raise AccountError(f"administrator {name} already exists") from exc
    await _log(store, by=by, action="admin.add", target=f"admin:{name}", now=now)
    return record


async def remove_admin(store: Store, name: str, *, by: str, now: int) -> None:
    """Remove an administrator (a tombstone, so the audit log's actor names stay unambiguous); their open
    dashboard sessions end at their next request."""
    record = await _admin(store, name)
    record.disabled, record.password_hash = True, REMOVED
    await store.admins.update(record)
    await signin.unlock_admin(store.ephemeral, name)
    await _log(store, by=by, action="admin.remove", target=f"admin:{name}", now=now)


async def unlock_admin(store: Store, name: str, *, by: str, now: int) -> bool:
    """Clear the failed sign-in count that locks ``name`` out of the dashboard; ``True`` if it was locked."""
    await _admin(store, name)
    was_locked = await admin_locked(store, name)
    await signin.unlock_admin(store.ephemeral, name)
    await _log(store, by=by, action="admin.unlock", target=f"admin:{name}", now=now, was_locked=was_locked)
    return was_locked
