"""``jarmor serve``: uvicorn (httptools parser, uvloop event loop) over the ASGI app."""

from __future__ import annotations

import asyncio
import os
import socket

from ..config import ServerConfig
from ..store import StoreError
from .common import create_sqlite_file, fail, open_state

_ENV = {
    "issuer": "JARMOR_ISSUER",
    "host": "JARMOR_HOST",
    "port": "JARMOR_PORT",
    "database": "JARMOR_DATABASE",
    "redis": "JARMOR_REDIS",
    "registration_token": "JARMOR_REGISTRATION_TOKEN",
    "auto_approve": "JARMOR_AUTO_APPROVE",
    "metrics_port": "JARMOR_METRICS_PORT",
    "trusted_proxies": "JARMOR_TRUSTED_PROXIES",
    "forwarded_header": "JARMOR_FORWARDED_HEADER",
    "log_format": "JARMOR_LOG_FORMAT",
    "log_level": "JARMOR_LOG_LEVEL",
}


def _redacted(url: str) -> str:
    """The database URL without its password, for logs."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "(unparseable URL)"


def check_listen_address(host: str, port: int) -> None:
    """Bind the address once before anything else, so a port in use or an address this machine does not
    have ends the command with one line instead of a log of uvicorn's errno after "serving"."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except (OSError, UnicodeError) as exc:
        fail(f"cannot listen on {host}:{port}: {getattr(exc, 'strerror', None) or exc}")
    family, kind, proto, _name, address = infos[0]
    try:
        with socket.socket(family, kind, proto) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does
            sock.bind(address)
    except OSError as exc:
        fail(f"cannot listen on {host}:{port}: {exc.strerror or exc}")


async def check_redis(config: ServerConfig) -> None:
    """Reach Redis once before serving (and before creating anything), as ``open_state`` reaches the
    database: an unreachable Redis ends ``serve`` with one line (exit 1) instead of being found by the first
    flow."""
    if not config.redis:
        return
    from ..store.redis_store import RedisEphemeralStore

    redis = RedisEphemeralStore.from_url(config.redis)
    try:
        await redis.ping()
    except StoreError as exc:
        fail(f"cannot reach Redis at {_redacted(config.redis)}: {exc.__cause__ or exc}", 1)
    finally:
        await redis.close()


def serve(config: ServerConfig, config_path: str | None = None) -> int:
    # before anything imports prometheus_client: every worker writes its metrics to one shared directory
    from ..server.multiproc import prepare_multiprocess

    cleanup = prepare_multiprocess()
    try:
        return _serve(config, config_path)
    finally:
        cleanup()


def _serve(config: ServerConfig, config_path: str | None) -> int:
    import uvicorn

    from ..server.logs import configure_logging, uvicorn_log_config

    check_listen_address(config.host, config.port)  # before anything is created
    if config.metrics_port is not None:
        check_listen_address(config.host, config.metrics_port)

    # Generate keys once, before any worker starts, so workers never race to create them.
    async def prepare() -> list[str]:
        from ..server.app import JarmorServer

        await check_redis(config)
        created = create_sqlite_file(config.database)  # said below, in the log format
        server = JarmorServer(config, open_state(config))
        await server.start()
        await server.stop()
        return created

    configure_logging(config.log_format, config.log_level)
    created = asyncio.run(prepare())
    if config.metrics_port is not None:
        from ..server.metrics import start_metrics_listener

        start_metrics_listener(config.host, config.metrics_port, config.settings.metrics_token)
    # Workers rebuild the configuration from the environment (flags are passed down this way).
    if config_path:
        os.environ["JARMOR_CONFIG"] = os.path.abspath(config_path)
    for name, var in _ENV.items():
        value = getattr(config, name)
        if isinstance(value, tuple):
            if value:
                os.environ[var] = ",".join(value)
        elif value is not None:
            os.environ[var] = str(value)
    announce = (
        f"jarmor: serving {config.issuer} on {config.host}:{config.port} "
        f"(database {_redacted(config.database)}, {config.workers} worker(s)"
        f"{', auto-approve as ' + config.auto_approve if config.auto_approve else ''})"
    )
    if config.log_format == "json":  # every line a log pipeline reads is one JSON object
        import orjson

        announce = orjson.dumps({"level": "info", "logger": "jarmor.serve", "message": announce}).decode()
        created = [
            orjson.dumps({"level": "info", "logger": "jarmor.serve", "message": f"created {what}"}).decode()
            for what in created
        ]
    else:
        created = [f"jarmor: created {what}" for what in created]
    print("\n".join([*created, announce]), flush=True)
    uvicorn.run(
        "jarmor.server.asgi:app_from_environment",
        factory=True,
        host=config.host,
        port=config.port,
        workers=config.workers,
        log_level=config.log_level,
        log_config=uvicorn_log_config(config.log_format, config.log_level),
        access_log=False,
        server_header=False,
        proxy_headers=False,
        timeout_graceful_shutdown=max(1, round(config.settings.shutdown_grace)),
    )
    return 0
