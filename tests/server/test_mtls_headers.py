"""``server/mtls.py``: the RFC 9440 header reader and which certificate source counts for a request."""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

import pytest

from jarmor.protocol.mtls import ClientCertificate
from jarmor.server.mtls import (
    MALFORMED,
    SCOPE_KEY,
    CertificateHeaderError,
    ClientCertificateMiddleware,
    parse_client_cert_chain_header,
    parse_client_cert_header,
    request_certificate,
)
from tests.certs import issue, make_ca


def test_byte_sequence_item() -> None:
    cert = issue(make_ca(), "c")
    der, parsed = parse_client_cert_header(" " + cert.header() + "\t")
    assert der == cert.der and parsed.subject == cert.cert.subject
    two = parse_client_cert_chain_header(f"{cert.header()}, {cert.header()}")
    assert len(two) == 2
    for bad in (cert.header() + ";a=1", "(" + cert.header() + ")", cert.header()[1:], ",".join([cert.header()] * 6)):
        with pytest.raises(CertificateHeaderError):
            parse_client_cert_chain_header(bad) if "," in bad else parse_client_cert_header(bad)


async def _seen(middleware_kw: dict[str, Any], scope: dict[str, Any]) -> Any:
    found: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        found.append(scope.get(SCOPE_KEY))

    await ClientCertificateMiddleware(app, **middleware_kw)({"type": "http", **scope}, None, None)  # type: ignore[arg-type]
    return found[0]


@pytest.mark.anyio
async def test_sources(tmp_path: Path) -> None:
    ca = make_ca()
    (tmp_path / "ca.pem").write_bytes(ca.pem)
    kw = {"trusted_proxies": ["10.0.0.0/8"], "ca_certs": str(tmp_path / "ca.pem")}
    cert, header = issue(ca, "c"), [(b"client-cert", issue(ca, "c").header().encode())]
    tls = {"extensions": {"tls": {"client_cert_chain": [ssl.DER_cert_to_PEM_cert(cert.der)]}}}
    # direct TLS: the handshake verified it
    direct = await _seen(kw, {"client": ("192.0.2.1", 1), "headers": header, **tls})
    assert direct == ClientCertificate(cert.der, chain_verified=True)
    # untrusted peer: the header counts for nothing, and without TLS there is no certificate
    assert await _seen(kw, {"client": ("192.0.2.1", 1), "headers": header}) is None
    # trusted proxy: the header, chain checked by jarmor; the proxy's own TLS connection is not the client's
    forwarded = await _seen(kw, {"client": ("10.1.2.3", 1), "headers": header, **tls})
    assert isinstance(forwarded, ClientCertificate) and forwarded.chain_verified
    stranger = [(b"client-cert", issue(make_ca("other"), "c").header().encode())]
    unverified = await _seen(kw, {"client": ("10.1.2.3", 1), "headers": stranger})
    assert isinstance(unverified, ClientCertificate) and not unverified.chain_verified
    malformed = await _seen(kw, {"client": ("10.1.2.3", 1), "headers": [(b"client-cert", b":!!:")]})
    assert malformed == MALFORMED and request_certificate({SCOPE_KEY: malformed}) is None
    assert await _seen(kw, {"client": None, "headers": header}) is None
