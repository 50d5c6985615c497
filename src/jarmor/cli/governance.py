"""``jarmor clients list | show | offboard``, ``jarmor review [revoke]`` and ``jarmor admins add | list``.

They work on the database directly, beside a running server (same ``--config`` / ``--database``): an
offboarded client is refused by every server process as soon as the command's transaction commits, and its
tokens are inactive at once; ``--by`` names who acted in the audit log (default: ``cli:<login name>``).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from ..config import ServerConfig
from ..governance.inventory import (
    ClientSummary,
    InventoryQuery,
    client_summary,
    entitlement_review,
    inventory,
    select_page,
)
from ..governance.lifecycle import GovernanceError, offboard, revoke_grant
from ..governance.terminal import facts, safe, table
from ..server.account_lifecycle import (
    AccountError,
    add_admin,
    admin_locked,
    admin_state,
    remove_admin,
    unlock_admin,
)
from ..store.base import AlreadyExists, Store
from .common import (
    actor,
    add_actor_option,
    add_format_option,
    add_state_options,
    config_from,
    default_actor,
    group,
    print_json,
    read_secret,
    with_store,
)
from .common import when as _when

T = TypeVar("T")

__all__ = ["add_clients_commands", "add_governance_commands", "default_actor"]


def _run(config: ServerConfig, action: Callable[[Store], Awaitable[T]]) -> T:
    return with_store(
        config, action, expected=(GovernanceError, AccountError, LookupError, ValueError, AlreadyExists)
    )


def _age(seconds: int) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{max(0, seconds)}s"


def _table(rows: Sequence[Sequence[str]]) -> None:
    print(table(rows))


_json = print_json


def _status(c: ClientSummary) -> str:
    return "active" if c.disabled_at is None else f"disabled {_when(c.disabled_at)}"


def _keys(c: ClientSummary, now: int) -> str:
    if c.key_source == "jwks_uri":
        return "jwks_uri"
    return ",".join(f"{k.kid}({_age(now - k.first_seen_at)})" for k in c.current_keys) or "-"


def cmd_clients_list(args: argparse.Namespace) -> int:
    now = int(time.time())
    query = InventoryQuery(
        tier=args.tier, kind=args.kind, owner=args.owner, stale_days=args.stale_days, text=args.search,
        disabled=None if args.status == "all" else args.status == "disabled",
        offset=max(0, args.offset), limit=max(0, args.limit),
    )
    everything = _run(config_from(args), lambda store: inventory(store, now))
    clients, total = select_page(everything, query, now)
    if args.format == "json":
        _json([c.to_json() for c in clients])
        return 0
    shown = f"{len(clients)} of {total} matching client(s)"
    if total > query.offset + len(clients):
        shown += f"; next page: --offset {query.offset + len(clients)}"
    print(shown, file=sys.stderr)
    rows = [("CLIENT_ID", "NAME", "TIER", "KIND", "OWNER", "AUTH", "KEYS (AGE)", "LAST USED", "GRANTS", "TOKENS",
             "STATUS")]
    for c in clients:
        rows.append((c.client_id, c.name if c.name != c.client_id else "-", c.risk_tier, c.client_kind,
                     c.owner or "-", c.auth_method, _keys(c, now), _when(c.last_used_at), str(c.active_grants),
                     str(c.active_tokens), _status(c)))
    _table(rows)
    return 0


def cmd_clients_show(args: argparse.Namespace) -> int:
    now = int(time.time())

    async def show(store: Store) -> ClientSummary:
        record = await store.clients.get(args.client_id)
        if record is None:
            raise LookupError(f"no client {args.client_id!r}")
        return await client_summary(store, record, now)

    c = _run(config_from(args), show)
    if args.format == "json":
        _json(c.to_json(with_metadata=True))
        return 0
    rows_of_facts = [
        ("client_id", c.client_id),
        ("name", c.name),
        ("status", _status(c)),
        ("risk tier", c.risk_tier),
        ("kind", c.client_kind),
        ("owner", c.owner or "-"),
        ("contacts", ", ".join(c.contacts) or "-"),
        ("auth method", c.auth_method),
        ("grant types", ", ".join(c.grant_types) or "-"),
        ("scopes", " ".join(c.scopes) if c.scopes is not None else "(none registered)"),
        ("redirect uris", " ".join(c.redirect_uris) or "-"),
        ("resource server", "yes" if c.resource_server else "no"),
        ("created", _when(c.created_at)),
        ("updated", _when(c.updated_at)),
        ("last used", _when(c.last_used_at)),
        ("active grants", str(c.active_grants)),
        ("active tokens", str(c.active_tokens)),
    ]
    if c.disabled_at is not None:
        rows_of_facts += [("disabled by", c.disabled_by or "-"), ("disabled reason", c.disabled_reason or "-")]
    if c.jwks_uri:
        rows_of_facts.append(("jwks_uri", c.jwks_uri))
    print(facts(rows_of_facts))
    if c.keys:
        print()
        rows = [("KID", "THUMBPRINT", "FIRST SEEN", "AGE", "STATE")]
        for k in c.keys:
            state = "current" if k.current else f"removed {_when(k.removed_at)}"
            rows.append((k.kid, k.thumbprint, _when(k.first_seen_at), _age(k.age), state))
        _table(rows)
    return 0


def cmd_clients_offboard(args: argparse.Namespace) -> int:
    by = actor(args)
    now = int(time.time())
    result = _run(
        config_from(args), lambda store: offboard(store, args.client_id, reason=args.reason, by=by, now=now)
    )
    state = "disabled" if result.disabled else "was already disabled"
    print(safe(
        f"client {result.client_id} {state}; revoked {result.tokens_revoked} token(s) and "
        f"{result.grants_revoked} grant(s); recorded as {by}"
    ))
    return 0


def _grant_ids(ids: Sequence[str]) -> str:
    if not ids:
        return "-"
    return " ".join(ids) if len(ids) <= 2 else f"{ids[-1]} +{len(ids) - 1} more (--format json)"


def cmd_review(args: argparse.Namespace) -> int:
    """One row per client, user and set of scopes: grants, first and last grant time, live tokens."""
    now = int(time.time())
    groups = _run(config_from(args), lambda store: entitlement_review(store, now, client_id=args.client))
    if args.format == "json":
        _json([g.to_json() for g in groups])
        return 0
    if not groups:
        print("no active entitlements")
        return 0
    rows = [("CLIENT_ID", "KIND", "SUBJECT", "SCOPES", "GRANTS", "FIRST GRANTED", "LAST GRANTED", "GRANTED BY",
             "LIVE TOKENS", "GRANT IDS")]
    for g in groups:
        scopes = " ".join(g.scopes) if g.scopes is not None else "(any known scope)"
        rows.append((g.client_id, g.kind, g.subject or "-", scopes, str(g.grants) if g.grant_ids else "-",
                     _when(g.first_granted_at), _when(g.last_granted_at), ", ".join(g.granted_by) or "-",
                     str(g.active_tokens), _grant_ids(g.grant_ids)))
    _table(rows)
    return 0


def cmd_review_revoke(args: argparse.Namespace) -> int:
    """Revoke each grant named (a review group's ``grant_ids``), every token issued under it too."""
    by = actor(args)
    now = int(time.time())
    ids = list(dict.fromkeys(args.grant_id))

    async def revoke_all(store: Store) -> list[Any]:
        # every id must exist before any is revoked: a typo revokes nothing
        for grant_id in ids:
            if await store.grants.get(grant_id) is None:
                raise GovernanceError(f"no grant {grant_id!r}")
        return [await revoke_grant(store, g, reason=args.reason, by=by, now=now) for g in ids]

    for result in _run(config_from(args), revoke_all):
        state = "revoked" if result.revoked else "was already revoked"
        print(safe(
            f"grant {result.grant.grant_id} of client {result.grant.client_id} ({result.grant.subject or '-'}: "
            f"{result.grant.scope}) {state}; {result.tokens_revoked} token(s) revoked; recorded as {by}"
        ))
    return 0


def cmd_admins_add(args: argparse.Namespace) -> int:
    password = read_secret(f"password for administrator {args.name}: ", from_stdin=args.password_stdin)
    now, by = int(time.time()), actor(args)
    _run(config_from(args), lambda store: add_admin(store, args.name, password, by=by, now=now))
    print(f"administrator {args.name} added; recorded as {by}")
    return 0


def cmd_admins_enrol_link(args: argparse.Namespace) -> int:
    """A one-time link where the administrator enrols a passkey (for ``admin_require_passkey``)."""
    from ..server.account.enrolment import announce, issue_link
    from .common import issuer_of

    config = config_from(args)

    async def link(store: Store) -> str:
        admin = await store.admins.get(args.name)
        if admin is None or admin.disabled:
            raise GovernanceError(f"no enabled administrator {args.name!r}")
        return await issue_link(store.ephemeral, config.settings, issuer_of(args, config), "admin", args.name)

    print(announce(_run(config, link), config.settings))
    return 0


def cmd_admins_list(args: argparse.Namespace) -> int:
    async def listing(store: Store) -> list[tuple[str, int, str]]:
        return [
            (a.username, a.created_at, admin_state(a, locked=await admin_locked(store, a.username)))
            for a in await store.admins.list()
        ]

    admins = _run(config_from(args), listing)
    if args.format == "json":
        _json([{"name": name, "created_at": created, "state": state} for name, created, state in admins])
        return 0
    _table([("NAME", "CREATED", "STATE")] + [(name, _when(created), state) for name, created, state in admins])
    return 0


def cmd_admins_remove(args: argparse.Namespace) -> int:
    now, by = int(time.time()), actor(args)
    _run(config_from(args), lambda store: remove_admin(store, args.name, by=by, now=now))
    print(f"administrator {args.name} removed (the name is never reused); recorded as {by}")
    return 0


def cmd_admins_unlock(args: argparse.Namespace) -> int:
    now, by = int(time.time()), actor(args)
    was_locked = _run(config_from(args), lambda store: unlock_admin(store, args.name, by=by, now=now))
    print(f"administrator {args.name} {'unlocked' if was_locked else 'was not locked'}; recorded as {by}")
    return 0


_format = add_format_option


def add_clients_commands(clients: Any) -> None:
    """``jarmor clients list | show | offboard`` (``clients`` is the ``clients`` sub-command group)."""
    p = clients.add_parser("list", help="the client inventory: tier, kind, owner, keys, usage, status")
    add_state_options(p)
    _format(p)
    p.add_argument("--tier", help="only clients of this tier")
    p.add_argument("--kind", choices=("first-party", "third-party", "machine"), help="only clients of this kind")
    p.add_argument("--owner", help="only clients with this owner")
    p.add_argument("--status", choices=("all", "active", "disabled"), default="all")
    p.add_argument("--stale-days", type=int, metavar="N", help="only clients unused for N days or more")
    p.add_argument("--search", metavar="TEXT", help="client_id or name contains TEXT (case-insensitive)")
    p.add_argument("--limit", type=int, default=500, help="rows per page (500)")
    p.add_argument("--offset", type=int, default=0, help="skip this many matching clients")
    p.set_defaults(func=cmd_clients_list)

    p = clients.add_parser("show", help="one client: metadata, keys with their ages, grants and tokens")
    add_state_options(p)
    p.add_argument("client_id", metavar="ID")
    _format(p)
    p.set_defaults(func=cmd_clients_show)

    p = clients.add_parser(
        "offboard", help="disable a client and revoke its tokens and grants (recorded in the audit log)"
    )
    add_state_options(p)
    p.add_argument("client_id", metavar="ID")
    p.add_argument("--reason", required=True, metavar="TEXT", help="why (recorded)")
    add_actor_option(p)
    p.set_defaults(func=cmd_clients_offboard)


def add_governance_commands(sub: Any) -> None:
    """``jarmor review [revoke]`` and ``jarmor admins add | list | remove | unlock``."""
    review = sub.add_parser(
        "review", help="entitlement review: per client, user and scopes, how many grants, first and last granted"
    )
    add_state_options(review)
    review.add_argument("--client", metavar="ID", help="only this client")
    _format(review)
    review.set_defaults(func=cmd_review)
    actions = review.add_subparsers(dest="review_action")
    p = actions.add_parser(
        "revoke", help="revoke grants and every token issued under them (a review group: its grant ids)"
    )
    add_state_options(p, sub=True)
    p.add_argument("grant_id", metavar="GRANT_ID", nargs="+")
    p.add_argument("--reason", default="revoked in entitlement review", metavar="TEXT", help="why (recorded)")
    add_actor_option(p)
    p.set_defaults(func=cmd_review_revoke)

    admins = group(sub, "admins", "administrators of the /admin dashboard")
    p = admins.add_parser("add", help="add an administrator (password hashed with Argon2id)")
    add_state_options(p)
    p.add_argument("name")
    p.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    add_actor_option(p)
    p.set_defaults(func=cmd_admins_add)
    p = admins.add_parser("list", help="administrators and their state (active, locked, disabled, removed)")
    add_state_options(p)
    _format(p)
    p.set_defaults(func=cmd_admins_list)
    p = admins.add_parser("remove", help="remove an administrator (their sessions end; the name is never reused)")
    add_state_options(p)
    p.add_argument("name")
    add_actor_option(p)
    p.set_defaults(func=cmd_admins_remove)
    p = admins.add_parser("enrol-link", help="print a one-time link where the administrator enrols a passkey")
    add_state_options(p)
    p.add_argument("name")
    p.add_argument("--issuer", metavar="URL", help="the server's issuer, which the link is under")
    p.set_defaults(func=cmd_admins_enrol_link)
    p = admins.add_parser("unlock", help="clear the sign-in lockout after too many failed attempts")
    add_state_options(p)
    p.add_argument("name")
    add_actor_option(p)
    p.set_defaults(func=cmd_admins_unlock)
