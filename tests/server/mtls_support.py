"""An in-process server that sees client certificates as it would behind a TLS-terminating proxy (RFC 9440
``Client-Cert`` from a peer in ``trusted_proxies``), for the mutual-TLS suites (RFC 8705)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from jarmor.server.app import build_routes, starlette_app
from jarmor.server.mtls import ClientCertificateMiddleware
from tests.certs import Issued, make_ca
from tests.kit import ISSUER, Kit

PROXY = "127.0.0.1"
STRANGER = "203.0.113.7"


@dataclass
class MtlsKit:
    kit: Kit
    ca: Issued
    app: Any

    def http(self, peer: str = PROXY) -> httpx.AsyncClient:
        """A client connecting from ``peer`` (the TCP peer the middleware judges)."""
        transport = httpx.ASGITransport(app=self.app, client=(peer, 40000))
        return httpx.AsyncClient(transport=transport, base_url=ISSUER)

    async def post(
        self, path: str, data: dict[str, str], cert: Issued | None = None, *, peer: str = PROXY,
        header: str | bytes | None = None,
    ) -> httpx.Response:
        headers: dict[str, str | bytes] = {}
        if cert is not None or header is not None:
            headers["Client-Cert"] = header if header is not None else cert.header()  # type: ignore[union-attr]
        async with self.http(peer) as http:
            return await http.post(path, data=data, headers=headers)


async def mtls_kit(kit: Kit, directory: Path, ca: Issued | None = None) -> MtlsKit:
    """``kit``'s server behind ``ClientCertificateMiddleware``: 127.0.0.1 is the trusted proxy, and forwarded
    certificates are verified against ``ca``."""
    ca = ca or make_ca()
    ca_file = directory / "ca.pem"
    ca_file.write_bytes(ca.pem)
    kit.server.env.mtls = True
    app = starlette_app(kit.server, build_routes(kit.server))
    wrapped = ClientCertificateMiddleware(app, trusted_proxies=[PROXY + "/32"], ca_certs=str(ca_file))
    return MtlsKit(kit, ca, wrapped)
