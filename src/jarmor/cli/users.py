"""``jarmor users add | list | show | disable | enable | reset-password | unlock | remove``: end-user accounts.

They work on the database directly, beside running servers (same ``--config`` / ``--database``). Every change
is recorded in the audit log with ``--by`` (default ``cli:<login name>``). Disabling or removing a user
revokes every grant they gave and every token issued under them; a removed username is never reused (it is
the ``sub`` of the tokens issued to that user).
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from ..governance.terminal import facts, table
from ..protocol.context import Settings
from ..server.account.enrolment import announce, issue_link
from ..server.account_lifecycle import (
    AccessRevoked,
    AccountError,
    add_passkey_only_user,
    add_user,
    is_removed,
    remove_user,
    reset_user_password,
    set_user_disabled,
    unlock_user,
    user_locked,
    user_state,
)
from ..store.base import Store, UserRecord
from .common import (
    actor,
    add_actor_option,
    add_format_option,
    add_state_options,
    config_from,
    issuer_of,
    print_json,
    read_secret,
    when,
    with_store,
)


def _run(args: argparse.Namespace, action: Any) -> Any:
    return with_store(config_from(args), action, expected=(AccountError,))


def _revoked(r: AccessRevoked) -> str:
    return f"revoked {r.grants} grant(s) and {r.tokens} token(s)"


def _link(args: argparse.Namespace, store: Store) -> Any:
    config = config_from(args)
    return issue_link(store.ephemeral, config.settings, issuer_of(args, config), "user", args.username)


def cmd_users_add(args: argparse.Namespace) -> int:
    by = actor(args)
    if args.passkey_only:
        if args.password_stdin:
            raise SystemExit("--passkey-only takes no password")

        async def add(store: Store) -> str:
            await add_passkey_only_user(store, args.username, by=by)
            return str(await _link(args, store))

        link = _run(args, add)
        print(f"user {args.username} added (passkey only); recorded as {by}")
        print(announce(link, config_from(args).settings))
        return 0
    password = read_secret(f"password for {args.username}: ", from_stdin=args.password_stdin)
    _run(args, lambda store: add_user(store, args.username, password, by=by))
    print(f"user {args.username} added; recorded as {by}")
    return 0


def cmd_users_enrol_link(args: argparse.Namespace) -> int:
    """A new one-time passkey enrolment link for an existing user (a lost passkey, a new device)."""

    async def link(store: Store) -> str:
        user = await store.users.get(args.username)
        if user is None or is_removed(user):
            raise AccountError(f"no user {args.username!r}")
        return str(await _link(args, store))

    print(announce(_run(args, link), config_from(args).settings))
    return 0


def _listing(settings: Settings) -> Any:
    async def listing(store: Store) -> list[tuple[UserRecord, bool]]:
        return [(u, await user_locked(store, u.username, settings)) for u in await store.users.list()]

    return listing


def _as_json(u: UserRecord, locked: bool) -> dict[str, Any]:
    return {"username": u.username, "created_at": u.created_at, "state": user_state(u, locked=locked)}


def cmd_users_list(args: argparse.Namespace) -> int:
    users = _run(args, _listing(config_from(args).settings))
    if args.format == "json":
        print_json([_as_json(u, locked) for u, locked in users])
        return 0
    if not users:
        print("no users")
        return 0
    print(table([("USERNAME", "CREATED", "STATE")] + [
        (u.username, when(u.created_at), user_state(u, locked=locked)) for u, locked in users
    ]))
    return 0


def cmd_users_show(args: argparse.Namespace) -> int:
    settings = config_from(args).settings

    async def show(store: Store) -> tuple[UserRecord, bool, list[tuple[str, str, str, int | None]]]:
        user = await store.users.get(args.username)
        if user is None:
            raise AccountError(f"no user {args.username!r}")
        grants = []
        for client in await store.clients.list():
            for g in await store.grants.list_for_client(client.client_id):
                if g.subject == args.username:
                    grants.append((g.grant_id, g.client_id, g.scope, g.revoked_at))
        return user, await user_locked(store, args.username, settings), grants

    user, locked, grants = _run(args, show)
    live = [g for g in grants if g[3] is None]
    if args.format == "json":
        print_json({**_as_json(user, locked), "grants": [
            {"grant_id": g, "client_id": c, "scope": s, "revoked_at": r} for g, c, s, r in grants
        ]})
        return 0
    print(facts([
        ("username", user.username),
        ("state", user_state(user, locked=locked)),
        ("created", when(user.created_at)),
        ("active grants", str(len(live))),
    ]))
    if live:
        print()
        print(table([("GRANT_ID", "CLIENT_ID", "SCOPES")] + [(g, c, s) for g, c, s, _ in live]))
    return 0


def cmd_users_disable(args: argparse.Namespace) -> int:
    by, now = actor(args), int(time.time())
    revoked = _run(args, lambda store: set_user_disabled(store, args.username, True, by=by, now=now))
    print(f"user {args.username} disabled; {_revoked(revoked)}; recorded as {by}")
    return 0


def cmd_users_enable(args: argparse.Namespace) -> int:
    by, now = actor(args), int(time.time())
    _run(args, lambda store: set_user_disabled(store, args.username, False, by=by, now=now))
    print(f"user {args.username} enabled; recorded as {by}")
    return 0


def cmd_users_reset_password(args: argparse.Namespace) -> int:
    password = read_secret(f"new password for {args.username}: ", from_stdin=args.password_stdin)
    by, now = actor(args), int(time.time())
    _run(args, lambda store: reset_user_password(store, args.username, password, by=by, now=now))
    print(f"password of user {args.username} reset; recorded as {by}")
    return 0


def cmd_users_unlock(args: argparse.Namespace) -> int:
    by, now = actor(args), int(time.time())
    settings = config_from(args).settings
    was_locked = _run(args, lambda store: unlock_user(store, args.username, by=by, now=now, settings=settings))
    state = "unlocked" if was_locked else "was not locked"
    print(f"user {args.username} {state}; recorded as {by}")
    return 0


def cmd_users_remove(args: argparse.Namespace) -> int:
    by, now = actor(args), int(time.time())
    revoked = _run(args, lambda store: remove_user(store, args.username, by=by, now=now))
    print(f"user {args.username} removed (the name is never reused); {_revoked(revoked)}; recorded as {by}")
    return 0


def add_users_commands(users: Any) -> None:
    """``jarmor users ...`` (``users`` is the group's sub-command set)."""

    def command(name: str, help: str, func: Any, *, password: bool = False, change: bool = True) -> Any:
        p = users.add_parser(name, help=help)
        add_state_options(p)
        p.add_argument("username", metavar="NAME")
        if password:
            p.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
        if change:
            add_actor_option(p)
        p.set_defaults(func=func)
        return p

    p = command("add", "add a user (password hashed with Argon2id, or --passkey-only)", cmd_users_add, password=True)
    p.add_argument("--passkey-only", action="store_true",
                   help="no password: print a one-time link where the user enrols a passkey")
    p.add_argument("--issuer", metavar="URL", help="the server's issuer, which the link is under")
    p = command("enrol-link", "print a new one-time passkey enrolment link for a user", cmd_users_enrol_link,
                change=False)
    p.add_argument("--issuer", metavar="URL", help="the server's issuer, which the link is under")
    p = users.add_parser("list", help="every user: created, state (active, disabled, locked, removed)")
    add_state_options(p)
    add_format_option(p)
    p.set_defaults(func=cmd_users_list)
    p = command("show", "one user: state and the grants they gave", cmd_users_show, change=False)
    add_format_option(p)
    command("disable", "block sign-in and revoke the user's grants and tokens", cmd_users_disable)
    command("enable", "allow sign-in again (revoked grants stay revoked)", cmd_users_enable)
    command("reset-password", "set a new password", cmd_users_reset_password, password=True)
    command("unlock", "clear the user's failed sign-in lockout", cmd_users_unlock)
    command("remove", "remove the user: grants and tokens revoked, the name never reused", cmd_users_remove)
