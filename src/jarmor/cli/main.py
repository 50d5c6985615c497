"""Entry point: ``jarmor serve | demo | clients | users | keys ...``."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .. import __version__
from ..jose import loads_object
from ..protocol.errors import OAuthError
from .audit import add_audit_command
from .common import add_server_options, add_state_options, config_from, fail, open_state
from .config_cmd import add_config_commands
from .db import add_db_commands
from .flows import add_flows_commands
from .governance import add_clients_commands, add_governance_commands, default_actor
from .keys import add_keys_commands


def _load_json(path: str) -> dict[str, Any]:
    try:
        data = Path(path).read_bytes() if path != "-" else sys.stdin.buffer.read()
        return loads_object(data)
    except Exception as exc:
        fail(f"cannot read {path}: {exc}")
        raise


def cmd_serve(args: argparse.Namespace) -> int:
    from .serve import serve

    return serve(config_from(args), args.config)


def cmd_clients_add(args: argparse.Namespace) -> int:
    config = config_from(args)
    metadata = _load_json(args.metadata)

    async def run() -> dict[str, Any]:
        from ..protocol.registration import register
        from ..server.app import JarmorServer

        store = open_state(config)
        server = JarmorServer(config, store)
        await server.start()
        try:
            return await register(server.env, metadata, client_id=args.client_id, actor=default_actor())
        finally:
            await server.stop()

    try:
        body = asyncio.run(run())
    except OAuthError as err:
        fail(f"{err.error}: {err.description}")
    print(json.dumps(body, indent=2))
    return 0


def cmd_users_add(args: argparse.Namespace) -> int:
    config = config_from(args)
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = getpass.getpass(f"password for {args.username}: ")

    async def run() -> None:
        from ..server.accounts import add_user

        store = open_state(config)
        try:
            await add_user(store.users, args.username, password)
        finally:
            await store.close()

    try:
        asyncio.run(run())
    except (ValueError, Exception) as exc:
        fail(str(exc))
    print(f"user {args.username} added")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from .demo import demo

    return demo(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="jarmor", description="Verifiable OAuth 2.0 flows: JAR, JARM, PAR.")
    parser.add_argument("--version", action="version", version=f"jarmor {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("serve", help="run the authorization server")
    add_server_options(p)
    p.set_defaults(func=cmd_serve)

    clients = sub.add_parser("clients", help="manage registered clients").add_subparsers(
        dest="sub", required=True
    )
    p = clients.add_parser("add", help="register a client from a metadata JSON file")
    add_state_options(p)
    p.add_argument(
        "--metadata", required=True, metavar="FILE", help="client metadata (RFC 7591 JSON), - for stdin"
    )
    p.add_argument("--client-id", metavar="ID", help="use this client_id instead of a generated one")
    p.set_defaults(func=cmd_clients_add)
    add_clients_commands(clients)

    users = sub.add_parser("users", help="manage end-user accounts").add_subparsers(dest="sub", required=True)
    p = users.add_parser("add", help="add a user (password hashed with Argon2id)")
    add_state_options(p)
    p.add_argument("username")
    p.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    p.set_defaults(func=cmd_users_add)

    add_keys_commands(sub)
    add_db_commands(sub)
    add_governance_commands(sub)
    add_flows_commands(sub)
    add_config_commands(sub)
    add_audit_command(sub)

    p = sub.add_parser("demo", help="run complete flows in every tier and response mode, printing every hop")
    add_state_options(p)
    p.add_argument("--issuer", metavar="URL", help="a running jarmor server (default: an in-process one)")
    p.add_argument("--user", default="demo", help="demo user to sign in as (created if missing)")
    p.set_defaults(func=cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    raise SystemExit(main())
