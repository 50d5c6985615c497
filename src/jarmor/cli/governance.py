"""``jarmor clients list | show | offboard``, ``jarmor review [revoke]`` and ``jarmor admins add | list``.

They work on the database directly, beside a running server (same ``--config`` / ``--database``): an
offboarded client is refused by every server process as soon as the command's transaction commits, and its
tokens are inactive at once; ``--by`` names who acted in the audit log (default: ``cli:<login name>``).
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

from ..config import ServerConfig
from ..governance.inventory import ClientSummary, client_summary, entitlement_review, inventory
from ..governance.lifecycle import GovernanceError, offboard, revoke_grant
from ..store.base import AdminEvent, AlreadyExists, Store
from .common import add_state_options, config_from, with_store

T = TypeVar("T")


def _run(config: ServerConfig, action: Callable[[Store], Awaitable[T]]) -> T:
    return with_store(config, action, expected=(GovernanceError, LookupError, ValueError, AlreadyExists))


def default_actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except Exception:  # no login name (some containers)
        return "cli"


def _when(ts: int | None) -> str:
    return "-" if ts is None else datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def _age(seconds: int) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{max(0, seconds)}s"


def _table(rows: Sequence[Sequence[str]]) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())


def _json(value: Any) -> None:
    print(json.dumps(value, indent=2, sort_keys=True))


def _status(c: ClientSummary) -> str:
    return "active" if c.disabled_at is None else f"disabled {_when(c.disabled_at)}"


def _keys(c: ClientSummary, now: int) -> str:
    if c.key_source == "jwks_uri":
        return "jwks_uri"
    return ",".join(f"{k.kid}({_age(now - k.first_seen_at)})" for k in c.current_keys) or "-"


def cmd_clients_list(args: argparse.Namespace) -> int:
    now = int(time.time())
    clients = _run(config_from(args), lambda store: inventory(store, now))
    if args.format == "json":
        _json([c.to_json() for c in clients])
        return 0
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
    facts = [
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
        facts += [("disabled by", c.disabled_by or "-"), ("disabled reason", c.disabled_reason or "-")]
    if c.jwks_uri:
        facts.append(("jwks_uri", c.jwks_uri))
    width = max(len(k) for k, _ in facts)
    for key, value in facts:
        print(f"{key.ljust(width)}  {value}")
    if c.keys:
        print()
        rows = [("KID", "THUMBPRINT", "FIRST SEEN", "AGE", "STATE")]
        for k in c.keys:
            state = "current" if k.current else f"removed {_when(k.removed_at)}"
            rows.append((k.kid, k.thumbprint, _when(k.first_seen_at), _age(k.age), state))
        _table(rows)
    return 0


def cmd_clients_offboard(args: argparse.Namespace) -> int:
    by = args.by or default_actor()
    now = int(time.time())
    result = _run(
        config_from(args), lambda store: offboard(store, args.client_id, reason=args.reason, by=by, now=now)
    )
    state = "disabled" if result.disabled else "was already disabled"
    print(
        f"client {result.client_id} {state}; revoked {result.tokens_revoked} token(s) and "
        f"{result.grants_revoked} grant(s); recorded as {by}"
    )
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
    by = args.by or default_actor()
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
        print(
            f"grant {result.grant.grant_id} of client {result.grant.client_id} ({result.grant.subject or '-'}: "
            f"{result.grant.scope}) {state}; {result.tokens_revoked} token(s) revoked; recorded as {by}"
        )
    return 0


def cmd_admins_add(args: argparse.Namespace) -> int:
    from ..server.admin.accounts import add_admin

    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = getpass.getpass(f"password for administrator {args.name}: ")
    now = int(time.time())
    by = default_actor()

    async def add(store: Store) -> None:
        await add_admin(store.admins, args.name, password, now=now)
        await store.audit.append(AdminEvent(at=now, actor=by, action="admin.add", target=f"admin:{args.name}"))

    _run(config_from(args), add)
    print(f"administrator {args.name} added")
    return 0


def cmd_admins_list(args: argparse.Namespace) -> int:
    admins = _run(config_from(args), lambda store: store.admins.list())
    rows = [("NAME", "CREATED", "STATE")]
    rows += [(a.username, _when(a.created_at), "disabled" if a.disabled else "active") for a in admins]
    _table(rows)
    return 0


def _format(p: argparse.ArgumentParser) -> None:
    p.add_argument("--format", choices=("table", "json"), default="table", help="output format (default table)")


def add_clients_commands(clients: Any) -> None:
    """``jarmor clients list | show | offboard`` (``clients`` is the ``clients`` sub-command group)."""
    p = clients.add_parser("list", help="the client inventory: tier, kind, owner, keys, usage, status")
    add_state_options(p)
    _format(p)
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
    p.add_argument("--by", metavar="NAME", help="who is acting (default cli:<login name>)")
    p.set_defaults(func=cmd_clients_offboard)


def add_governance_commands(sub: Any) -> None:
    """``jarmor review [revoke]`` and ``jarmor admins add | list``."""
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
    add_state_options(p)
    p.add_argument("grant_id", metavar="GRANT_ID", nargs="+")
    p.add_argument("--reason", default="revoked in entitlement review", metavar="TEXT", help="why (recorded)")
    p.add_argument("--by", metavar="NAME", help="who is acting (default cli:<login name>)")
    p.set_defaults(func=cmd_review_revoke)

    admins = sub.add_parser("admins", help="administrators of the /admin dashboard").add_subparsers(
        dest="sub", required=True
    )
    p = admins.add_parser("add", help="add an administrator (password hashed with Argon2id)")
    add_state_options(p)
    p.add_argument("name")
    p.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    p.set_defaults(func=cmd_admins_add)
    p = admins.add_parser("list", help="list administrators")
    add_state_options(p)
    p.set_defaults(func=cmd_admins_list)
