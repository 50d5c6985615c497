"""Options shared by every command that touches state: ``--config`` and ``--database`` (same as ``serve``)."""

from __future__ import annotations

import argparse
import asyncio
import os
import stat
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, NoReturn, TypeVar

from ..config import ConfigError, ServerConfig, load_config
from ..store import Store, StoreError, open_store

T = TypeVar("T")


def add_state_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", metavar="FILE", help="TOML configuration file")
    p.add_argument("--database", metavar="URL", help="database URL (default: sqlite:///jarmor.db)")


def add_server_options(p: argparse.ArgumentParser) -> None:
    add_state_options(p)
    p.add_argument("--issuer", metavar="URL", help="issuer identifier (default http://HOST:PORT)")
    p.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, help="port to listen on (default 8000)")
    p.add_argument("--registration-token", metavar="TOKEN", help="initial access token for registration")
    p.add_argument(
        "--auto-approve",
        metavar="SUBJECT",
        help="skip login and consent, approving as SUBJECT (loopback issuers only)",
    )
    p.add_argument("--workers", type=int, help="number of worker processes")
    p.add_argument("--redis", metavar="URL", help="Redis URL for short-lived records (optional)")
    p.add_argument("--metrics-port", type=int, metavar="PORT",
                   help="serve /metrics on this port instead of the main one")
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
            "log_format",
            "log_level",
        )
    }
    try:
        return load_config(args.config, overrides)
    except ConfigError as exc:
        fail(f"configuration error: {exc}")


def fail(message: str, code: int = 2) -> NoReturn:
    print(f"jarmor: {message}", file=sys.stderr)
    raise SystemExit(code)


def sqlite_path(url: str) -> Path | None:
    if not url.startswith("sqlite:///"):
        return None
    path = url[len("sqlite:///") :].split("?", 1)[0]
    return Path(path) if path and path != ":memory:" else None


def create_sqlite_file(url: str) -> None:
    """Create a missing SQLite database file readable by its owner only (its directory too, if needed)."""
    path = sqlite_path(url)
    if path is not None and not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_CREAT | os.O_WRONLY, stat.S_IRUSR | stat.S_IWUSR)
        os.close(fd)


def open_state(config: ServerConfig) -> Store:
    """Open the configured database (and Redis, if configured); a new SQLite file is created owner-only.

    A database that cannot be opened (unreachable, or a PostgreSQL schema not at the current revision) ends
    the command with the reason.
    """
    create_sqlite_file(config.database)
    try:
        return open_store(config.database, config.redis)
    except StoreError as exc:
        fail(str(exc))


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
