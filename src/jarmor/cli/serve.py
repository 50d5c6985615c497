"""``jarmor serve``: uvicorn (httptools parser, uvloop event loop) over the ASGI app."""

from __future__ import annotations

import asyncio
import os
import socket

from ..config import ServerConfig
from .common import fail, open_state

_ENV = {
    "issuer": "JARMOR_ISSUER",
    "host": "JARMOR_HOST",
    "port": "JARMOR_PORT",
    "database": "JARMOR_DATABASE",
    "redis": "JARMOR_REDIS",
    "registration_token": "JARMOR_REGISTRATION_TOKEN",
    "auto_approve": "JARMOR_AUTO_APPROVE",
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


def serve(config: ServerConfig, config_path: str | None = None) -> int:
    import uvicorn

    check_listen_address(config.host, config.port)  # before anything is created

    # Generate keys once, before any worker starts, so workers never race to create them.
    async def prepare() -> None:
        from ..server.app import JarmorServer

        server = JarmorServer(config, open_state(config, create=True))
        await server.start()
        await server.stop()

    asyncio.run(prepare())
    # Workers rebuild the configuration from the environment (flags are passed down this way).
    if config_path:
        os.environ["JARMOR_CONFIG"] = os.path.abspath(config_path)
    for name, var in _ENV.items():
        value = getattr(config, name)
        if value is not None:
            os.environ[var] = str(value)
    print(
        f"jarmor: serving {config.issuer} on {config.host}:{config.port} "
        f"(database {_redacted(config.database)}, {config.workers} worker(s)"
        f"{', auto-approve as ' + config.auto_approve if config.auto_approve else ''})",
        flush=True,
    )
    uvicorn.run(
        "jarmor.server.asgi:app_from_environment",
        factory=True,
        host=config.host,
        port=config.port,
        workers=config.workers,
        log_level=os.environ.get("JARMOR_LOG_LEVEL", "warning"),
        access_log=False,
        server_header=False,
        proxy_headers=False,
    )
    return 0
