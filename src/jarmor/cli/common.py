"""Options shared by every command that touches state: ``--config`` and ``--database`` (same as ``serve``)."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import os
import stat
import sys
import tomllib
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn, TypeVar

from ..config import ConfigError, ServerConfig, load_config
from ..governance.terminal import safe
from ..store import Store, StoreError, open_store

T = TypeVar("T")


def add_state_options(p: argparse.ArgumentParser, *, sub: bool = False) -> None:
    """``--config`` / ``--database``; on the sub-command of a command (``review revoke``) they must not reset
    what the parent parsed (``jarmor review --database X revoke ID``)."""
    default = argparse.SUPPRESS if sub else None
    p.add_argument("--config", metavar="FILE", default=default, help="TOML configuration file")
    p.add_argument(
        "--database", metavar="URL", default=default, help="database URL (default: sqlite:///jarmor.db)"
    )


def add_server_options(p: argparse.ArgumentParser) -> None:
    add_state_options(p)
    p.add_argument("--issuer", metavar="URL", help="issuer identifier (default http://HOST:PORT)")
    p.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, help="port to listen on (default 8000)")
    p.add_argument("--registration-token", metavar="TOKEN", help="initial access token for registration")
    p.add_argument(
        "--auto-approve",
        metavar="SUBJECT",
        help="skip login and consent, approving as SUBJECT (loopback issuer and --host only)",
    )
    p.add_argument("--workers", type=int, help="number of worker processes")
    p.add_argument("--redis", metavar="URL", help="Redis URL for short-lived records (optional)")
    p.add_argument("--metrics-port", type=int, metavar="PORT",
                   help="serve /metrics on this port instead of the main one")
    p.add_argument("--trusted-proxies", metavar="NETS",
                   help="comma-separated proxy addresses/networks whose forwarded-for header is believed")
    p.add_argument("--forwarded-header", choices=("x-forwarded-for", "forwarded"),
                   help="the header trusted proxies write: x-forwarded-for (default) or forwarded (RFC 7239); "
                        "the other one is ignored")
    p.add_argument("--log-format", choices=("text", "json"), help="log lines as text (default) or JSON")
    p.add_argument("--log-level", choices=("debug", "info", "warning", "error"), help="default warning")


def config_from(args: argparse.Namespace) -> ServerConfig:
    overrides: dict[str, Any] = {
        name: getattr(args, name, None)
        for name in (
            "issuer",
            "host",
            "port",
            "database",
            "registration_token",
            "auto_approve",
            "workers",
            "redis",
            "metrics_port",
            "trusted_proxies",
            "forwarded_header",
            "log_format",
            "log_level",
        )
    }
    try:
        return load_config(args.config, overrides)
    except ConfigError as exc:
        fail(f"configuration error: {exc}")


def fail(message: str, code: int = 2) -> NoReturn:
    """End the command with one line on standard error (stored values in it are made inert)."""
    print(f"jarmor: {one_line(message)}", file=sys.stderr)
    raise SystemExit(code)


def one_line(message: str) -> str:
    """An error message as one inert line: line breaks and tabs (a driver's multi-line text) become spaces,
    any other control character a visible escape."""
    return safe(" ".join(message.replace("\u2028", " ").replace("\u2029", " ").split()))


class Parser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line (the usage itself is one ``--help`` away)."""

    def error(self, message: str) -> NoReturn:
        print(f"{self.prog}: error: {safe(message)} (see {self.prog} --help)", file=sys.stderr)
        raise SystemExit(2)


def group(sub: Any, name: str, help: str) -> Any:
    """A command group (``jarmor keys``); run without a sub-command it prints its help and exits 2."""
    parser = sub.add_parser(name, help=help)

    def usage(_args: argparse.Namespace) -> int:
        print(parser.format_help(), end="", file=sys.stderr)
        return 2

    parser.set_defaults(func=usage)
    return parser.add_subparsers(dest="sub", metavar="COMMAND")


def add_actor_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--by", metavar="NAME", help="who is acting, for the audit log (default cli:<login name>)")


def default_actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except Exception:  # no login name (some containers)
        return "cli"


def actor(args: argparse.Namespace) -> str:
    """Who acts, as recorded in the audit log: ``--by`` or ``cli:<login name>``."""
    by = (getattr(args, "by", None) or default_actor()).strip()
    if not by or len(by) > 200 or not by.isprintable():
        fail("--by must be 1-200 printable characters")
    return by


def add_format_option(p: argparse.ArgumentParser, *extra: str) -> None:
    p.add_argument(
        "--format", choices=("table", "json", *extra), default="table", help="output format (default table)"
    )


def issuer_of(args: argparse.Namespace, config: ServerConfig) -> str:
    """The issuer URLs are printed under: the server's own configuration (``--issuer``, ``JARMOR_ISSUER`` /
    ``_HOST`` / ``_PORT``, the ``[server]`` table of ``--config``). When none of them names it, the printed URLs
    assume the default, and the command says so on standard error."""
    named = any(getattr(args, name, None) for name in ("issuer", "host", "port")) or any(
        os.environ.get(f"JARMOR_{name.upper()}") for name in ("issuer", "host", "port")
    )
    if not named and args.config:
        try:
            server = tomllib.loads(Path(args.config).read_text()).get("server", {})
        except (OSError, tomllib.TOMLDecodeError):
            server = {}  # load_config has read it already; nothing more to learn here
        named = any(name in server for name in ("issuer", "host", "port"))
    if not named:
        print(
            f"jarmor: note: no issuer configured (--issuer, JARMOR_ISSUER or [server] issuer in --config); "
            f"URLs below assume {config.issuer}",
            file=sys.stderr,
        )
    return config.issuer


def read_secret(prompt: str, *, from_stdin: bool) -> str:
    """A password from the first line of standard input, or typed at the terminal without echo."""
    if not from_stdin and not sys.stdin.isatty():
        fail("standard input is not a terminal: pass the password with --password-stdin")
    line = sys.stdin.readline() if from_stdin else getpass.getpass(prompt)
    if from_stdin and not line:
        fail("no password on standard input (--password-stdin reads its first line)")
    return line.rstrip("\n")


def sqlite_path(url: str) -> Path | None:
    if not url.startswith("sqlite:///"):
        return None
    path = url[len("sqlite:///") :].split("?", 1)[0]
    return Path(path) if path and path != ":memory:" else None


def create_sqlite_file(url: str) -> list[str]:
    """Create a missing SQLite database file readable by its owner only (its directories too, if needed);
    returns what was created, for the command to say so."""
    path = sqlite_path(url)
    created: list[str] = []
    if path is not None and not path.exists():
        missing = [p for p in (path.parent, *path.parent.parents) if not p.exists()]
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_CREAT | os.O_WRONLY, stat.S_IRUSR | stat.S_IWUSR)
        except OSError as exc:
            fail(f"cannot create the database {path}: {exc.strerror or exc}")
        os.close(fd)
        created += [f"directory {p}" for p in reversed(missing)]
        created.append(f"database {path}")
    return created


def ensure_database(url: str, *, create: bool) -> None:
    """A SQLite database file must exist unless the command creates state on purpose (``serve``, ``db
    upgrade``), which says what it created: a mistyped path must not become a new, empty database."""
    path = sqlite_path(url)
    if path is None or path.exists():
        return
    if not create:
        where = "directory" if not path.parent.exists() else "database"
        fail(
            f"no {where} {path.parent if where == 'directory' else path}: create the database with "
            f"'jarmor db upgrade' or 'jarmor serve', or pass the server's --database / --config"
        )
    for what in create_sqlite_file(url):
        print(f"jarmor: created {what}", file=sys.stderr)


_EXTRAS = {"psycopg": "postgres", "psycopg_pool": "postgres", "redis": "redis"}


def missing_module(exc: ModuleNotFoundError) -> str:
    """What to install when an optional driver is missing (``pip install 'jarmor[postgres]'``)."""
    top = (exc.name or "").split(".")[0]
    extra = _EXTRAS.get(top)
    if extra:
        return f"the Python package {top!r} is not installed: pip install 'jarmor[{extra}]'"
    return f"the Python package {top or '?'!r} is not installed"


def open_state(config: ServerConfig, *, create: bool = False) -> Store:
    """Open the configured database (and Redis, if configured).

    A SQLite file that does not exist is refused unless ``create`` (then it is created owner-only, with its
    directories, and the command says so). A database that cannot be opened (unreachable, or a PostgreSQL
    schema not at the current revision) ends the command with the reason.
    """
    ensure_database(config.database, create=create)
    try:
        return open_store(config.database, config.redis)
    except StoreError as exc:
        fail(str(exc))
    except ModuleNotFoundError as exc:
        fail(missing_module(exc))


def with_store(
    config: ServerConfig,
    action: Callable[[Store], Awaitable[T]],
    *,
    expected: tuple[type[BaseException], ...] = (),
) -> T:
    """Run ``action`` on the configured database and close it; an ``expected`` error ends the command cleanly."""

    async def run() -> T:
        store = open_state(config)
        try:
            return await action(store)
        finally:
            await store.close()

    try:
        return asyncio.run(run())
    except expected as exc:
        fail(str(exc.args[0]) if exc.args else str(exc))


def when(ts: int | None) -> str:
    return "-" if ts is None else datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def print_json(value: Any) -> None:
    """JSON output (control characters in strings are escaped by the encoder, so it is inert too)."""
    print(json.dumps(value, indent=2, sort_keys=True))
