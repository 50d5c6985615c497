"""Entry point: ``jarmor serve | demo | clients | users | keys ...``.

Every error ends the command with one line on standard error and a non-zero exit code (2: usage,
configuration or refused input; 1: an unexpected failure; 130: interrupted); a closed output pipe
(``jarmor keys list | head``) ends it quietly. ``JARMOR_DEBUG=1`` shows the traceback of an unexpected error.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .. import __version__
from ..config import ConfigError, from_environment
from ..jose import loads_object
from ..protocol.errors import OAuthError
from ..store import StoreError
from .audit import add_audit_command
from .common import (
    Parser,
    actor,
    add_actor_option,
    add_server_options,
    add_state_options,
    config_from,
    fail,
    group,
    issuer_of,
    missing_module,
    open_state,
)
from .config_cmd import add_config_commands
from .db import add_db_commands
from .flows import add_flows_commands
from .governance import add_clients_commands, add_governance_commands
from .keys import add_keys_commands
from .users import add_users_commands


def _load_json(path: str) -> dict[str, Any]:
    try:
        data = Path(path).read_bytes() if path != "-" else sys.stdin.buffer.read()
        return loads_object(data)
    except OSError as exc:
        fail(f"cannot read {path}: {exc.strerror or exc}")
    except Exception as exc:
        fail(f"cannot read {path}: {exc}")


def cmd_serve(args: argparse.Namespace) -> int:
    from .serve import serve

    return serve(config_from(args))


def cmd_clients_add(args: argparse.Namespace) -> int:
    config = config_from(args)
    metadata = _load_json(args.metadata)
    by = actor(args)
    issuer_of(args, config)  # registration_client_uri is under config.issuer; say so if it is a guess

    async def run() -> dict[str, Any]:
        from ..protocol.registration import register
        from ..server.app import JarmorServer

        store = open_state(config)
        server = JarmorServer(config, store)
        await server.start()
        try:
            return await register(server.env, metadata, client_id=args.client_id, actor=by)
        finally:
            await server.stop()

    try:
        body = asyncio.run(run())
    except OAuthError as err:
        fail(f"{err.error}: {err.description}")
    print(json.dumps(body, indent=2))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from .demo import demo

    return demo(args)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="jarmor", description="Verifiable OAuth 2.0 flows: JAR, JARM, PAR.")
    parser.add_argument("--version", action="version", version=f"jarmor {__version__}")

    def usage(_args: argparse.Namespace) -> int:
        print(parser.format_help(), end="", file=sys.stderr)
        return 2

    parser.set_defaults(func=usage)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("serve", help="run the authorization server")
    add_server_options(p)
    p.set_defaults(func=cmd_serve)

    clients = group(sub, "clients", "manage registered clients")
    p = clients.add_parser("add", help="register a client from a metadata JSON file")
    add_state_options(p)
    p.add_argument(
        "--metadata", required=True, metavar="FILE", help="client metadata (RFC 7591 JSON), - for stdin"
    )
    p.add_argument("--client-id", metavar="ID", help="use this client_id instead of a generated one")
    p.add_argument("--issuer", metavar="URL", help="the server's issuer, for registration_client_uri")
    add_actor_option(p)
    p.set_defaults(func=cmd_clients_add)
    add_clients_commands(clients)

    add_users_commands(group(sub, "users", "manage end-user accounts"))
    add_keys_commands(sub)
    add_db_commands(sub)
    add_governance_commands(sub)
    add_flows_commands(sub)
    add_config_commands(sub)
    add_audit_command(sub)

    p = sub.add_parser("demo", help="run complete flows in every tier and response mode, printing every hop")
    add_state_options(p)
    p.add_argument("--issuer", metavar="URL", help="a running jarmor server (default: an in-process one)")
    p.add_argument(
        "--user", default="demo", help="demo user to sign in as (created if missing; an existing user is refused)"
    )
    p.set_defaults(func=cmd_demo)
    return parser


def _quiet_stdout() -> None:
    """After a closed pipe, point standard output at /dev/null so the interpreter's final flush is silent."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def _one_line(message: str, code: int) -> int:
    from .common import one_line

    with contextlib.suppress(OSError, ValueError):
        print(f"jarmor: {one_line(message)}", file=sys.stderr)
    return code


def run(args: argparse.Namespace) -> int:
    """Run the parsed command, turning every error into one line and an exit code."""
    try:
        code = int(args.func(args) or 0)
        sys.stdout.flush()
        return code
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else _one_line(str(exc.code), 2)
    except BrokenPipeError:
        _quiet_stdout()
        return 141  # 128 + SIGPIPE, what a shell reports for a command killed by a closed pipe
    except KeyboardInterrupt:
        return _one_line("interrupted", 130)
    except EOFError:
        return _one_line("standard input ended before the command read what it needs", 2)
    except ModuleNotFoundError as exc:
        return _one_line(missing_module(exc), 2)
    except OSError as exc:
        where = f": {exc.filename}" if exc.filename else ""
        return _one_line(f"{exc.strerror or exc}{where}", 2)
    except (ConfigError, StoreError, OAuthError) as exc:
        return _one_line(str(exc), 2)
    except Exception as exc:
        if from_environment("debug"):
            raise
        return _one_line(f"unexpected error: {type(exc).__name__}: {exc} (JARMOR_DEBUG=1 shows the traceback)", 1)


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # --help, --version, or a usage error (already printed, in one line)
        return exc.code if isinstance(exc.code, int) else 2
    return run(args)


if __name__ == "__main__":
    raise SystemExit(main())
