"""The e2e scaffold for "an API behind ``jarmor.resource``": a real Starlette app under uvicorn on loopback
(plain HTTP, or TLS asking for client certificates), and its own client at jarmor registered the way an
administrator does it (``jarmor clients add`` with ``resource_server: true``: it may introspect)."""

from __future__ import annotations

import json
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from jarmor.resource import Requirement, ResourceServer, ResourceServerMiddleware, Rule
from jarmor.server.mtls import TLSHttpToolsProtocol

Endpoint = Callable[[Request], Awaitable[Response]]

# the API's resource indicator; with CONFIG the high tier issues RFC 9068 JWT access tokens for it (elevated:
# opaque tokens, checked by introspection)
AUDIENCE = "https://orders.api.example"
CONFIG = f"""
[policy.tiers.high]
access_token_format = "jwt"

[settings]
access_token_audience = "{AUDIENCE}"
"""


def register_resource_server(database: str, workdir: Path, name: str) -> dict[str, Any]:
    """``jarmor clients add`` for the API named ``name``: returns its registration (``client_id``,
    ``client_secret``)."""
    path = workdir / "rs.json"
    path.write_text(json.dumps({
        "client_name": name, "grant_types": ["client_credentials"], "redirect_uris": [],
        "token_endpoint_auth_method": "client_secret_basic", "resource_server": True,
    }))
    out = subprocess.run([sys.executable, "-m", "jarmor.cli.main", "clients", "add", "--metadata", str(path),
                          "--database", database], capture_output=True, text=True, timeout=120, cwd=workdir)
    assert out.returncode == 0, out.stderr
    return dict(json.loads(out.stdout))


class Api:
    """``endpoint`` served at ``path`` under uvicorn in a thread, behind ``ResourceServerMiddleware`` with
    ``requirement`` for that path. ``tls``: (certificate file, key file, CA file) — HTTPS that requests (not
    requires) a client certificate, with jarmor's protocol class putting it in the ASGI TLS extension."""

    def __init__(self, rs: ResourceServer, port: int, path: str, endpoint: Endpoint, requirement: Requirement,
                 *, tls: tuple[str, str, str] | None = None) -> None:
        self.port = port
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{port}"
        app = Starlette(routes=[Route(path, endpoint)])
        app.add_middleware(ResourceServerMiddleware, server=rs, public_url=self.url, rules=[Rule(path, requirement)])
        options: dict[str, Any] = {}
        if tls is not None:
            options = {"ssl_certfile": tls[0], "ssl_keyfile": tls[1], "ssl_ca_certs": tls[2],
                       "ssl_cert_reqs": ssl.CERT_OPTIONAL, "http": TLSHttpToolsProtocol}
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                                    lifespan="off", **options))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> Api:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            assert time.monotonic() < deadline, "the API did not start"
            assert self.thread.is_alive(), "the API thread died"
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)
